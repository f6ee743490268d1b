//! The checker: what clients saw, held against what a Kafka-style log promises. Anomaly names
//! follow `KAFKA.md` (after Jepsen's Kafka workload):
//!
//! - `lost-write`: a send was acknowledged at an offset, no poll ever returned it, but polls did
//!   return higher offsets of its partition.
//!   Evidence counts only from consumers that did not jump over the offset with a forward seek
//!   (e.g. to the log start after retention deleted it); if every consumer that read past it
//!   jumped over it, nothing is reported.
//! - `unseen`: an acknowledged send no poll returned, and nothing above it was read either (the
//!   final reads should have reached it).
//! - `inconsistent-offsets`: one (topic, partition, offset) seen (read or acknowledged) with two
//!   different values.
//! - `duplicate`: one sent value seen at two different positions.
//! - `nonmonotonic-poll`: a consumer read an offset at or below the last one it read from that
//!   partition, with no seek in between.
//! - `poll-skip`: a consumer's successive reads of a partition jumped over an offset known (from
//!   any read or acknowledgement) to hold a record, with no seek in between. After a seek to `o`,
//!   the next read must not jump over known offsets at or above `o`. A group member's `ok`
//!   fetch-committed with an offset counts as a seek to it (the member resumes there).
//! - `nonmonotonic-send`: one process's acknowledged sends to a partition, in acknowledgement
//!   order, got offsets that do not increase.
//! - `per-key-partition`: records with one key seen in two partitions of a topic.
//! - `per-key-order`: one producer's acknowledged sends with one key, in the order it sent them,
//!   got offsets that do not increase.
//! - `aborted-read` (Jepsen's G1a; not in KAFKA.md's list): a value whose send definitely failed
//!   was read.
//! - `offset-regression`: a consumer group's committed offset for a partition moved back with no
//!   seek by a member that could explain it: an `ok` commit or fetch-committed shows an offset
//!   lower than one an earlier (completed before it was invoked) commit or fetch showed, or a
//!   fetch finds no offset after one was seen. Subject `group topic-partition`.
//! - `at-least-once`: a record (acknowledged or read) below a group's final committed offset
//!   that no member of the group polled, and no member sought past. Subject
//!   `group topic-partition@offset`.
//!
//! The exact windows are in `groups`. Commits that failed are ignored; commits of unknown
//! outcome neither count as observations nor excuse anything.
//!
//! Sends that ended `info` (or never ended) are indeterminate: they may be read or not, but at
//! most at one position. Each anomaly is reported once per subject (a record, an offset, a key,
//! a consumer and partition), so one fault does not print thousands of lines; `Report::counts`
//! gives totals.

