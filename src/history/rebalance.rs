//! What a group member does across a rebalance: `stale-seek` and `poll-without-resume`.
//!
//! A group member records each assignment its group gives it as an `assign` naming the group
//! (a new generation; an `assign` without a group is the application's own, as in Jepsen's
//! histories). A new generation starts afresh: every position the member had is void, and it
//! starts each partition it was given at the group's committed offset (a fetch-committed), or
//! where the application then seeks, or at the log start a reset reports.
//!
//! - `poll-without-resume`: an `ok` poll returned records of a partition the group had given
//!   the member, with no fetch-committed, seek or reset of that partition by the member since
//!   the assignment: the member read on from a position of the generation before (a fetch in
//!   flight across the rebalance, a position it did not clear), skipping or repeating what the
//!   group's committed offset says. Subject `process topic-partition`.
//! - `stale-seek`: a member seeks to a partition's end, or to a time, in two steps: it asks the
//!   leader for the offset (a lookup: `latest-offset`, `offset-for-time` or
//!   `offset-for-max-timestamp` invoke) and moves there when the answer comes (the `ok`, then a
//!   `seek` to the same offset as its next event). If the group gave it a new assignment,
//!   or it resumed that partition at the committed offset, after it asked, the answer belongs to
//!   the generation before: Kafka's consumer drops such an answer to a seek to the end (it
//!   applies one only to a partition still waiting for it); a lookup by time answered across a
//!   rebalance is as stale (it was asked about the old generation's position). Applied, it moves the new generation's position past records nobody
//!   processed, and the `seek` makes the jump look like the application's choice, which
//!   `at-least-once` accepts; so the seek itself is the anomaly. Subject `process
//!   topic-partition`.
//!
//! A group `assign` is an eager rebalance's: the member gave up every partition first (Kafka's
//! classic protocol), so no position survives it, not even of a partition it is given again. A
//! tool whose members keep partitions across a rebalance (cooperative rebalancing) should write
//! only the partitions newly given, or write its assignments without a group.
//!
//! Only `ok` events accuse: an assignment, resume or answer that ended `info` may or may not have
//! happened. Any repositioning, `ok` or `info`, satisfies `poll-without-resume` (it may have
//! happened), if it was asked for (invoked) after the assignment: a fetch of the committed offset
//! sent in the generation before answers for that one. An answer not followed at once by a seek
//! to its offset is not judged. As everywhere in the format, a completion takes the partition it
//! omits from its invoke (the process's open one of the same kind; for a lookup, its one lookup
//! out, of whichever kind).

use super::checker::Tp;
use super::event::{Event, EventType, Op};
use std::collections::{BTreeMap, BTreeSet};

/// A lookup in flight (`is_lookup`), and what has made it stale since, if anything.
struct Ask {
    asked_ns: u64,
    /// What voided it: a new assignment, or a resume of the partition, after the ask.
    voided: Option<String>,
}

/// An answer to a voided ask: stale if the process's next event seeks to it.
struct StaleAnswer<'a> {
    tp: Tp<'a>,
    /// What was looked up (`lookup_name`).
    lookup: &'static str,
    offset: u64,
    asked_ns: u64,
    answered_ns: u64,
    voided: String,
}

/// A request for an offset to seek to: the latest offset (the end), the first offset at a
/// time, or the offset of the largest timestamp.
fn is_lookup(f: &Op) -> bool {
    matches!(
        f,
        Op::LatestOffset | Op::OffsetForTime | Op::OffsetForMaxTimestamp
    )
}

fn lookup_name(f: &Op) -> &'static str {
    match f {
        Op::OffsetForTime => "offset-for-time",
        Op::OffsetForMaxTimestamp => "offset-for-max-timestamp",
        _ => "latest-offset",
    }
}

