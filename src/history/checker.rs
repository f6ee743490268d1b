//! The checker: what clients saw, held against what a Kafka-style log promises. Anomaly names
//! follow Jepsen's Kafka workload:
//!
//! - `lost-write`: a send was acknowledged at an offset, no poll returned it, but polls did
//!   return higher offsets of its partition.
//! - `unseen`: an acknowledged send no poll returned, and nothing above it was read either (the
//!   final reads should have reached it).
//!
//!   Neither is reported for a record below a log start that a consumer observed (a `reset`)
//!   after the send was invoked: retention deleted it. Nothing else excuses a record nobody
//!   read: a forward seek jumps over a record, it does not delete it.
//! - `inconsistent-offsets`: one (topic, partition, offset) seen (read or acknowledged) with two
//!   different values.
//! - `duplicate`: one sent value seen at two different positions.
//! - `nonmonotonic-poll`: a consumer read an offset at or below the last one it read from that
//!   partition, with no repositioning in between.
//! - `poll-skip`: a consumer's successive reads of a partition jumped over an offset known (from
//!   any read or acknowledgement) to hold a record, with no repositioning in between. After a
//!   repositioning to `o` — a seek, a reset to the log start, or a group member's `ok`
//!   fetch-committed with an offset (the member resumes there) — the next read must not be
//!   below `o` nor jump over known offsets at or above it. An `assign` or `subscribe` that does
//!   not name the partition ends the tracking of it (as Jepsen's checker does).
//! - `nonmonotonic-send`: one process's acknowledged sends to a partition, in acknowledgement
//!   order, got offsets that do not increase (an `assign` or `subscribe` leaving the partition
//!   out ends the tracking here too, as in Jepsen's checker).
//! - `per-key-partition`: records with one key seen in two partitions of a topic.
//! - `per-key-order`: one producer's acknowledged sends with one key, in the order it sent them,
//!   got offsets that do not increase.
//! - `aborted-read` (Jepsen's G1a): a value whose send definitely failed was read.
//! - `offset-regression`: a consumer group's committed offset for a partition moved back with no
//!   seek by a member that could explain it: an `ok` commit or fetch-committed shows an offset
//!   lower than one an earlier (completed before it was invoked) commit or fetch showed, or a
//!   fetch finds no offset after one was seen. A fetch of the lower offset is also explained by a
//!   commit of it that may have landed after the earlier one (invoked before that completed,
//!   and not completed before it began; an `info` one may land at any time after its invoke)
//!   sent by the member before its own commit of the higher offset: its delayed request. A
//!   lower commit is also explained by its member's fetch of at most that offset in between
//!   (it resumed there). Subject `group topic-partition`.
//! - `stale-offset`: an `ok` fetch-committed returned an offset `v` although every commit of `v`
//!   that may have taken effect before it was overwritten before it began: a commit of another
//!   offset, `ok`, invoked after that commit of `v` completed and completed before the fetch
//!   was invoked (the group's offset is a register, and commits its only writes). An `info`
//!   commit may land at any time and is never overwritten; a fetch of an offset no recorded
//!   commit wrote is not judged. Catches what `offset-regression` cannot: a fetch returning a
//!   higher offset after a member committed a lower one. Subject `group topic-partition`.
//! - `latest-ahead`: a record whose send was invoked after a consumer was told a partition's
//!   latest offset `o` (its high watermark) landed below `o`: the answer counted offsets that
//!   were not committed (`latest`).
//! - `wrong-time-offset`: an answer to "the first offset at or after time `T`" that names a
//!   record before `T`, a record other than the one read at that offset, or an offset above a
//!   record read with a timestamp at or after `T` that the leader still held (above the log
//!   start the answer reports; `by_time`).
//! - `at-least-once`: a record (acknowledged or read) below a group's final committed offset
//!   that no member of the group polled, and no member jumped over. Subject
//!   `group topic-partition@offset`.
//! - `poll-without-resume`: after its group gave it a partition (an `assign` naming the group:
//!   a new generation), a member read records of it with no fetch-committed, seek or reset of it
//!   in between: it read on from a position of the generation before.
//! - `stale-seek`: a member moved a partition to an offset it had looked up (the latest, the
//!   first at a time, or that of the largest timestamp) before a new assignment (or a resume of that partition) came: the answer belonged to the generation
//!   before, and the seek, taken for the application's choice, would excuse what it skipped.
//!
//! The exact windows are in `groups` and `rebalance`.
//!
//! An operation that ended `info` may have happened or not, so it may excuse and never accuses,
//! in every check alike: the records of an `info` poll count as possibly read (not lost; for a
//! group member, possibly processed), an `info` seek, reset or resume as a possible position of
//! the consumer, an `info` reset as an observed log start, an `info` commit as a write that may
//! land at any time after its invoke (it may explain a later read of its offset); but no
//! anomaly is built on what an `info` operation saw. `fail` operations did not happen and are
//! ignored, except that a value whose send failed must never be read (`aborted-read`). Sends
//! that ended `info` (or never ended) may be read or not, but at most at one position. Unknown
//! operations are counted (`Stats::ignored`) and skipped.
//!
//! Each anomaly is reported once per subject (a record, an offset, a key, a consumer and
//! partition), so one fault does not print thousands of lines; `Report::counts` gives totals.