use super::event::{Event, EventType, Op};
use super::groups::check_groups;
use super::ops::{pair, Operation};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// (topic, partition)
pub(super) type Tp = (String, u32);

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

    /// The summary line scripts read; always the last line a checker prints.
    pub fn result_line(&self) -> String {
        let s = &self.stats;
        if self.is_ok() {
            format!(
                "RESULT ok events={} sends_ok={} sends_failed={} sends_unknown={} polls={} records_read={}",
                s.events, s.sends_ok, s.sends_failed, s.sends_unknown, s.polls, s.records_read
            )
        } else {
            let kinds: Vec<String> = self
                .counts()
                .iter()
                .map(|(name, n)| format!("{name}:{n}"))
                .collect();
            format!(
                "RESULT violation anomalies={} kinds={}",
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    topic: String,
    partition: u32,
    offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// How one consumer read one partition: the highest offset it read, and the offsets it jumped
/// over with forward seeks, as `[from, to)` where `from` is where it stood (after its last read or
/// repositioning; 0 if none) and `to` where it went.
#[derive(Default)]
struct Reading {
    max_read: Option<u64>,
    skips: Vec<(u64, u64)>,
    at: u64,
}

fn reading_by_process(ops: &[Operation]) -> BTreeMap<(&str, Tp), Reading> {
    let mut out: BTreeMap<(&str, Tp), Reading> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.outcome == EventType::Ok) {
        let e = &op.event;
        match op.f {
            Op::Seek | Op::FetchCommitted => {
                let (Some(t), Some(p), Some(to)) = (&e.topic, e.partition, e.offset) else {
                    continue;
                };
                let r = out
                    .entry((op.process.as_str(), (t.clone(), p)))
                    .or_default();
                // A forward move skips what lies between, whether an explicit seek or a resume
                // at a committed offset (another member read those records, or nobody did).
                if to > r.at {
                    r.skips.push((r.at, to));
                }
                r.at = to;
            }
            Op::Poll => {
                for rec in e.records.iter().flatten() {
                    let tp = (rec.topic.clone(), rec.partition);
                    let r = out.entry((op.process.as_str(), tp)).or_default();
                    r.at = rec.offset + 1;
                    r.max_read = Some(r.max_read.map_or(rec.offset, |m| m.max(rec.offset)));
                }
            }
            _ => {}
        }
    }
    out
}

/// Everything observed, indexed for the checks.
#[derive(Default)]
struct Observations<'a> {
    /// Values seen at each position, and how (read or acked).
    at: BTreeMap<Position, BTreeSet<&'a str>>,
    /// Positions each value was seen at.
    positions: BTreeMap<&'a str, BTreeSet<Position>>,
    /// Values some poll returned.
    read: BTreeSet<&'a str>,
    /// Offsets known to hold a record, per partition.
    known: BTreeMap<Tp, BTreeSet<u64>>,
    /// Highest offset read per partition.
    max_read: BTreeMap<Tp, u64>,
    /// Partitions each key was seen in, per topic.
    key_partitions: BTreeMap<(&'a str, String), BTreeSet<u32>>,
}

impl<'a> Observations<'a> {
    fn see(&mut self, pos: Position, value: &'a str, key: Option<&'a str>) {
        let tp = (pos.topic.clone(), pos.partition);
        self.known.entry(tp).or_default().insert(pos.offset);
        if let Some(k) = key {
            self.key_partitions
                .entry((k, pos.topic.clone()))
                .or_default()
                .insert(pos.partition);
        }
        self.at.entry(pos.clone()).or_default().insert(value);
        self.positions.entry(value).or_default().insert(pos);
    }
}

pub fn check(events: &[Event]) -> Report {
    let ops = pair(events);
    let mut stats = Stats {
        events: events.len(),
        ..Stats::default()
    };
    let mut obs = Observations::default();
    let mut acked: Vec<&Operation> = Vec::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for op in &ops {
        let e = &op.event;
        match (&op.f, op.outcome) {
            (Op::Send, EventType::Ok) => {
                stats.sends_ok += 1;
                if let (Some(t), Some(p), Some(o), Some(v)) =
                    (&e.topic, e.partition, e.offset, &e.value)
                {
                    obs.see(
                        Position {
                            topic: t.clone(),
                            partition: p,
                            offset: o,
                        },
                        v,
                        e.key.as_deref(),
                    );
                    acked.push(op);
                }
            }
            (Op::Send, EventType::Fail) => {
                stats.sends_failed += 1;
                if let Some(v) = &e.value {
                    failed.insert(v);
                }
            }
            (Op::Send, _) => stats.sends_unknown += 1,
            (Op::Poll, EventType::Ok) => {
                stats.polls += 1;
                for r in e.records.iter().flatten() {
                    stats.records_read += 1;
                    let pos = Position {
                        topic: r.topic.clone(),
                        partition: r.partition,
                        offset: r.offset,
                    };
                    let tp = (r.topic.clone(), r.partition);
                    let max = obs.max_read.entry(tp).or_insert(r.offset);
                    *max = (*max).max(r.offset);
                    obs.read.insert(&r.value);
                    obs.see(pos, &r.value, r.key.as_deref());
                }
            }
            (Op::Seek, EventType::Ok) => stats.seeks += 1,
            (Op::Commit, EventType::Ok) => stats.commits_ok += 1,
            (Op::Commit, EventType::Fail) => stats.commits_failed += 1,
            (Op::Commit, _) => stats.commits_unknown += 1,
            (Op::FetchCommitted, EventType::Ok) => stats.fetches_committed += 1,
            _ => {}
        }
    }
    let mut found: BTreeMap<(&'static str, String), String> = BTreeMap::new();
    let mut report = |name: &'static str, subject: String, detail: String| {
        found.entry((name, subject)).or_insert(detail);
    };

    for (pos, values) in &obs.at {
        if values.len() > 1 {
            let vs: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            report(
                "inconsistent-offsets",
                pos.to_string(),
                format!("seen with values {}", vs.join(" and ")),
            );
        }
    }
    for (value, positions) in &obs.positions {
        if positions.len() > 1 {
            let ps: Vec<String> = positions.iter().map(Position::to_string).collect();
            report(
                "duplicate",
                format!("value {value:?}"),
                format!("seen at {}", ps.join(" and ")),
            );
        }
    }
    let reading = reading_by_process(&ops);
    for op in &acked {
        let e = &op.event;
        let (Some(t), Some(p), Some(o), Some(v)) = (&e.topic, e.partition, e.offset, &e.value)
        else {
            continue;
        };
        if obs.read.contains(v.as_str()) {
            continue;
        }
        // Evidence of loss comes from consumers that read past `o` without jumping over it with
        // a forward seek (a jump, e.g. to the log start after retention deleted `o`, says
        // nothing about `o`).
        let tp = (t.clone(), p);
        let passed = reading
            .iter()
            .filter(|((_, rtp), r)| *rtp == tp && r.max_read.is_some_and(|m| m > o));
        let (mut witnesses, mut jumpers) = (0, 0);
        for (_, r) in passed {
            if r.skips.iter().any(|&(lo, hi)| lo <= o && o < hi) {
                jumpers += 1;
            } else {
                witnesses += 1;
            }
        }
        if witnesses == 0 && jumpers > 0 {
            continue;
        }
        let pos = Position {
            topic: t.clone(),
            partition: p,
            offset: o,
        };
        match obs.max_read.get(&(t.clone(), p)) {
            Some(&max) if max > o => report(
                "lost-write",
                pos.to_string(),
                format!(
                    "{v:?} acknowledged to {}, never read, although offsets up to {max} were read",
                    op.process
                ),
            ),
            _ => report(
                "unseen",
                pos.to_string(),
                format!("{v:?} acknowledged to {}, never read", op.process),
            ),
        }
    }
    for op in &ops {
        if op.f == Op::Poll && op.outcome == EventType::Ok {
            for r in op.event.records.iter().flatten() {
                if failed.contains(r.value.as_str()) {
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
    check_consumers(&ops, &obs, &mut report);
    check_producers(&acked, &mut report);
    check_groups(events, &ops, &obs.known, &mut report);
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

/// Per consumer and partition: reads move forward one known offset at a time, except after a
/// seek.
fn check_consumers(
    ops: &[Operation],
    obs: &Observations,
    report: &mut impl FnMut(&'static str, String, String),
) {
    // (process, tp) -> (last offset read, seek position pending)
    let mut last: BTreeMap<(&str, Tp), u64> = BTreeMap::new();
    let mut seek: BTreeMap<(&str, Tp), u64> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.outcome == EventType::Ok) {
        let e = &op.event;
        match op.f {
            // A group member resuming at its group's committed offset repositions like a seek
            // (after a rebalance it may be below or above what this member last read).
            Op::Seek | Op::FetchCommitted => {
                if let (Some(t), Some(p), Some(o)) = (&e.topic, e.partition, e.offset) {
                    let key = (op.process.as_str(), (t.clone(), p));
                    last.remove(&key);
                    seek.insert(key, o);
                }
            }
            Op::Poll => {
                for r in e.records.iter().flatten() {
                    let tp = (r.topic.clone(), r.partition);
                    let key = (op.process.as_str(), tp.clone());
                    // Built only when there is something to report: this loop sees every record.
                    let subject = || format!("{} {}-{}", op.process, r.topic, r.partition);
                    let known = obs.known.get(&tp);
                    let skipped =
                        |from: u64| known.and_then(|k| k.range(from..r.offset).next().copied());
                    if let Some(&prev) = last.get(&key) {
                        if r.offset <= prev {
                            report(
                                "nonmonotonic-poll",
                                subject(),
                                format!("read offset {} after {prev}", r.offset),
                            );
                        } else if let Some(gap) = skipped(prev + 1) {
                            report(
                                "poll-skip",
                                subject(),
                                format!("read offset {} after {prev}, skipping {gap}", r.offset),
                            );
                        }
                    } else if let Some(&from) = seek.get(&key) {
                        if r.offset < from {
                            report(
                                "nonmonotonic-poll",
                                subject(),
                                format!("read offset {} after seeking to {from}", r.offset),
                            );
                        } else if let Some(gap) = skipped(from) {
                            report(
                                "poll-skip",
                                subject(),
                                format!(
                                    "read offset {} after seeking to {from}, skipping {gap}",
                                    r.offset
                                ),
                            );
                        }
                    }
                    seek.remove(&key);
                    last.insert(key, r.offset);
                }
            }
            _ => {}
        }
    }
}

/// Per producer: acknowledged offsets grow per partition (in acknowledgement order) and per key
/// (in send order).
fn check_producers(acked: &[&Operation], report: &mut impl FnMut(&'static str, String, String)) {
    let mut last_in_partition: BTreeMap<(&str, Tp), (u64, &str)> = BTreeMap::new();
    for op in acked {
        let e = &op.event;
        let (Some(t), Some(p), Some(o), Some(v)) = (&e.topic, e.partition, e.offset, &e.value)
        else {
            continue;
        };
        let key = (op.process.as_str(), (t.clone(), p));
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
        let key = (op.process.as_str(), t.as_str(), k.as_str());
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
