//! The history format: JSON lines, one operation event per line.
//!
//! ```text
//! {"process":"p0","type":"invoke","f":"send","time_ns":1000,"topic":"t","key":"k","value":"v1"}
//! {"process":"p0","type":"ok","f":"send","time_ns":2000,"partition":0,"offset":0}
//! {"process":"c0","type":"ok","f":"poll","time_ns":3000,"records":[{"topic":"t","partition":0,"offset":0,"key":"k","value":"v1"}]}
//! {"process":"c0","type":"ok","f":"seek","time_ns":4000,"topic":"t","partition":0,"offset":0}
//! {"process":"c1","type":"ok","f":"reset","time_ns":5000,"topic":"t","partition":0,"offset":12}
//! ```
//!
//! `type` is `invoke`, `ok`, `fail` (definitely did not happen) or `info` (outcome unknown). A
//! completion takes every field it omits from its invoke (`ops::pair`), except a
//! fetch-committed's `offset`, which is the answer. `process`, `topic`, `key`, `value` and
//! `group` may be strings or integers (an integer reads as its decimal text). Unknown fields are
//! ignored.
//!
//! A `reset` says what a consumer learned about a partition's log start: its fetch was out of
//! range (below the log start, retention having deleted what it had not read; or past the log
//! end, with `auto.offset.reset=earliest`), the broker's answer put the log start at `offset`, and
//! the consumer moved there. Records below it are gone; that is the only excuse for an
//! acknowledged record nobody read.
//!
//! Consumer-group members add `"group"` to their polls, seeks and resets, and write commits and
//! fetches of the group's committed offset (`offset` is always the next offset to read):
//!
//! ```text
//! {"process":"c1","type":"invoke","f":"commit","time_ns":5000,"group":"g","topic":"t","partition":0,"offset":1}
//! {"process":"c1","type":"ok","f":"commit","time_ns":6000}
//! {"process":"c2","type":"invoke","f":"fetch-committed","time_ns":7000,"group":"g","topic":"t","partition":0}
//! {"process":"c2","type":"ok","f":"fetch-committed","time_ns":8000,"offset":1}
//! ```
//!
//! A fetch-committed `ok` without `offset` means the group had none for that partition.
//!
//! A `latest-offset` asks a partition's leader for its latest offset; an `offset-for-time` for the
//! first offset whose record's timestamp is at least `timestamp` (milliseconds). Each `ok` carries
//! the answer in `offset`; an `offset-for-time`'s also the found record's `record_timestamp`
//! (absent: none found, the offset is the high watermark) and, if known, the answering leader's
//! `log_start`. Polled records may carry their `timestamp`:
//!
//! ```text
//! {"process":"c1","type":"invoke","f":"offset-for-time","time_ns":9000,"topic":"t","partition":0,"timestamp":1700000002000}
//! {"process":"c1","type":"ok","f":"offset-for-time","time_ns":9500,"offset":1,"record_timestamp":1700000002000,"log_start":0}
//! ```
//!
//! An `offset-for-max-timestamp` asks for the first offset holding the largest timestamp of the
//! partition's committed records (Kafka's max-timestamp lookup); its `ok` carries `offset`,
//! `record_timestamp` (absent: no committed record, the offset is the high watermark) and, if
//! known, the leader's `log_start` and `high_watermark`, the offsets it looked at:
//!
//! ```text
//! {"process":"c1","type":"invoke","f":"offset-for-max-timestamp","time_ns":9600,"topic":"t","partition":0}
//! {"process":"c1","type":"ok","f":"offset-for-max-timestamp","time_ns":9700,"offset":2,"record_timestamp":1700000005000,"log_start":0,"high_watermark":4}
//! ```
//!
//! `assign` and `subscribe` (as in Jepsen's Kafka workload) change which partitions a consumer
//! reads: `"partitions":[{"topic":"t","partition":0}]` for an assign, `"topics":["t"]` for a
//! subscribe; a list missing or in any other shape means "unknown".
//!
//! Operations with any other `f` are kept and counted, not checked: only their `process`, `type`
//! and `time_ns` are read (so they still pair with their invoke), whatever else they carry.
//!
//! Sends, polls and transactions written as Jepsen's Kafka workload writes them (lists of
//! micro-operations in `value`, `time` for `time_ns`) are read too, each micro-operation as an
//! operation of its own (`super::jepsen`).