use super::by_time::{check_offsets_for_max_timestamp, check_offsets_for_time};
use super::event::{Event, EventType, Op};
use super::groups::check_groups;
use super::latest::check_latest;
use super::ops::{pair, Operation};
use super::rebalance::check_rebalances;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// (topic, partition), borrowed from the history: the checks index thousands of records, and
/// owned keys made a copy of the topic name for each.
pub(super) type Tp<'a> = (&'a str, u32);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Anomaly {
    pub name: &'static str,
    /// What the anomaly is about, e.g. `t-0@5` or `key k1`; one anomaly per (name, subject).
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.name, self.subject, self.detail)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: usize,
    pub sends_ok: usize,
    pub sends_failed: usize,
    pub sends_unknown: usize,
    pub polls: usize,
    pub records_read: usize,
    pub seeks: usize,
    pub commits_ok: usize,
    pub commits_failed: usize,
    pub commits_unknown: usize,
    /// `ok` fetches of a group's committed offset.
    pub fetches_committed: usize,
    /// `ok` resets to a partition's log start.
    pub resets: usize,
    /// `ok` answers to a request for a partition's latest offset.
    pub latest_offsets: usize,
    /// `ok` answers to a request for the first offset at or after a time.
    pub offsets_for_time: usize,
    /// `ok` answers to a request for the first offset with the largest timestamp.
    pub offsets_for_max_timestamp: usize,
    /// Operations of a kind the checker does not know, skipped.
    pub ignored: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub anomalies: Vec<Anomaly>,
    pub stats: Stats,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.anomalies.is_empty()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.anomalies {
            *counts.entry(a.name).or_insert(0) += 1;
        }
        counts
    }

    /// The summary line scripts read; always the last line a checker prints. `ignored=N` is
    /// added when operations of unknown kinds were skipped.
    pub fn result_line(&self) -> String {
        let s = &self.stats;
        let ignored = match s.ignored {
            0 => String::new(),
            n => format!(" ignored={n}"),
        };
        if self.is_ok() {
            format!(
                "RESULT ok events={} sends_ok={} sends_failed={} sends_unknown={} polls={} records_read={}{ignored}",
                s.events, s.sends_ok, s.sends_failed, s.sends_unknown, s.polls, s.records_read
            )
        } else {
            let kinds: Vec<String> = self
                .counts()
                .iter()
                .map(|(name, n)| format!("{name}:{n}"))
                .collect();
            format!(
                "RESULT violation anomalies={} kinds={}{ignored}",
                self.anomalies.len(),
                kinds.join(",")
            )
        }
    }

    /// One line per anomaly, then the summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for a in &self.anomalies {
            out.push_str(&a.to_string());
            out.push('\n');
        }
        out.push_str(&self.result_line());
        out
    }
}

