//! Consumer-group checks (`offset-regression`, `stale-offset`, `at-least-once`; see `checker`'s
//! module comment).
//!
//! A group's committed offset for a partition is observed by its `ok` commits (the value it
//! wrote) and `ok` fetch-committed (the value the broker returned, or none). A process belongs
//! to a group if any of its events names the group. An operation took effect somewhere between
//! its invoke and its completion, so "A before B" below always means B was invoked after A
//! completed: concurrency never makes an anomaly.
//!
//! "Seek" below means a member's repositioning: a seek, or a reset to the log start. Seeks,
//! resets and polls that ended `info` may have happened, so they excuse as if they had (a
//! possibly processed record, a possible jump or rewind) and never accuse; commits and
//! fetches that ended `info` are no observations, but an `info` commit is a write that may land
//! at any time after its invoke.

use super::checker::Tp;
use super::event::{Event, EventType, Op};
use super::ops::Operation;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// (group, topic, partition)
type GroupTp<'a> = (&'a str, Tp<'a>);

/// One observation of a group's committed offset.
struct Committed<'a> {
    op: &'a Operation<'a>,
    /// `None`: a fetch found no committed offset.
    offset: Option<u64>,
    /// Position among the operations, which `pair` emits in completion order: breaks ties of
    /// equal completion times.
    order: usize,
}

impl Committed<'_> {
    fn completed(&self) -> u64 {
        self.op.event.time_ns
    }
}

impl fmt::Display for Committed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.op.f == Op::Commit {
            "commit of"
        } else {
            "fetch-committed returning"
        };
        let offset = self.offset.map_or("none".to_string(), |o| o.to_string());
        write!(
            f,
            "{what} {offset} by {} (invoked {} ns, ok {} ns)",
            self.op.process,
            self.op.invoked_ns,
            self.completed()
        )
    }
}

/// A commit that may have taken effect: `ok`, or `info` (it may land at any time after its
/// invoke). Failed commits did not happen and are not kept.
struct Write<'a> {
    op: &'a Operation<'a>,
    offset: u64,
    /// When it certainly had taken effect (`None`: an `info` commit, never certain).
    done_ns: Option<u64>,
}

/// A repositioning by a group member — a seek, or a reset to the log start — which may make the
/// group commit lower, or jump over records. `ok` or `info` (it may have happened: it may
/// excuse).
struct Seek<'a> {
    op: &'a Operation<'a>,
    offset: u64,
    /// Where the process stood before (after its last read or repositioning; 0 if none): a
    /// move from `from` to a higher `offset` jumps over `[from, offset)`.
    from: u64,
}

/// What the group checks need, gathered once.
#[derive(Default)]
struct Groups<'a> {
    /// Groups each process belongs to.
    member_of: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Observations of each group's committed offsets, in completion order.
    committed: BTreeMap<GroupTp<'a>, Vec<Committed<'a>>>,
    /// Every commit of each group's offsets that may have taken effect.
    writes: BTreeMap<GroupTp<'a>, Vec<Write<'a>>>,
    /// Seeks and resets per partition, by any process (membership is checked per group).
    seeks: BTreeMap<Tp<'a>, Vec<Seek<'a>>>,
    /// (partition, offset, process) read by `ok` polls, or possibly by `info` ones; sorted
    /// without repeats once gathered (`by_record`), so the readers of a record are one run.
    processed_by: Vec<(Tp<'a>, u64, &'a str)>,
}

