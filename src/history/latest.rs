//! `latest-ahead`: a partition's latest offset, as its leader answered it, must not count
//! records that were not committed.
//!
//! The latest offset (Kafka's ListOffsets with `LATEST`) is the leader's high watermark: every
//! offset below it holds a committed record, which no clean failover takes back. So a record
//! whose send was invoked after the answer arrived cannot land below the answer — the offsets
//! below it were taken. If one did (acknowledged there, or read there), the answer counted
//! offsets that were later given to other records: the leader answered its log end (uncommitted
//! records a failover truncated), or answered while deposed with a tail nobody kept.
//!
//! The converse (an answer below a record acknowledged before the request) is no anomaly: a
//! deposed leader that does not know it yet answers its old high watermark, in Kafka too.

use super::checker::Tp;
use super::event::{EventType, Op};
use super::ops::Operation;
use std::collections::BTreeMap;

/// One `ok` answer: the offset, where in the history it completed, and who asked.
struct Answer<'a> {
    offset: u64,
    ended: usize,
    process: &'a str,
}

pub(super) fn check_latest(
    ops: &[Operation],
    report: &mut impl FnMut(&'static str, String, String),
) {
    let mut answers: BTreeMap<Tp, Vec<Answer>> = BTreeMap::new();
    for op in ops {
        let e = &op.event;
        if op.f != Op::LatestOffset || op.outcome != EventType::Ok {
            continue;
        }
        if let (Some(t), Some(p), Some(o)) = (&e.topic, e.partition, e.offset) {
            answers.entry((t.as_str(), p)).or_default().push(Answer {
                offset: o,
                ended: op.ended,
                process: op.process,
            });
        }
    }
    if answers.is_empty() {
        return;
    }
    // Per partition, in the order the answers arrived, the highest answer so far: a record
    // sent after the k-th answer must land at or above the highest of the first k.
    for list in answers.values_mut() {
        list.sort_by_key(|a| a.ended);
    }
    let highest: BTreeMap<Tp, Vec<usize>> = answers
        .iter()
        .map(|(tp, list)| {
            let mut best = 0;
            let prefix = (0..list.len())
                .map(|i| {
                    if list[i].offset > list[best].offset {
                        best = i;
                    }
                    best
                })
                .collect();
            (*tp, prefix)
        })
        .collect();
    // When each value's send was first invoked (retries are one operation).
    let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.f == Op::Send) {
        if let Some(v) = &op.event.value {
            let at = sent.entry(v.as_str()).or_insert(op.started);
            *at = (*at).min(op.started);
        }
    }
    // Where each value was seen: acknowledged, or read by an `ok` poll.
    let mut judge = |t: &str, p: u32, o: u64, v: &str| {
        let tp = (t, p);
        let (Some(list), Some(&since)) = (answers.get(&tp), sent.get(v)) else {
            return;
        };
        // Answers that arrived before the send was invoked.
        let before = list.partition_point(|a| a.ended < since);
        if before == 0 {
            return;
        }
        let a = &list[highest[&tp][before - 1]];
        if a.offset > o {
            report(
                "latest-ahead",
                format!("{t}-{p}@{o}"),
                format!(
                    "{v:?} was sent after {} was told the latest offset is {}, yet it landed at \
                     {o}, below it",
                    a.process, a.offset
                ),
            );
        }
    };
    for op in ops {
        let e = &op.event;
        match (&op.f, op.outcome) {
            (Op::Send, EventType::Ok) => {
                if let (Some(t), Some(p), Some(o), Some(v)) =
                    (&e.topic, e.partition, e.offset, &e.value)
                {
                    judge(t, p, o, v);
                }
            }
            (Op::Poll, EventType::Ok) => {
                for r in e.records.iter().flatten() {
                    judge(&r.topic, r.partition, r.offset, &r.value);
                }
            }
            _ => {}
        }
    }
}
