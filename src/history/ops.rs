//! Events paired into operations. Apart from sends, a process has at most one operation in
//! flight: an `invoke` is completed by the next `ok`, `fail` or `info` of the same process. A
//! completion without an invoke (a poll or seek logged as one event) is an operation by itself;
//! an invoke that is never completed, or is overtaken by the process's next invoke, ends as
//! `info` (unknown).
//!
//! Sends are different: a producer pipelines, so one process may have many sends in flight, and
//! they complete in any order across partitions. A send's completion pairs with the process's
//! open send of the same value (values identify sends), or, if it names no value, with the
//! process's oldest open send; a send never completed ends as `info`.

use super::event::{Event, EventType, Op};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Borrows from the history it was paired from: a completion that omits nothing its invoke
/// says is used as it is, not copied (a poll's records are most of a history).
#[derive(Clone, Debug)]
pub struct Operation<'a> {
    pub process: &'a str,
    pub f: Op,
    /// `Ok`, `Fail` or `Info`.
    pub outcome: EventType,
    /// Position of the invoke (or of the completion, if there was no invoke) in the history:
    /// the order in which the process started its operations.
    pub started: usize,
    /// Position of the event that ended it: its completion, or its invoke if it never
    /// completed.
    pub ended: usize,
    /// Time of the invoke (or of the completion, if there was no invoke); the completion's time
    /// is `event.time_ns`. Together they bound when the operation took effect.
    pub invoked_ns: u64,
    /// The completion's fields, filled in from the invoke where the completion omits them.
    pub event: Cow<'a, Event>,
}

pub fn pair(events: &[Event]) -> Vec<Operation<'_>> {
    let mut open: BTreeMap<&str, (usize, &Event)> = BTreeMap::new();
    let mut sends: BTreeMap<&str, Vec<(usize, &Event)>> = BTreeMap::new();
    // At most one operation an event.
    let mut ops = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if e.f == Op::Send {
            let open_sends = sends.entry(&e.process).or_default();
            if e.kind == EventType::Invoke {
                open_sends.push((i, e));
                continue;
            }
            let same_value = e.value.as_ref().and_then(|v| {
                open_sends
                    .iter()
                    .position(|(_, inv)| inv.value.as_ref() == Some(v))
            });
            let pos = match (&e.value, same_value) {
                (_, Some(p)) => Some(p),
                (None, None) if !open_sends.is_empty() => Some(0),
                _ => None,
            };
            let (started, invoked_ns, merged) = match pos {
                Some(p) => {
                    let (started, invoke) = open_sends.remove(p);
                    (started, invoke.time_ns, merge(invoke, e))
                }
                None => (i, e.time_ns, Cow::Borrowed(e)),
            };
            ops.push(Operation {
                process: e.process.as_str(),
                f: e.f.clone(),
                outcome: e.kind,
                started,
                ended: i,
                invoked_ns,
                event: merged,
            });
            continue;
        }
        if e.kind == EventType::Invoke {
            if let Some((started, prev)) = open.insert(&e.process, (i, e)) {
                ops.push(unknown(started, prev));
            }
            continue;
        }
        let (started, invoked_ns, merged) = match open.remove(e.process.as_str()) {
            Some((started, invoke)) if invoke.f == e.f => {
                (started, invoke.time_ns, merge(invoke, e))
            }
            Some((started, invoke)) => {
                ops.push(unknown(started, invoke));
                (i, e.time_ns, Cow::Borrowed(e))
            }
            None => (i, e.time_ns, Cow::Borrowed(e)),
        };
        ops.push(Operation {
            process: e.process.as_str(),
            f: e.f.clone(),
            outcome: e.kind,
            started,
            ended: i,
            invoked_ns,
            event: merged,
        });
    }
    for (_, (started, invoke)) in open {
        ops.push(unknown(started, invoke));
    }
    for (started, invoke) in sends.into_values().flatten() {
        ops.push(unknown(started, invoke));
    }
    ops
}

/// An invoke never completed: its outcome is unknown.
fn unknown(started: usize, invoke: &Event) -> Operation<'_> {
    Operation {
        process: invoke.process.as_str(),
        f: invoke.f.clone(),
        outcome: EventType::Info,
        started,
        ended: started,
        invoked_ns: invoke.time_ns,
        event: Cow::Owned(Event {
            kind: EventType::Info,
            ..invoke.clone()
        }),
    }
}

/// The completion, with every field it omits taken from its invoke: a completion that only
/// says `ok` (or `info`: a seek that timed out) is about what was asked.
fn merge<'a>(invoke: &Event, done: &'a Event) -> Cow<'a, Event> {
    if !adds_to(invoke, done) {
        return Cow::Borrowed(done);
    }
    let mut e = done.clone();
    e.topic = e.topic.or_else(|| invoke.topic.clone());
    e.key = e.key.or_else(|| invoke.key.clone());
    e.value = e.value.or_else(|| invoke.value.clone());
    e.group = e.group.or_else(|| invoke.group.clone());
    e.partition = e.partition.or(invoke.partition);
    e.records = e.records.or_else(|| invoke.records.clone());
    e.partitions = e.partitions.or_else(|| invoke.partitions.clone());
    e.timestamp = e.timestamp.or(invoke.timestamp);
    // A subscribe's list and whether it roams come together.
    if e.topics.is_none() {
        e.topics = invoke.topics.clone();
        e.roaming = invoke.roaming;
    }
    // A fetch-committed completion without an offset means "none": its offset is the answer,
    // which the invoke cannot know.
    if !answers(&e.f) {
        e.offset = e.offset.or(invoke.offset);
    }
    Cow::Owned(e)
}

/// Whether `merge` would take anything from the invoke: a field it has that the completion
/// omits.
fn adds_to(invoke: &Event, done: &Event) -> bool {
    fn fills<T>(from: &Option<T>, to: &Option<T>) -> bool {
        from.is_some() && to.is_none()
    }
    fills(&invoke.topic, &done.topic)
        || fills(&invoke.key, &done.key)
        || fills(&invoke.value, &done.value)
        || fills(&invoke.group, &done.group)
        || fills(&invoke.partition, &done.partition)
        || fills(&invoke.records, &done.records)
        || fills(&invoke.partitions, &done.partitions)
        || fills(&invoke.topics, &done.topics)
        || fills(&invoke.timestamp, &done.timestamp)
        || (!answers(&done.f) && fills(&invoke.offset, &done.offset))
}

/// Operations whose completion's `offset` is the answer to what the invoke asked, never the
/// invoke's own.
fn answers(f: &Op) -> bool {
    matches!(
        f,
        Op::FetchCommitted | Op::LatestOffset | Op::OffsetForTime | Op::OffsetForMaxTimestamp
    )
}