impl<'a> Groups<'a> {
    fn gather(events: &'a [Event], ops: &'a [Operation<'a>]) -> Groups<'a> {
        let mut g = Groups::default();
        for e in events {
            if let Some(group) = &e.group {
                g.member_of.entry(&e.process).or_default().insert(group);
            }
        }
        // Each process's position per partition, to tell forward jumps from rewinds.
        let mut at: BTreeMap<(&str, Tp), u64> = BTreeMap::new();
        for (order, op) in ops.iter().enumerate() {
            let e = &op.event;
            let tp = e.topic.as_deref().zip(e.partition);
            let certain = op.outcome == EventType::Ok;
            if let (
                Op::Commit,
                EventType::Ok | EventType::Info,
                Some(group),
                Some(tp),
                Some(offset),
            ) = (&op.f, op.outcome, &e.group, tp, e.offset)
            {
                let w = Write {
                    op,
                    offset,
                    done_ns: (op.outcome == EventType::Ok).then_some(e.time_ns),
                };
                g.writes.entry((group.as_str(), tp)).or_default().push(w);
            }
            match (&op.f, op.outcome, &e.group, tp) {
                (Op::Commit | Op::FetchCommitted, EventType::Ok, Some(group), Some(tp)) => {
                    if let (Op::FetchCommitted, Some(o)) = (&op.f, e.offset) {
                        move_to(&mut at, op.process, tp, o, true);
                    }
                    // A commit without an offset cannot be checked; `parse_history` makes its invoke
                    // carry one, so this is only a lone completion.
                    if op.f == Op::Commit && e.offset.is_none() {
                        continue;
                    }
                    g.committed
                        .entry((group.as_str(), tp))
                        .or_default()
                        .push(Committed {
                            op,
                            offset: e.offset,
                            order,
                        });
                }
                (Op::FetchCommitted, EventType::Info, _, Some(tp)) => {
                    if let Some(o) = e.offset {
                        move_to(&mut at, op.process, tp, o, false);
                    }
                }
                (Op::Seek | Op::Reset, EventType::Ok | EventType::Info, _, Some(tp)) => {
                    if let Some(offset) = e.offset {
                        let from = move_to(&mut at, op.process, tp, offset, certain);
                        g.seeks
                            .entry(tp)
                            .or_default()
                            .push(Seek { op, offset, from });
                    }
                }
                (Op::Poll, EventType::Ok | EventType::Info, _, _) => {
                    for r in e.records.iter().flatten() {
                        let tp = (r.topic.as_str(), r.partition);
                        move_to(&mut at, op.process, tp, r.offset + 1, certain);
                        g.processed_by.push((tp, r.offset, op.process));
                    }
                }
                _ => {}
            }
        }
        g.processed_by
            .sort_unstable_by(|a, b| by_record(a).cmp(&by_record(b)));
        g.processed_by.dedup();
        for observations in g.committed.values_mut() {
            observations.sort_by_key(|c| (c.completed(), c.order));
        }
        g
    }

    fn is_member(&self, process: &str, group: &str) -> bool {
        self.member_of
            .get(process)
            .is_some_and(|groups| groups.contains(group))
    }

    /// Seeks on `tp` by members of `group`.
    fn member_seeks<'s>(
        &'s self,
        group: &'s str,
        tp: &Tp<'s>,
    ) -> impl Iterator<Item = &'s Seek<'a>> + 's {
        self.seeks
            .get(tp)
            .into_iter()
            .flatten()
            .filter(move |s| self.is_member(s.op.process, group))
    }

    fn processed(&self, group: &str, tp: &Tp, offset: u64) -> bool {
        let first = self
            .processed_by
            .partition_point(|r| by_record(r) < (offset, tp.1, tp.0, ""));
        self.processed_by[first..]
            .iter()
            .take_while(|(t, o, _)| t == tp && *o == offset)
            .any(|(_, _, process)| self.is_member(process, group))
    }
}

/// The order of `processed_by`: offset first, then partition, topic and process. It keeps each
/// record's readers together as any order of its fields would, and settles most comparisons of
/// a sort of thousands of reads without comparing names.
fn by_record<'a>(&(tp, offset, process): &(Tp<'a>, u64, &'a str)) -> (u64, u32, &'a str, &'a str) {
    (offset, tp.1, tp.0, process)
}

/// Moves `process`'s position in `tp` to `to`, certainly (an `ok` operation) or possibly (an
/// `info` one: it keeps the lower of the two, as a lower start only widens what a later forward
/// jump excuses). Returns where it stood (0 if nowhere yet).
fn move_to<'a>(
    at: &mut BTreeMap<(&'a str, Tp<'a>), u64>,
    process: &'a str,
    tp: Tp<'a>,
    to: u64,
    certain: bool,
) -> u64 {
    let here = at.entry((process, tp)).or_insert(0);
    let from = *here;
    *here = if certain { to } else { from.min(to) };
    from
}