/// Where a value was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
}

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// Everything observed, indexed for the checks. Only `ok` operations accuse: `at`,
/// `positions`, `known` and `max_read` come from them alone.
#[derive(Default)]
struct Observations<'a> {
    /// Each value at each position it was seen at, sorted and without repeats once gathered:
    /// the input of `inconsistent-offsets` and `duplicate` (sorted once, it costs a fraction of
    /// two maps of sets filled one record at a time).
    sightings: Vec<(Position<'a>, &'a str)>,
    /// Values an `ok` or `info` poll returned: read, or possibly read.
    read: BTreeSet<&'a str>,
    /// Offsets known to hold a record, per partition.
    known: BTreeMap<Tp<'a>, BTreeSet<u64>>,
    /// Highest offset read per partition.
    max_read: BTreeMap<Tp<'a>, u64>,
    /// Partitions each key was seen in, per topic.
    key_partitions: BTreeMap<(&'a str, &'a str), BTreeSet<u32>>,
    /// Acknowledged sends.
    acked: Vec<&'a Operation<'a>>,
    /// Values whose send failed.
    failed: BTreeSet<&'a str>,
    /// Log starts consumers observed (`ok` or `info` resets), per partition, with when each
    /// observation completed.
    log_starts: BTreeMap<Tp<'a>, Vec<(u64, u64)>>,
}

impl<'a> Observations<'a> {
    fn gather(ops: &'a [Operation<'a>], stats: &mut Stats) -> Observations<'a> {
        let mut obs = Observations::default();
        for op in ops {
            let e = &op.event;
            match (&op.f, op.outcome) {
                (Op::Send, EventType::Ok) => {
                    stats.sends_ok += 1;
                    if let (Some(t), Some(p), Some(o), Some(v)) =
                        (&e.topic, e.partition, e.offset, &e.value)
                    {
                        obs.see(position(t, p, o), v, e.key.as_deref());
                        obs.acked.push(op);
                    }
                }
                (Op::Send, EventType::Fail) => {
                    stats.sends_failed += 1;
                    if let Some(v) = &e.value {
                        obs.failed.insert(v);
                    }
                }
                (Op::Send, _) => stats.sends_unknown += 1,
                (Op::Poll, EventType::Ok) => {
                    stats.polls += 1;
                    for r in e.records.iter().flatten() {
                        stats.records_read += 1;
                        let max = obs
                            .max_read
                            .entry((r.topic.as_str(), r.partition))
                            .or_insert(r.offset);
                        *max = (*max).max(r.offset);
                        obs.read.insert(&r.value);
                        obs.see(
                            position(&r.topic, r.partition, r.offset),
                            &r.value,
                            r.key.as_deref(),
                        );
                    }
                }
                // Possibly read: excuses a loss, shows nothing else.
                (Op::Poll, EventType::Info) => {
                    obs.read
                        .extend(e.records.iter().flatten().map(|r| r.value.as_str()));
                }
                (Op::Seek, EventType::Ok) => stats.seeks += 1,
                (Op::Reset, EventType::Ok | EventType::Info) => {
                    if op.outcome == EventType::Ok {
                        stats.resets += 1;
                    }
                    if let (Some(t), Some(p), Some(o)) = (&e.topic, e.partition, e.offset) {
                        obs.log_starts
                            .entry((t.as_str(), p))
                            .or_default()
                            .push((o, e.time_ns));
                    }
                }
                (Op::Commit, EventType::Ok) => stats.commits_ok += 1,
                (Op::Commit, EventType::Fail) => stats.commits_failed += 1,
                (Op::Commit, _) => stats.commits_unknown += 1,
                (Op::FetchCommitted, EventType::Ok) => stats.fetches_committed += 1,
                (Op::LatestOffset, EventType::Ok) => stats.latest_offsets += 1,
                (Op::OffsetForTime, EventType::Ok) => stats.offsets_for_time += 1,
                (Op::OffsetForMaxTimestamp, EventType::Ok) => stats.offsets_for_max_timestamp += 1,
                (Op::Other, _) => stats.ignored += 1,
                _ => {}
            }
        }
        // Any order that keeps a position's values together, in order, serves; offsets first
        // settle most comparisons without comparing topic names.
        obs.sightings.sort_unstable_by(|(p, v), (q, w)| {
            (p.offset, p.partition, p.topic, v).cmp(&(q.offset, q.partition, q.topic, w))
        });
        obs.sightings.dedup();
        obs
    }

    fn see(&mut self, pos: Position<'a>, value: &'a str, key: Option<&'a str>) {
        let tp = (pos.topic, pos.partition);
        self.known.entry(tp).or_default().insert(pos.offset);
        if let Some(k) = key {
            self.key_partitions
                .entry((k, pos.topic))
                .or_default()
                .insert(pos.partition);
        }
        self.sightings.push((pos, value));
    }

    /// Whether a consumer learned that retention deleted `offset` of `tp`: a log start above it,
    /// observed no earlier than `since_ns` (when the record's send was invoked; a log start
    /// already in place then cannot have deleted a record written after it).
    fn deleted(&self, tp: &Tp, offset: u64, since_ns: u64) -> bool {
        self.log_starts
            .get(tp)
            .into_iter()
            .flatten()
            .any(|&(start, seen_ns)| start > offset && seen_ns >= since_ns)
    }
}