use super::edn;
use super::jepsen::{self, MicroOp};
use super::ops::{pair, Operation};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    // The aliases read keywords converted from EDN with their colon (Jepsen's `:ok`).
    #[serde(alias = ":invoke")]
    Invoke,
    #[serde(alias = ":ok")]
    Ok,
    #[serde(alias = ":fail")]
    Fail,
    #[serde(alias = ":info")]
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    #[serde(alias = ":send")]
    Send,
    #[serde(alias = ":poll")]
    Poll,
    #[serde(alias = ":seek")]
    Seek,
    /// The consumer moved to the partition's log start (`offset`), which the broker reported
    /// when its fetch was out of range: records below it were deleted.
    #[serde(alias = ":reset")]
    Reset,
    #[serde(alias = ":commit")]
    Commit,
    #[serde(alias = ":fetch-committed")]
    FetchCommitted,
    /// The consumer asked the partition's leader for its latest offset (Kafka's ListOffsets with
    /// `LATEST`: the high watermark); `offset` is the answer.
    #[serde(alias = ":latest-offset")]
    LatestOffset,
    /// The consumer asked the partition's leader for the first offset whose record's timestamp
    /// is at least `timestamp` (Kafka's ListOffsets by time, `offsetsForTimes`); `offset` is the
    /// answer, `record_timestamp` the found record's (absent: none found, and `offset` is the
    /// high watermark), `log_start` the leader's log start if known.
    OffsetForTime,
    /// The consumer asked the partition's leader for the first offset holding the largest
    /// timestamp of its committed records (Kafka's ListOffsets by max timestamp); `offset` is
    /// the answer, `record_timestamp` that timestamp (absent: no committed record, and `offset`
    /// is the high watermark), `log_start` and `high_watermark` the leader's if known.
    OffsetForMaxTimestamp,
    /// The consumer's partitions are now `partitions`.
    #[serde(alias = ":assign")]
    Assign,
    /// The consumer lets its group choose its partitions among `topics`.
    #[serde(alias = ":subscribe")]
    Subscribe,
    /// An operation this checker does not know; kept, counted, not checked.
    #[serde(other)]
    Other,
}