pub(super) fn check_rebalances(
    events: &[Event],
    report: &mut impl FnMut(&'static str, String, String),
) {
    let mut asks: BTreeMap<(&str, Tp), Ask> = BTreeMap::new();
    let mut answered: BTreeMap<&str, StaleAnswer> = BTreeMap::new();
    // Partitions a group gave a member that it has not repositioned since, and when.
    let mut unpositioned: BTreeMap<(&str, Tp), u64> = BTreeMap::new();
    // How many group assignments each process has had: a request belongs to the generation it
    // was invoked in.
    let mut generation: BTreeMap<&str, u64> = BTreeMap::new();
    // Each process's open invoke (sends aside): what it asked, on which partition, in which
    // generation. A completion takes the partition it omits from it.
    let mut open: BTreeMap<&str, (&Op, Option<Tp>, u64)> = BTreeMap::new();
    for e in events {
        let process = e.process.as_str();
        let ok = e.kind == EventType::Ok;
        let current = generation.get(process).copied().unwrap_or(0);
        let named = e.topic.as_deref().zip(e.partition);
        if e.f == Op::Send {
            continue;
        }
        // A seek written as an invoke and its completion applies the answer at its completion.
        let stale = if e.f == Op::Seek && e.kind == EventType::Invoke {
            None
        } else {
            answered.remove(process)
        };
        // The partition, and the generation the operation was asked in.
        let (tp, asked_in) = if e.kind == EventType::Invoke {
            open.insert(process, (&e.f, named, current));
            (named, current)
        } else {
            match open.get(process).filter(|(f, _, _)| **f == e.f) {
                Some(&(_, invoked_tp, asked_in)) => {
                    open.remove(process);
                    (named.or(invoked_tp), asked_in)
                }
                None => (named, current),
            }
        };
        match e.f {
            Op::Assign if ok && e.group.is_some() => {
                generation.insert(process, current + 1);
                let given: BTreeSet<Tp> = e
                    .partitions
                    .iter()
                    .flatten()
                    .map(|p| (p.topic.as_str(), p.partition))
                    .collect();
                unpositioned.retain(|(p, _), _| *p != process);
                for tp in &given {
                    unpositioned.insert((process, *tp), e.time_ns);
                }
                let why = format!("got a new assignment at {} ns", e.time_ns);
                let mine = asks.range_mut((process, ("", 0))..);
                for (_, ask) in mine.take_while(|((p, _), _)| *p == process) {
                    ask.voided.get_or_insert_with(|| why.clone());
                }
            }
            Op::Poll if ok => {
                for r in e.records.iter().flatten() {
                    let tp = (r.topic.as_str(), r.partition);
                    if let Some(since) = unpositioned.remove(&(process, tp)) {
                        report(
                            "poll-without-resume",
                            format!("{process} {}-{}", r.topic, r.partition),
                            format!(
                                "read offset {} with no fetch of the committed offset, seek or \
                                 reset of the partition since its group assigned it at {since} ns",
                                r.offset
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        // An answer that names no partition answers the process's one lookup, if it has exactly
        // one out.
        let tp = tp.or_else(|| {
            let mine = asks.range((process, ("", 0))..);
            let mut pending = mine.take_while(|((p, _), _)| *p == process);
            match (is_lookup(&e.f), pending.next(), pending.next()) {
                (true, Some(((_, tp), _)), None) => Some(*tp),
                _ => None,
            }
        });
        let Some(tp) = tp else {
            continue;
        };
        let (topic, partition) = tp;
        // A repositioning asked for in an earlier generation does not start this one.
        let repositions = matches!(e.f, Op::Seek | Op::Reset | Op::FetchCommitted)
            && matches!(e.kind, EventType::Ok | EventType::Info)
            && asked_in == current;
        if repositions {
            unpositioned.remove(&(process, tp));
        }
        match (&e.f, e.kind) {
            (Op::Seek, EventType::Ok) => {
                let Some(s) = stale.filter(|s| s.tp == tp && Some(s.offset) == e.offset) else {
                    continue;
                };
                report(
                    "stale-seek",
                    format!("{process} {topic}-{partition}"),
                    format!(
                        "moved to offset {}, the answer to its {} asked for at {} ns (answered \
                         at {} ns), though it {}: the answer belonged to the generation before",
                        s.offset, s.lookup, s.asked_ns, s.answered_ns, s.voided
                    ),
                );
            }
            (f, EventType::Invoke) if is_lookup(f) => {
                let ask = Ask {
                    asked_ns: e.time_ns,
                    voided: None,
                };
                asks.insert((process, tp), ask);
            }
            (Op::FetchCommitted, EventType::Ok) => {
                if let Some(ask) = asks.get_mut(&(process, tp)) {
                    let o = e.offset.map_or("none".to_string(), |o| o.to_string());
                    let at = e.time_ns;
                    let why =
                        format!("resumed the partition at the committed offset {o} at {at} ns");
                    ask.voided.get_or_insert(why);
                }
            }
            (f, kind) if is_lookup(f) => {
                let ask = asks.remove(&(process, tp));
                let voided = ask.and_then(|a| Some((a.asked_ns, a.voided?)));
                if let (EventType::Ok, Some((asked_ns, voided)), Some(offset)) =
                    (kind, voided, e.offset)
                {
                    let answer = StaleAnswer {
                        tp,
                        lookup: lookup_name(f),
                        offset,
                        asked_ns,
                        answered_ns: e.time_ns,
                        voided,
                    };
                    answered.insert(process, answer);
                }
            }
            _ => {}
        }
    }
}