fn position(topic: &str, partition: u32, offset: u64) -> Position<'_> {
    Position {
        topic,
        partition,
        offset,
    }
}

pub fn check(events: &[Event]) -> Report {
    let ops = pair(events);
    let mut stats = Stats {
        events: events.len(),
        ..Stats::default()
    };
    let obs = Observations::gather(&ops, &mut stats);
    let mut found: BTreeMap<(&'static str, String), String> = BTreeMap::new();
    let mut report = |name: &'static str, subject: String, detail: String| {
        found.entry((name, subject)).or_insert(detail);
    };
    check_positions(&obs, &mut report);
    check_loss(&obs, &mut report);
    check_aborted_reads(&ops, &obs, &mut report);
    check_consumers(&ops, &obs, &mut report);
    check_producers(&ops, &obs.acked, &mut report);
    check_groups(events, &ops, &obs.known, &mut report);
    check_key_partitions(&obs, &mut report);
    check_latest(&ops, &mut report);
    check_offsets_for_time(&ops, &mut report);
    check_offsets_for_max_timestamp(&ops, &mut report);
    check_rebalances(events, &mut report);
    Report {
        anomalies: found
            .into_iter()
            .map(|((name, subject), detail)| Anomaly {
                name,
                subject,
                detail,
            })
            .collect(),
        stats,
    }
}

/// `inconsistent-offsets` and `duplicate`.
fn check_positions(obs: &Observations, report: &mut impl FnMut(&'static str, String, String)) {
    // A position's values are one run, in order.
    for run in obs.sightings.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            let vs: Vec<String> = run.iter().map(|(_, v)| format!("{v:?}")).collect();
            report(
                "inconsistent-offsets",
                run[0].0.to_string(),
                format!("seen with values {}", vs.join(" and ")),
            );
        }
    }
    // Sorted by value, then position; the values' first bytes, compared as one number, settle
    // most comparisons without comparing strings (the same order: see `prefix`).
    let mut by_value: Vec<(u64, &str, Position)> = obs
        .sightings
        .iter()
        .map(|&(p, v)| (prefix(v), v, p))
        .collect();
    by_value.sort_unstable();
    for run in by_value.chunk_by(|a, b| a.1 == b.1) {
        if run.len() > 1 {
            let ps: Vec<String> = run.iter().map(|(_, _, p)| p.to_string()).collect();
            report(
                "duplicate",
                format!("value {:?}", run[0].1),
                format!("seen at {}", ps.join(" and ")),
            );
        }
    }
}