impl Op {
    /// Operations whose fields are read strictly: a field of the wrong type makes the line
    /// malformed. The others must never make a history unreadable.
    fn is_checked(&self) -> bool {
        matches!(
            self,
            Op::Send
                | Op::Poll
                | Op::Seek
                | Op::Reset
                | Op::Commit
                | Op::FetchCommitted
                | Op::LatestOffset
                | Op::OffsetForTime
                | Op::OffsetForMaxTimestamp
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolledRecord {
    #[serde(deserialize_with = "text")]
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    #[serde(default, deserialize_with = "opt_text")]
    pub key: Option<String>,
    #[serde(deserialize_with = "text")]
    pub value: String,
    /// The record's timestamp (milliseconds), if the consumer wrote it: what answers by time
    /// are checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// One partition of an `assign`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition {
    #[serde(deserialize_with = "text")]
    pub topic: String,
    pub partition: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(deserialize_with = "text")]
    pub process: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: Op,
    #[serde(alias = "time")]
    pub time_ns: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub topic: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub key: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<PolledRecord>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub group: Option<String>,
    /// An `assign`'s partitions.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub partitions: Option<Vec<Partition>>,
    /// A `subscribe`'s topics.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub topics: Option<Vec<String>>,
    /// An `offset-for-time`'s time asked (milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// An `offset-for-time` answer's record timestamp (absent: no record found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_timestamp: Option<i64>,
    /// The log start of the leader that answered an `offset-for-time` or
    /// `offset-for-max-timestamp`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_start: Option<u64>,
    /// The high watermark of the leader that answered an `offset-for-max-timestamp`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_watermark: Option<u64>,
    /// A subscribe written as Jepsen's (a list of keys): until its next assign the consumer's
    /// positions are not tracked, as Jepsen's checker allows skips and going back under a
    /// subscription (its group rebalances, unrecorded, move the consumer). Not part of the
    /// format: set by the reader.
    #[serde(skip)]
    pub roaming: bool,
}

impl Event {
    fn new(process: &str, kind: EventType, f: Op, time_ns: u64) -> Event {
        Event {
            process: process.to_string(),
            kind,
            f,
            time_ns,
            topic: None,
            key: None,
            value: None,
            partition: None,
            offset: None,
            records: None,
            group: None,
            partitions: None,
            topics: None,
            timestamp: None,
            record_timestamp: None,
            log_start: None,
            high_watermark: None,
            roaming: false,
        }
    }
    /// A send's start, or (with `kind` fail/info) its end without an offset.
    pub fn send(
        process: &str,
        kind: EventType,
        time_ns: u64,
        topic: &str,
        key: Option<&str>,
        value: &str,
    ) -> Event {
        Event {
            topic: Some(topic.to_string()),
            key: key.map(str::to_string),
            value: Some(value.to_string()),
            ..Event::new(process, kind, Op::Send, time_ns)
        }
    }

    /// A send acknowledged at `partition`/`offset`.
    pub fn send_ok(
        process: &str,
        time_ns: u64,
        topic: &str,
        key: Option<&str>,
        value: &str,
        partition: u32,
        offset: u64,
    ) -> Event {
        Event {
            partition: Some(partition),
            offset: Some(offset),
            ..Event::send(process, EventType::Ok, time_ns, topic, key, value)
        }
    }

    pub fn poll(process: &str, kind: EventType, time_ns: u64, records: Vec<PolledRecord>) -> Event {
        Event {
            records: (kind == EventType::Ok).then_some(records),
            ..Event::new(process, kind, Op::Poll, time_ns)
        }
    }

    pub fn seek(process: &str, time_ns: u64, topic: &str, partition: u32, offset: u64) -> Event {
        Event {
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset: Some(offset),
            ..Event::new(process, EventType::Ok, Op::Seek, time_ns)
        }
    }

    /// A consumer's move to the log start `offset` of `partition`, which its fetch, out of range
    /// below it, reported.
    pub fn reset(process: &str, time_ns: u64, topic: &str, partition: u32, offset: u64) -> Event {
        Event {
            f: Op::Reset,
            ..Event::seek(process, time_ns, topic, partition, offset)
        }
    }

    /// An assignment of `partitions` (None: unknown) to a consumer.
    pub fn assign(
        process: &str,
        kind: EventType,
        time_ns: u64,
        partitions: Option<Vec<Partition>>,
    ) -> Event {
        Event {
            partitions,
            ..Event::new(process, kind, Op::Assign, time_ns)
        }
    }

    /// The same event with outcome `kind` (e.g. a seek that ended `info`).
    pub fn ending(self, kind: EventType) -> Event {
        Event { kind, ..self }
    }

    /// The same event made by a member of consumer group `group` (for polls, seeks and resets).
    pub fn in_group(self, group: &str) -> Event {
        Event {
            group: Some(group.to_string()),
            ..self
        }
    }

    /// A commit of `offset` (the next offset to read) for `group`; an invoke, or its end.
    pub fn commit(
        process: &str,
        kind: EventType,
        time_ns: u64,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Event {
        Event {
            f: Op::Commit,
            offset: Some(offset),
            ..Event::fetch_committed(process, kind, time_ns, group, topic, partition, None)
        }
    }

    /// A fetch of `group`'s committed offset: an invoke (`offset` None), or its end; an `ok`
    /// with `offset` None means the group had no committed offset for the partition.
    pub fn fetch_committed(
        process: &str,
        kind: EventType,
        time_ns: u64,
        group: &str,
        topic: &str,
        partition: u32,
        offset: Option<u64>,
    ) -> Event {
        Event {
            group: Some(group.to_string()),
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset,
            ..Event::new(process, kind, Op::FetchCommitted, time_ns)
        }
    }

    /// A request for the latest offset of `partition`: an invoke (`offset` None), or its end,
    /// whose `ok` carries the answer.
    pub fn latest_offset(
        process: &str,
        kind: EventType,
        time_ns: u64,
        topic: &str,
        partition: u32,
        offset: Option<u64>,
    ) -> Event {
        Event {
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset,
            ..Event::new(process, kind, Op::LatestOffset, time_ns)
        }
    }

    /// A request for the first offset of `partition` at or after `timestamp`: an invoke
    /// (`answer` None), or its end, whose `ok` carries the answer (offset, found record's
    /// timestamp, log start).
    pub fn offset_for_time(
        process: &str,
        kind: EventType,
        time_ns: u64,
        topic: &str,
        partition: u32,
        timestamp: i64,
        answer: Option<(u64, Option<i64>, Option<u64>)>,
    ) -> Event {
        Event {
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset: answer.map(|a| a.0),
            timestamp: Some(timestamp),
            record_timestamp: answer.and_then(|a| a.1),
            log_start: answer.and_then(|a| a.2),
            ..Event::new(process, kind, Op::OffsetForTime, time_ns)
        }
    }

    /// A request for the first offset of `partition` holding its largest committed timestamp:
    /// an invoke (`answer` None), or its end, whose `ok` carries the answer (offset, found
    /// record's timestamp, log start, high watermark).
    pub fn offset_for_max_timestamp(
        process: &str,
        kind: EventType,
        time_ns: u64,
        topic: &str,
        partition: u32,
        answer: Option<MaxTimestampAnswer>,
    ) -> Event {
        Event {
            topic: Some(topic.to_string()),
            partition: Some(partition),
            offset: answer.map(|a| a.offset),
            record_timestamp: answer.and_then(|a| a.record_timestamp),
            log_start: answer.and_then(|a| a.log_start),
            high_watermark: answer.and_then(|a| a.high_watermark),
            ..Event::new(process, kind, Op::OffsetForMaxTimestamp, time_ns)
        }
    }
}

/// An answer to `offset-for-max-timestamp`, as its `ok` event carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTimestampAnswer {
    pub offset: u64,
    pub record_timestamp: Option<i64>,
    pub log_start: Option<u64>,
    pub high_watermark: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole history; the first bad line is reported with its number (1-based). A line is
/// bad if it is not an event, if an invoke lacks what it asks for, or if an `ok` completion
/// lacks a field the checker reads even after taking what it omits from its invoke.
///
/// Jepsen's own EDN files are read too (`edn`): each operation is converted to the JSON line it
/// would be, and errors name the line of the file it starts on.
pub fn parse_history(text: &str) -> Result<Vec<Event>, HistoryError> {
    if edn::looks_like_edn(text) {
        let converted = edn::to_json_lines(text)?;
        return parse_json_lines(&converted.json).map_err(|e| HistoryError {
            line: converted.source_line(e.line),
            ..e
        });
    }
    parse_json_lines(text)
}

fn parse_json_lines(text: &str) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    let mut lines = Vec::new();
    let mut bad_line = None;
    // Invokes written as Jepsen's micro-operations, by process, until their completion:
    // (line, time, micro-operations).
    let mut pending: BTreeMap<String, (usize, u64, Vec<MicroOp>)> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = parse_line(line).and_then(|parsed| {
            let (process, kind) = match &parsed {
                Line::Event(e) => (e.process.clone(), e.kind),
                Line::MicroOps { process, kind, .. } => (process.clone(), *kind),
            };
            let open = pending.remove(&process);
            let (invoke, expanded) = match (parsed, open) {
                // A Jepsen invoke waits for its completion (an earlier one never completed).
                (Line::MicroOps { time, ops, .. }, open) if kind == EventType::Invoke => {
                    pending.insert(process.clone(), (i + 1, time, ops));
                    (open, Vec::new())
                }
                (Line::MicroOps { time, ops, .. }, open) => {
                    let asked = open.as_ref().map(|(_, t, ops)| (*t, ops.as_slice()));
                    (
                        None,
                        jepsen::expand(&process, asked, Some((kind, time, &ops)))?,
                    )
                }
                // Any completion of the process ends its Jepsen invoke.
                (Line::Event(e), Some(open)) if kind != EventType::Invoke => {
                    let asked = Some((open.1, open.2.as_slice()));
                    (
                        None,
                        jepsen::expand(&process, asked, Some((kind, e.time_ns, &[])))?,
                    )
                }
                (Line::Event(e), open) => (open, vec![*e]),
            };
            let mut out = Vec::new();
            if let Some((line, time, ops)) = invoke {
                let never_ended = jepsen::expand(&process, Some((time, &ops)), None)?;
                out.extend(never_ended.into_iter().map(|e| (line, e)));
            }
            out.extend(expanded.into_iter().map(|e| (i + 1, e)));
            Ok(out)
        });
        match parsed {
            Ok(parsed) => {
                for (line, event) in parsed {
                    events.push(event);
                    lines.push(line);
                }
            }
            Err(message) => {
                bad_line = Some(HistoryError {
                    line: i + 1,
                    message,
                });
                break;
            }
        }
    }
    for (process, (line, time, ops)) in std::mem::take(&mut pending) {
        if bad_line.is_some() {
            break;
        }
        // Never completed: unknown outcomes.
        for event in jepsen::expand(&process, Some((time, &ops)), None).unwrap_or_default() {
            events.push(event);
            lines.push(line);
        }
    }
    // Completions before the bad line (if any) may be bad too: report the first.
    let bad_completion = pair(&events)
        .iter()
        .filter_map(|op| {
            validate_outcome(op).err().map(|message| HistoryError {
                line: lines[op.ended],
                message,
            })
        })
        .min_by_key(|e| e.line);
    match bad_completion
        .into_iter()
        .chain(bad_line)
        .min_by_key(|e| e.line)
    {
        Some(e) => Err(e),
        None => Ok(events),
    }
}

/// What every line must carry, of whatever operation.
#[derive(Deserialize)]
struct Envelope {
    #[serde(deserialize_with = "text")]
    process: String,
    #[serde(rename = "type")]
    kind: EventType,
    f: Op,
    #[serde(alias = "time")]
    time_ns: u64,
}

/// The lists of an `assign` or `subscribe`, and the group that made an `assign`, read
/// leniently.
#[derive(Deserialize)]
struct Lists {
    #[serde(default, deserialize_with = "lenient")]
    partitions: Option<Vec<Partition>>,
    #[serde(default, deserialize_with = "lenient")]
    topics: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient")]
    group: Option<String>,
}

/// One line of a history: an event, or an operation written as Jepsen's micro-operations
/// (`super::jepsen`), expanded once its invoke and completion are paired.
enum Line {
    Event(Box<Event>),
    MicroOps {
        process: String,
        kind: EventType,
        time: u64,
        ops: Vec<MicroOp>,
    },
}

fn parse_line(line: &str) -> Result<Line, String> {
    let not_an_event = |e: serde_json::Error| format!("not a history event: {e}");
    let value: serde_json::Value = serde_json::from_str(line).map_err(not_an_event)?;
    let head = Envelope::deserialize(&value).map_err(not_an_event)?;
    let raw_f = value.get("f").and_then(serde_json::Value::as_str);
    if jepsen::carries_micro_ops(&head.f, raw_f.unwrap_or_default()) {
        if let Some(ops) = jepsen::micro_ops(value.get("value"))? {
            return Ok(Line::MicroOps {
                process: head.process,
                kind: head.kind,
                time: head.time_ns,
                ops,
            });
        }
    }
    let event = if head.f.is_checked() {
        Event::deserialize(&value).map_err(not_an_event)?
    } else {
        let lists = Lists::deserialize(&value).map_err(not_an_event)?;
        // Jepsen writes an assign's or a subscribe's keys (one partition each) as its value; a
        // subscribe so written roams (`Event::roaming`).
        let keys = jepsen::keys(value.get("value"));
        let (partitions, topics, roaming) = match (head.f.clone(), keys) {
            (Op::Assign, Some(keys)) if lists.partitions.is_none() => {
                let partitions = keys
                    .into_iter()
                    .map(|topic| Partition {
                        topic,
                        partition: 0,
                    })
                    .collect();
                (Some(partitions), lists.topics, false)
            }
            (Op::Subscribe, Some(keys)) if lists.topics.is_none() => {
                (lists.partitions, Some(keys), true)
            }
            _ => (lists.partitions, lists.topics, false),
        };
        Event {
            partitions,
            topics,
            roaming,
            group: lists.group,
            ..Event::new(&head.process, head.kind, head.f, head.time_ns)
        }
    };
    validate_invoke(&event)?;
    Ok(Line::Event(Box::new(event)))
}

/// `Err` naming the first of `fields` (name, present) that is missing.
fn require(e: &Event, fields: &[(&str, bool)]) -> Result<(), String> {
    match fields.iter().find(|(_, present)| !present) {
        Some((what, _)) => Err(format!(
            "{:?} {:?} event of process {} lacks \"{what}\"",
            e.kind, e.f, e.process
        )),
        None => Ok(()),
    }
}

/// An invoke carries what the operation asks for.
fn validate_invoke(e: &Event) -> Result<(), String> {
    if e.kind != EventType::Invoke {
        return Ok(());
    }
    match e.f {
        Op::Send => require(
            e,
            &[("value", e.value.is_some()), ("topic", e.topic.is_some())],
        ),
        Op::Commit => require(
            e,
            &[
                ("group", e.group.is_some()),
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("offset", e.offset.is_some()),
            ],
        ),
        Op::FetchCommitted => require(
            e,
            &[
                ("group", e.group.is_some()),
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
            ],
        ),
        Op::LatestOffset => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
            ],
        ),
        Op::OffsetForTime => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("timestamp", e.timestamp.is_some()),
            ],
        ),
        Op::OffsetForMaxTimestamp => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
            ],
        ),
        _ => Ok(()),
    }
}