pub(super) fn check_groups(
    events: &[Event],
    ops: &[Operation],
    known: &BTreeMap<Tp, BTreeSet<u64>>,
    report: &mut impl FnMut(&'static str, String, String),
) {
    let groups = Groups::gather(events, ops);
    for ((group, tp), observations) in &groups.committed {
        let subject = format!("{group} {}-{}", tp.0, tp.1);
        if let Some(detail) = regression(&groups, group, tp, observations) {
            report("offset-regression", subject.clone(), detail);
        }
        let writes = groups
            .writes
            .get(&(*group, *tp))
            .map_or(&[][..], Vec::as_slice);
        if let Some(detail) = stale_read(writes, observations) {
            report("stale-offset", subject, detail);
        }
        check_at_least_once(&groups, group, tp, observations, known, report);
    }
}

/// The first observation B that shows the committed offset lower than an observation A before
/// it (B invoked after A completed), or gone. A lower offset is excused by a member's seek on
/// the partition to at most B's offset that may have taken effect between A and B: one that
/// completed at or after A's invoke and was invoked at or before B's completion (the widest
/// window in which the seek, and the lower commit it led to, can fall after A took effect and
/// before B did). A lower commit B is excused the same way by its own process's fetch-committed
/// returning at most B's offset (it resumed there; that fetch is judged as an observation
/// itself). A lower fetch B is excused by a commit of its offset that may have landed after A
/// (invoked at or before A's completion and not completed before A's invoke; an `info` commit
/// never completes) sent by a member before its own commit of A's value: a member's delayed
/// request, which the coordinator applies when it arrives. Another member's commit landing
/// there is not excused: two members commit one partition at once only if one of them is
/// stale, and the coordinator must fence it. Nothing excuses a vanished offset: seeks do not
/// delete commits.
fn regression(groups: &Groups, group: &str, tp: &Tp, observations: &[Committed]) -> Option<String> {
    // `observations` are in completion order, so the ones before B are a prefix; keep the
    // highest offset of each prefix: most B are not below it and are cleared without a scan.
    let mut highest: Vec<Option<u64>> = vec![None];
    for c in observations {
        let last = highest.last().copied().flatten();
        highest.push(last.max(c.offset));
    }
    for b in observations {
        let before = observations.partition_point(|a| a.completed() < b.op.invoked_ns);
        let Some(max_before) = highest[before] else {
            continue;
        };
        let earlier = &observations[..before];
        match b.offset {
            None => {
                if let Some(a) = earlier.iter().rev().find(|a| a.offset.is_some()) {
                    return Some(format!("{b} after {a}: the committed offset vanished"));
                }
            }
            Some(lower) if lower < max_before => {
                let writes = groups
                    .writes
                    .get(&(group, *tp))
                    .map_or(&[][..], Vec::as_slice);
                let may_follow_a = |a: &Committed, invoked: u64, done: u64| {
                    done >= a.op.invoked_ns && invoked <= b.completed()
                };
                let excused = |a: &Committed| {
                    let seek_back = groups.member_seeks(group, tp).any(|s| {
                        s.offset <= lower && may_follow_a(a, s.op.invoked_ns, s.op.event.time_ns)
                    });
                    // The member that wrote A's value sent a commit of `lower` before that
                    // one, and it may have landed after A.
                    let delayed_write = b.op.f == Op::FetchCommitted
                        && writes.iter().any(|w| {
                            w.offset == lower
                                && w.op.invoked_ns <= a.completed()
                                && w.done_ns.is_none_or(|done| done >= a.op.invoked_ns)
                                && writes.iter().any(|x| {
                                    Some(x.offset) == a.offset
                                        && x.op.process == w.op.process
                                        && x.op.invoked_ns >= w.op.invoked_ns
                                })
                        });
                    let resumed = b.op.f == Op::Commit
                        && observations.iter().any(|r| {
                            r.op.f == Op::FetchCommitted
                                && r.op.process == b.op.process
                                && r.offset.is_some_and(|o| o <= lower)
                                && may_follow_a(a, r.op.invoked_ns, r.completed())
                        });
                    seek_back || delayed_write || resumed
                };
                let unexcused = earlier
                    .iter()
                    .find(|a| a.offset.is_some_and(|o| o > lower) && !excused(a));
                if let Some(a) = unexcused {
                    return Some(format!("{b} after {a}, with no seek back in between"));
                }
            }
            Some(_) => {}
        }
    }
    None
}

/// The first `ok` fetch-committed R returning an offset `v` that every commit of `v` which may
/// have taken effect before R (invoked before R completed) was overwritten before R began: a
/// commit of another offset, `ok`, invoked after that commit of `v` completed and completed
/// before R was invoked. Commits are the only writes of a group's offset, so the last write
/// before R cannot have been one of `v` (the committed offset is a register: reads see the
/// last write). An `info` commit of `v` may land at any time, so it is never overwritten. A
/// fetch of an offset no recorded commit wrote is not judged (a history may leave out a
/// writer: an operator's reset, say).
fn stale_read(writes: &[Write], observations: &[Committed]) -> Option<String> {
    let fetches = observations
        .iter()
        .filter(|r| r.op.f == Op::FetchCommitted)
        .filter_map(|r| r.offset.map(|v| (r, v)));
    'fetches: for (r, v) in fetches {
        let overwriter = |w: &Write| {
            let done = w.done_ns?;
            writes.iter().find(|x| {
                x.offset != v
                    && x.op.invoked_ns > done
                    && x.done_ns.is_some_and(|ok| ok < r.op.invoked_ns)
            })
        };
        // The latest candidate commit of `v` and what overwrote it; one not overwritten (or
        // no candidate at all) clears the fetch.
        let mut latest: Option<(&Write, &Write)> = None;
        for w in writes
            .iter()
            .filter(|w| w.offset == v && w.op.invoked_ns <= r.completed())
        {
            let Some(x) = overwriter(w) else {
                continue 'fetches;
            };
            if latest.is_none_or(|(l, _)| l.done_ns < w.done_ns) {
                latest = Some((w, x));
            }
        }
        if let Some((w, x)) = latest {
            return Some(format!(
                "{r}, though every commit of {v} before it was overwritten before it began: \
                 the last, by {} (ok {} ns), by the commit of {} by {} (invoked {} ns, ok {} ns)",
                w.op.process,
                w.done_ns.unwrap_or_default(),
                x.offset,
                x.op.process,
                x.op.invoked_ns,
                x.done_ns.unwrap_or_default()
            ));
        }
    }
    None
}