/// A string's first eight bytes as a big-endian number, zero-padded: if `prefix(a) <
/// prefix(b)` then `a < b`, so sorting by `(prefix(s), s)` sorts by `s`.
pub(super) fn prefix(s: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = s.len().min(8);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// `lost-write` and `unseen`: every acknowledged record was read (or possibly read, by an
/// `info` poll), unless a consumer learned that retention deleted it.
fn check_loss(obs: &Observations, report: &mut impl FnMut(&'static str, String, String)) {
    for op in &obs.acked {
        let e = &op.event;
        let (Some(t), Some(p), Some(o), Some(v)) = (&e.topic, e.partition, e.offset, &e.value)
        else {
            continue;
        };
        let tp = (t.as_str(), p);
        if obs.read.contains(v.as_str()) || obs.deleted(&tp, o, op.invoked_ns) {
            continue;
        }
        let subject = position(t, p, o).to_string();
        match obs.max_read.get(&tp) {
            Some(&max) if max > o => report(
                "lost-write",
                subject,
                format!(
                    "{v:?} acknowledged to {}, never read, although offsets up to {max} were read",
                    op.process
                ),
            ),
            _ => report(
                "unseen",
                subject,
                format!("{v:?} acknowledged to {}, never read", op.process),
            ),
        }
    }
}

/// `aborted-read`: an `ok` poll returned a value whose send failed.
fn check_aborted_reads(
    ops: &[Operation],
    obs: &Observations,
    report: &mut impl FnMut(&'static str, String, String),
) {
    let ok_polls = ops
        .iter()
        .filter(|op| op.f == Op::Poll && op.outcome == EventType::Ok);
    for op in ok_polls {
        for r in op.event.records.iter().flatten() {
            if obs.failed.contains(r.value.as_str()) {
                report(
                    "aborted-read",
                    format!("value {:?}", r.value),
                    format!(
                        "read by {} at {}-{}@{}, but its send failed",
                        op.process, r.topic, r.partition, r.offset
                    ),
                );
            }
        }
    }
}

fn check_key_partitions(obs: &Observations, report: &mut impl FnMut(&'static str, String, String)) {
    for ((key, topic), partitions) in &obs.key_partitions {
        if partitions.len() > 1 {
            let ps: Vec<String> = partitions.iter().map(u32::to_string).collect();
            report(
                "per-key-partition",
                format!("key {key:?}"),
                format!("seen in partitions {} of {topic}", ps.join(", ")),
            );
        }
    }
}

/// How a consumer came to stand where it does in a partition.
#[derive(Clone, Copy)]
enum Why {
    /// It read this offset.
    Read(u64),
    Seek,
    /// It was reset to the log start.
    Reset,
    /// A group member resumed at its group's committed offset.
    Resume,
}

/// A place a consumer may stand in a partition: its next read must be at `next` or above,
/// jumping over no known offset.
#[derive(Clone, Copy)]
struct Expect {
    next: u64,
    why: Why,
}

/// What is wrong with a read, relative to an `Expect`.
enum Misread {
    Behind,
    Skipped(u64),
}

impl Expect {
    fn misread(&self, offset: u64, known: Option<&BTreeSet<u64>>) -> Option<Misread> {
        if offset < self.next {
            return Some(Misread::Behind);
        }
        let gap = known.and_then(|k| k.range(self.next..offset).next().copied())?;
        Some(Misread::Skipped(gap))
    }

    fn describe(&self, offset: u64, misread: Misread) -> (&'static str, String) {
        let after = match self.why {
            Why::Read(prev) => format!("after {prev}"),
            Why::Seek => format!("after seeking to {}", self.next),
            Why::Reset => format!("after a reset to the log start {}", self.next),
            Why::Resume => format!("after resuming at the committed offset {}", self.next),
        };
        match misread {
            Misread::Behind => ("nonmonotonic-poll", format!("read offset {offset} {after}")),
            Misread::Skipped(gap) => (
                "poll-skip",
                format!("read offset {offset} {after}, skipping {gap}"),
            ),
        }
    }
}

/// Per consumer and partition: reads move forward one known offset at a time, except after a
/// repositioning. A consumer's possible places (`Expect`s, the certain one first) grow with
/// each `info` operation that may have moved it; a read is an anomaly only if it is one from
/// every place. No entry: nothing is known (no read yet, or an assignment change).
fn check_consumers(
    ops: &[Operation],
    obs: &Observations,
    report: &mut impl FnMut(&'static str, String, String),
) {
    let mut places: BTreeMap<(&str, Tp), Vec<Expect>> = BTreeMap::new();
    // Consumers under a subscription written as Jepsen's (`Event::roaming`): not tracked.
    let mut roaming: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        let e = &op.event;
        let certain = match op.outcome {
            EventType::Ok => true,
            EventType::Info => false,
            _ => continue,
        };
        let why = match op.f {
            Op::Seek => Why::Seek,
            Op::Reset => Why::Reset,
            Op::FetchCommitted => Why::Resume,
            Op::Poll if certain => {
                if !roaming.contains(op.process) {
                    check_reads(op, obs, &mut places, report);
                }
                continue;
            }
            Op::Poll => {
                // Records an `info` poll returned may have moved the consumer past them.
                for r in e.records.iter().flatten() {
                    may_stand(
                        &mut places,
                        op,
                        &r.topic,
                        r.partition,
                        r.offset.saturating_add(1),
                        Why::Read(r.offset),
                    );
                }
                continue;
            }
            Op::Assign | Op::Subscribe => {
                places.retain(|(process, tp), _| *process != op.process || covers(e, tp));
                if e.roaming {
                    roaming.insert(op.process);
                } else if op.f == Op::Assign && certain {
                    roaming.remove(op.process);
                }
                continue;
            }
            _ => continue,
        };
        let (Some(t), Some(p), Some(o)) = (&e.topic, e.partition, e.offset) else {
            continue;
        };
        if certain && op.f == Op::Reset {
            check_reset(op, places.get(&(op.process, (t.as_str(), p))), o, report);
        }
        if certain {
            let place = Expect { next: o, why };
            places.insert((op.process, (t.as_str(), p)), vec![place]);
        } else {
            may_stand(&mut places, op, t, p, o, why);
        }
    }
}

/// `spurious-reset`: a reset to the log start `start` after the consumer read an offset at or
/// above it. A consumer is reset when its position is out of the log's range: below the log
/// start (retention deleted what it had not read: the reset moves it forward) or past the log
/// end (a log truncated below where it had read). Here the answer's own log start is at or
/// below an offset the consumer read, so the position was called past the log end — yet every
/// read record was committed, and a committed record leaves a log only by retention. So a
/// committed record was truncated away (an unclean election or the power loss of every copy,
/// which the simulator excuses), or a broker called a position inside its log out of range
/// and sent the consumer back to read it all again (Kafka fixed such resets after leader
/// changes with leader-epoch fencing, KIP-320). Judged only where every place the consumer may
/// stand is after a read: a seek may have put it anywhere.
fn check_reset(
    op: &Operation,
    possible: Option<&Vec<Expect>>,
    start: u64,
    report: &mut impl FnMut(&'static str, String, String),
) {
    let Some(possible) = possible.filter(|p| !p.is_empty()) else {
        return;
    };
    // The lowest offset the consumer certainly read: every place it may stand must follow a
    // read at or above the log start it was reset to.
    let read_at_or_above = |p: &Expect| match p.why {
        Why::Read(prev) if prev >= start => Some(prev),
        _ => None,
    };
    let Some(prev) = possible
        .iter()
        .map(read_at_or_above)
        .try_fold(u64::MAX, |low, prev| Some(low.min(prev?)))
    else {
        return;
    };
    let e = &op.event;
    let (Some(t), Some(p)) = (&e.topic, e.partition) else {
        return;
    };
    report(
        "spurious-reset",
        format!("{} {t}-{p}", op.process),
        format!("reset to the log start {start} after reading offset {prev}: a position inside the log was called out of range"),
    );
}

/// An `info` operation may have put the consumer at `next`: one more possible place, if any
/// is known (where nothing is, anything goes anyway).
fn may_stand<'a>(
    places: &mut BTreeMap<(&'a str, Tp<'a>), Vec<Expect>>,
    op: &'a Operation,
    topic: &'a str,
    partition: u32,
    next: u64,
    why: Why,
) {
    if let Some(p) = places.get_mut(&(op.process, (topic, partition))) {
        p.push(Expect { next, why });
    }
}

/// Whether an `assign` or `subscribe` keeps `tp`; one whose list is missing or unreadable
/// keeps nothing.
fn covers(e: &Event, tp: &Tp) -> bool {
    match e.f {
        Op::Assign => e
            .partitions
            .iter()
            .flatten()
            .any(|p| p.topic == tp.0 && p.partition == tp.1),
        Op::Subscribe => e.topics.iter().flatten().any(|t| *t == tp.0),
        _ => false,
    }
}

/// The records of one `ok` poll, each held against the places its consumer may stand.
fn check_reads<'a>(
    op: &'a Operation,
    obs: &Observations,
    places: &mut BTreeMap<(&'a str, Tp<'a>), Vec<Expect>>,
    report: &mut impl FnMut(&'static str, String, String),
) {
    for r in op.event.records.iter().flatten() {
        let key = (op.process, (r.topic.as_str(), r.partition));
        let place = Expect {
            next: r.offset.saturating_add(1),
            why: Why::Read(r.offset),
        };
        let Some(possible) = places.get_mut(&key) else {
            places.insert(key, vec![place]);
            continue;
        };
        // An anomaly only if every possible place makes it one; named after the certain place
        // (the first).
        let known = obs.known.get(&key.1);
        let mut misreads = possible.iter().map(|p| p.misread(r.offset, known));
        if let Some(Some(first)) = misreads.next() {
            if misreads.all(|m| m.is_some()) {
                let (name, detail) = possible[0].describe(r.offset, first);
                let subject = format!("{} {}-{}", op.process, r.topic, r.partition);
                report(name, subject, detail);
            }
        }
        // Reused, not reallocated: this runs for every record read.
        possible.clear();
        possible.push(place);
    }
}

/// Per producer: acknowledged offsets grow per partition (in acknowledgement order) and per key
/// (in send order). As in Jepsen's checker, where one process both sends and polls, an `assign`
/// or `subscribe` (`ok` or `info`) leaving a partition out ends the tracking of the process's
/// sends to it too.
fn check_producers(
    ops: &[Operation],
    acked: &[&Operation],
    report: &mut impl FnMut(&'static str, String, String),
) {
    let mut last_in_partition: BTreeMap<(&str, Tp), (u64, &str)> = BTreeMap::new();
    for op in ops {
        let e = &op.event;
        match (&op.f, op.outcome) {
            (Op::Assign | Op::Subscribe, EventType::Ok | EventType::Info) => {
                last_in_partition
                    .retain(|(process, tp), _| *process != op.process || covers(e, tp));
                continue;
            }
            (Op::Send, EventType::Ok) => {}
            _ => continue,
        }
        let (Some(t), Some(p), Some(o), Some(v)) = (&e.topic, e.partition, e.offset, &e.value)
        else {
            continue;
        };
        let key = (op.process, (t.as_str(), p));
        if let Some(&(prev, prev_v)) = last_in_partition.get(&key) {
            if o <= prev {
                report(
                    "nonmonotonic-send",
                    format!("{} {t}-{p}", op.process),
                    format!("{v:?} acknowledged at {o} after {prev_v:?} at {prev}"),
                );
            }
        }
        last_in_partition.insert(key, (o, v));
    }
    let mut by_start: Vec<&&Operation> = acked.iter().collect();
    by_start.sort_by_key(|op| op.started);
    // Offsets only compare within a partition; a key in two partitions is per-key-partition's.
    let mut last_for_key: BTreeMap<(&str, &str, &str), (u32, u64, &str)> = BTreeMap::new();
    for op in by_start {
        let e = &op.event;
        let (Some(t), Some(k), Some(p), Some(o), Some(v)) =
            (&e.topic, &e.key, e.partition, e.offset, &e.value)
        else {
            continue;
        };
        let key = (op.process, t.as_str(), k.as_str());
        if let Some(&(prev_p, prev, prev_v)) = last_for_key.get(&key) {
            if prev_p == p && o <= prev {
                report(
                    "per-key-order",
                    format!("{} key {k:?}", op.process),
                    format!(
                        "{v:?} sent after {prev_v:?} but acknowledged at {o}, not after {prev}"
                    ),
                );
            }
        }
        last_for_key.insert(key, (p, o, v));
    }
}