/// An `ok` outcome, filled in from its invoke, carries what the checks read. (Commits and
/// fetch-committed completions that cannot be placed are skipped by the group checks; `info`
/// and `fail` outcomes lacking fields only excuse less.)
fn validate_outcome(op: &Operation) -> Result<(), String> {
    let e = &op.event;
    if op.outcome != EventType::Ok {
        return Ok(());
    }
    match e.f {
        Op::Send => require(
            e,
            &[
                ("value", e.value.is_some()),
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("offset", e.offset.is_some()),
            ],
        ),
        Op::Poll => require(e, &[("records", e.records.is_some())]),
        Op::Seek | Op::Reset | Op::LatestOffset => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("offset", e.offset.is_some()),
            ],
        ),
        Op::OffsetForTime => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("timestamp", e.timestamp.is_some()),
                ("offset", e.offset.is_some()),
            ],
        ),
        Op::OffsetForMaxTimestamp => require(
            e,
            &[
                ("topic", e.topic.is_some()),
                ("partition", e.partition.is_some()),
                ("offset", e.offset.is_some()),
            ],
        ),
        _ => Ok(()),
    }
}

/// Reads a string, or an integer as its decimal text: processes, keys and values are integers
/// in some workloads' histories (Jepsen's).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(|t| t.0)
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|t| t.map(|t| t.0))
}