/// Every known record below the group's final committed offset (the last observation, by
/// completion, that has one) was read by an `ok` poll of a member (or possibly, by an `info`
/// one), unless a member jumped over it with a forward seek or a reset to the log start (a
/// deliberate skip, or records retention deleted; a seek back to re-read excuses nothing).
fn check_at_least_once(
    groups: &Groups,
    group: &str,
    tp: &Tp,
    observations: &[Committed],
    known: &BTreeMap<Tp, BTreeSet<u64>>,
    report: &mut impl FnMut(&'static str, String, String),
) {
    let Some((last, end)) = observations
        .iter()
        .rev()
        .find_map(|c| c.offset.map(|o| (c, o)))
    else {
        return;
    };
    // Only a forward jump over a record excuses it: a rewind (seek back to re-read) skips
    // nothing.
    let jumps: Vec<(u64, u64)> = groups
        .member_seeks(group, tp)
        .filter(|s| s.offset > s.from)
        .map(|s| (s.from, s.offset))
        .collect();
    for &offset in known.get(tp).into_iter().flat_map(|k| k.range(..end)) {
        let jumped = jumps
            .iter()
            .any(|&(from, to)| from <= offset && offset < to);
        if jumped || groups.processed(group, tp, offset) {
            continue;
        }
        report(
            "at-least-once",
            format!("{group} {}-{}@{offset}", tp.0, tp.1),
            format!(
                "below final committed offset {end}, from the {last}, but no member of {group} \
                 processed it"
            ),
        );
    }
}