/// A field no check depends on for its safety: anything not in the expected shape reads as
/// absent instead of making the line malformed.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

pub fn to_json_line(e: &Event) -> String {
    // Serializing our own struct cannot fail.
    serde_json::to_string(e).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_ops_are_ignored_blank_lines_allowed() {
        let text = "\n{\"process\":\"p0\",\"type\":\"invoke\",\"f\":\"send\",\"time_ns\":1,\"topic\":\"t\",\"key\":null,\"value\":\"v\",\"extra\":[1,2]}\n\n{\"process\":\"x\",\"type\":\"ok\",\"f\":\"teleport\",\"time_ns\":2}\n";
        let events = parse_history(text).expect("valid");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].f, Op::Other);
    }

    #[test]
    fn every_kind_of_malformed_line_names_its_line() {
        let ok =
            r#"{"process":"p0","type":"invoke","f":"send","time_ns":1,"topic":"t","value":"v"}"#;
        let cases = [
            ("{not json", "not a history event"),
            (
                r#"{"process":"p0","type":"ok","f":"send","time_ns":1,"topic":"t","value":"v"}"#,
                "partition",
            ),
            (
                r#"{"process":"p0","type":"maybe","f":"send","time_ns":1}"#,
                "unknown variant",
            ),
            (
                r#"{"process":"p0","type":"ok","f":"poll","time_ns":1}"#,
                "records",
            ),
            (
                r#"{"process":"p0","type":"ok","f":"seek","time_ns":1,"topic":"t","partition":0}"#,
                "offset",
            ),
            (
                r#"{"type":"ok","f":"poll","time_ns":1,"records":[]}"#,
                "process",
            ),
            (
                r#"{"process":"c1","type":"invoke","f":"commit","time_ns":1,"topic":"t","partition":0,"offset":1}"#,
                "group",
            ),
            (
                r#"{"process":"c1","type":"invoke","f":"commit","time_ns":1,"group":"g","topic":"t","partition":0}"#,
                "offset",
            ),
            (
                r#"{"process":"c1","type":"invoke","f":"fetch-committed","time_ns":1,"group":"g","topic":"t"}"#,
                "partition",
            ),
            (
                r#"{"process":"p0","type":"ok","f":"poll","time_ns":"soon","records":[]}"#,
                "invalid type",
            ),
        ];
        for (bad, expect) in cases {
            let text = format!("{ok}\n{ok}\n{bad}\n");
            let err = parse_history(&text).expect_err(bad);
            assert_eq!(err.line, 3, "{bad}");
            let msg = err.to_string();
            assert!(msg.starts_with("line 3:") && msg.contains(expect), "{msg}");
        }
    }

    #[test]
    fn events_round_trip_through_json_lines() {
        let events = vec![
            Event::send_ok("p1", 5, "t", Some("k"), "v", 2, 9),
            Event::commit("c1", EventType::Invoke, 6, "g", "t", 2, 10),
            Event::fetch_committed("c1", EventType::Ok, 7, "g", "t", 2, None),
            Event::seek("c1", 8, "t", 2, 3).in_group("g"),
            Event::reset("r0", 9, "t", 2, 12),
            Event::assign(
                "c2",
                EventType::Ok,
                10,
                Some(vec![Partition {
                    topic: "t".into(),
                    partition: 2,
                }]),
            ),
        ];
        let text: Vec<String> = events.iter().map(to_json_line).collect();
        let back = parse_history(&text.join("\n")).expect("parse");
        assert_eq!(back, events);
        // "No committed offset" is the absence of the field, as a hand-written history has it.
        assert!(!text[2].contains("offset"), "{}", text[2]);
    }

    #[test]
    fn a_completion_may_leave_its_fields_to_its_invoke() {
        let invoke =
            r#"{"process":"p0","type":"invoke","f":"send","time_ns":1,"topic":"t","value":"v"}"#;
        let ok = r#"{"process":"p0","type":"ok","f":"send","time_ns":2,"partition":0,"offset":4}"#;
        let events = parse_history(&format!("{invoke}\n{ok}\n")).expect("valid");
        assert_eq!(events.len(), 2);
        // What neither carries is missing, on the completion's line.
        let ok = r#"{"process":"p0","type":"ok","f":"send","time_ns":2,"partition":0}"#;
        let err = parse_history(&format!("{invoke}\n\n{ok}\n")).expect_err("no offset");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("offset"), "{err}");
    }

    #[test]
    fn a_bad_completion_before_a_bad_line_is_the_first_bad_line() {
        let text = r#"{"process":"p0","type":"ok","f":"seek","time_ns":1,"topic":"t","partition":0}
{not json"#;
        let err = parse_history(text).expect_err("two bad lines");
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn integers_read_as_text_and_unknown_operations_as_envelopes() {
        let text = r#"{"process":3,"type":"ok","f":"poll","time_ns":1,"records":[{"topic":"t","partition":0,"offset":0,"key":-1,"value":42}]}
{"process":"nemesis","type":"info","f":"kill","time_ns":2,"value":["n1"],"topic":{"not":"text"}}"#;
        let events = parse_history(text).expect("valid");
        assert_eq!(events[0].process, "3");
        let r = &events[0].records.as_ref().expect("records")[0];
        assert_eq!((r.key.as_deref(), r.value.as_str()), (Some("-1"), "42"));
        assert_eq!(
            (events[1].f.clone(), events[1].topic.clone()),
            (Op::Other, None)
        );
        // A checked operation's fields stay strict.
        let bad = r#"{"process":"p0","type":"ok","f":"poll","time_ns":1,"records":[{"topic":"t","partition":0,"offset":0,"value":[1]}]}"#;
        let err = parse_history(bad).expect_err("a list is no value");
        assert!(err.message.contains("a string or an integer"), "{err}");
    }
}
