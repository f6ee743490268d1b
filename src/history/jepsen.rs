//! Operations in the shape of Jepsen's Kafka workload, read as our own events.
//!
//! Jepsen's histories (EDN, or JSON converted from it) write sends and polls as lists of
//! micro-operations in `value`, whatever the operation's `f` (`send`, `poll`, or `txn` for
//! several at once):
//!
//! ```text
//! {"process":0,"type":"invoke","f":"send","time":10,"value":[["send",5,1]]}
//! {"process":0,"type":"ok","f":"send","time":12,"value":[["send",5,[3,1]]]}
//! {"process":1,"type":"invoke","f":"poll","time":14,"value":[["poll"]]}
//! {"process":1,"type":"ok","f":"poll","time":15,"value":[["poll",{"5":[[3,1],[4,2]]}]]}
//! {"process":2,"type":"invoke","f":"txn","time":16,"value":[["send",5,7],["poll"]]}
//! ```
//!
//! A key names one log (in Jepsen's workload, one partition); here it is a topic of that name
//! with one partition, 0, and a value reads as `key/value` (Jepsen's values are unique per key
//! only). A send's completion gives `[offset, value]` where it was acknowledged; a poll's, the
//! records it read by key (an `ok` `[poll]` read nothing; a record with a `nil` offset or
//! value is left out, and its poll is then unknown). An operation of `n` micro-operations
//! becomes `n` operations of the process, one after the other, each with the invoke's time and
//! the completion's outcome and time: a `fail` fails them all (nothing happened), an `info`
//! leaves them all unknown. A completion without micro-operations of its own takes its
//! invoke's; an `ok` send that does not say where it landed is read as unknown (it may excuse
//! a read, never accuse). Keywords may keep their colon (`":send"`) or not.

use super::event::{Event, EventType, Op, PolledRecord};
use serde_json::Value;

/// One micro-operation, as its invoke or its completion writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// A send to log `key`; `offset` once acknowledged.
    Send {
        key: String,
        value: String,
        offset: Option<u64>,
    },
    /// A poll, with what it read (a completion's; `None` in an invoke); `partial` if it read
    /// records it could not place (left out of `read`).
    Poll {
        read: Option<Vec<PolledRecord>>,
        partial: bool,
    },
}

/// The micro-operations in an operation's `value`, if it has that shape: a list of lists, each
/// starting with `send` or `poll`. `Ok(None)` for any other value (our own format's sends carry
/// a plain value); `Err` for a list of micro-operations that cannot be read.
pub fn micro_ops(value: Option<&Value>) -> Result<Option<Vec<MicroOp>>, String> {
    let Some(Value::Array(items)) = value else {
        return Ok(None);
    };
    let named = |v: &Value| {
        v.as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(|s| s.trim_start_matches(':').to_string())
    };
    if items.is_empty() || !items.iter().all(|i| named(i).is_some()) {
        return Ok(None);
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| micro_op(item).map_err(|e| format!("micro-operation {}: {e}", n + 1)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn micro_op(item: &Value) -> Result<MicroOp, String> {
    let parts = item.as_array().map(Vec::as_slice).unwrap_or_default();
    let name = parts.first().and_then(Value::as_str).unwrap_or_default();
    match (name.trim_start_matches(':'), parts) {
        ("send", [_, key, sent]) => {
            let key = scalar(key).ok_or("a send's key must be a string or an integer")?;
            let (offset, value) = match sent {
                Value::Array(pair) => match pair.as_slice() {
                    [offset, value] => (Some(offset), value),
                    _ => return Err("a send's [offset, value] must have two elements".into()),
                },
                value => (None, value),
            };
            let offset = match offset {
                Some(Value::Null) | None => None,
                Some(o) => Some(o.as_u64().ok_or("a send's offset must be an integer")?),
            };
            let value = scalar(value).ok_or("a send's value must be a string or an integer")?;
            let value = qualified(&key, &value);
            Ok(MicroOp::Send { key, value, offset })
        }
        ("send", _) => Err("a send is [\"send\", key, value]".into()),
        ("poll", [_]) | ("poll", [_, Value::Null, ..]) => Ok(MicroOp::Poll {
            read: None,
            partial: false,
        }),
        // Jepsen reads the second element of a poll, whatever follows it.
        ("poll", [_, Value::Object(by_key), ..]) => {
            let mut read = Vec::new();
            let mut partial = false;
            for (key, records) in by_key {
                let key = key.trim_start_matches(':');
                for record in records.as_array().ok_or("a poll reads a list per key")? {
                    let [offset, value] = record.as_array().map(Vec::as_slice).unwrap_or_default()
                    else {
                        return Err(format!("a record read from {key} is [offset, value]"));
                    };
                    // Jepsen writes a record it could not place with a nil offset (or value):
                    // left out, and the poll may then excuse, never accuse.
                    if offset.is_null() || value.is_null() {
                        partial = true;
                        continue;
                    }
                    read.push(PolledRecord {
                        topic: key.to_string(),
                        partition: 0,
                        offset: offset.as_u64().ok_or("a read offset must be an integer")?,
                        key: None,
                        value: qualified(
                            key,
                            &scalar(value).ok_or("a read value must be a string or an integer")?,
                        ),
                        timestamp: None,
                    });
                }
            }
            Ok(MicroOp::Poll {
                read: Some(read),
                partial,
            })
        }
        ("poll", _) => {
            Err("a poll is [\"poll\"] or [\"poll\", {key: [[offset, value], ...]}]".into())
        }
        (other, _) => Err(format!("unknown micro-operation {other:?}")),
    }
}

/// A value as the checker reads it: `key/value`. Jepsen's values are unique within a key only
/// (each key's writes are numbered from 1), while the checker tells sends apart by value.
fn qualified(key: &str, value: &str) -> String {
    format!("{key}/{value}")
}

/// A string, or an integer as its decimal text (Jepsen's keys and values are integers).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim_start_matches(':').to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The events of one operation of micro-operations: for each, its invoke and (given a
/// completion) its completion, one after the other. `invoke` is the invoke's time and
/// micro-operations, if it had an invoke; `completion` the outcome, time and micro-operations
/// of its end, if it ended (a completion's empty list takes the invoke's).
pub fn expand(
    process: &str,
    invoke: Option<(u64, &[MicroOp])>,
    completion: Option<(EventType, u64, &[MicroOp])>,
) -> Result<Vec<Event>, String> {
    let asked = invoke.map(|(_, ops)| ops).unwrap_or_default();
    let done = match completion {
        Some((_, _, ops)) if !ops.is_empty() => ops,
        _ => asked,
    };
    if invoke.is_some() && completion.is_some() && asked.len() != done.len() {
        return Err(format!(
            "the completion has {} micro-operations, its invoke {}",
            done.len(),
            asked.len()
        ));
    }
    let mut events = Vec::new();
    for (i, op) in done.iter().enumerate() {
        if let Some((time, ops)) = invoke {
            events.push(event(process, EventType::Invoke, time, &ops[i]));
        }
        if let Some((kind, time, _)) = completion {
            events.push(event(process, kind, time, op));
        }
    }
    Ok(events)
}

fn event(process: &str, kind: EventType, time: u64, op: &MicroOp) -> Event {
    match op {
        MicroOp::Send { key, value, offset } => match (kind, offset) {
            (EventType::Ok, Some(offset)) => Event {
                partition: Some(0),
                offset: Some(*offset),
                ..Event::send(process, kind, time, key, None, value)
            },
            // Acknowledged where, it does not say: it may excuse a read, never accuse.
            (EventType::Ok, None) => Event::send(process, EventType::Info, time, key, None, value),
            _ => Event::send(process, kind, time, key, None, value),
        },
        // An ok poll that read nothing may be written `[poll]`. An info poll's records may
        // have been read (they excuse); a failed poll's were not handed over.
        MicroOp::Poll { read, partial } => {
            let kind = match (kind, partial) {
                (EventType::Ok, true) => EventType::Info,
                _ => kind,
            };
            let records = match kind {
                EventType::Ok => Some(read.clone().unwrap_or_default()),
                EventType::Info => read.clone(),
                _ => None,
            };
            Event {
                records,
                ..Event::poll(process, kind, time, Vec::new())
            }
        }
    }
}

/// An `assign`'s or a `subscribe`'s keys written as Jepsen does: a list of them.
pub fn keys(value: Option<&Value>) -> Option<Vec<String>> {
    value?.as_array()?.iter().map(scalar).collect()
}

/// Whether `f` is one whose micro-operations are read: a send, a poll, or a transaction of
/// both (Jepsen's `txn`).
pub fn carries_micro_ops(f: &Op, raw_f: &str) -> bool {
    matches!(f, Op::Send | Op::Poll) || raw_f.trim_start_matches(':') == "txn"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{check, parse_history};
    use serde_json::json;

    #[test]
    fn micro_operations_are_read_and_other_values_are_not() {
        let ops = micro_ops(Some(
            &json!([["send", 5, [3, 1]], [":poll", {"5": [[3, 1]]}]]),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            ops[0],
            MicroOp::Send {
                key: "5".into(),
                value: "5/1".into(),
                offset: Some(3)
            }
        );
        let MicroOp::Poll {
            read: Some(read), ..
        } = &ops[1]
        else {
            panic!("{ops:?}")
        };
        assert_eq!((read[0].topic.as_str(), read[0].offset), ("5", 3));
        // Our own format's values, and lists that are not micro-operations, are left alone.
        for v in [
            json!("v1"),
            json!(7),
            json!([]),
            json!([1, 2]),
            json!([[1, 2]]),
        ] {
            assert_eq!(micro_ops(Some(&v)), Ok(None), "{v}");
        }
        assert_eq!(micro_ops(None), Ok(None));
    }

    #[test]
    fn malformed_micro_operations_are_named() {
        let cases = [
            (json!([["send", 5]]), "micro-operation 1: a send is"),
            (
                json!([["poll"], ["send", 5, [1]]]),
                "micro-operation 2: a send's [offset",
            ),
            (json!([["send", 5, ["x", 1]]]), "offset must be an integer"),
            (json!([["poll", {"5": [[1]]}]]), "is [offset, value]"),
            (json!([["poll", [1]]]), "a poll is"),
            (
                json!([["send", 5, 1], ["frob"]]),
                "unknown micro-operation \"frob\"",
            ),
            (json!([["send", [5], 1]]), "key must be"),
        ];
        for (value, want) in cases {
            let err = micro_ops(Some(&value)).unwrap_err();
            assert!(err.contains(want), "{value}: {err}");
        }
    }

    #[test]
    fn in_a_history_malformed_micro_operations_name_their_line() {
        let text = r#"{"process":0,"type":"invoke","f":"txn","time":1,"value":[["send",5,1],["poll"]]}
{"process":0,"type":"ok","f":"txn","time":2,"value":[["send",5,[0,1]]]}"#;
        let err = parse_history(text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("1 micro-operations, its invoke 2"),
            "{err}"
        );
    }

    #[test]
    fn an_ok_send_that_does_not_say_where_it_landed_is_unknown() {
        // Its value is never read: not a lost write (nothing says where to look), but counted as
        // a send of unknown outcome.
        let text = r#"{"process":0,"type":"invoke","f":"send","time":1,"value":[["send",5,1]]}
{"process":0,"type":"ok","f":"send","time":2}
{"process":1,"type":"ok","f":"poll","time":3,"value":[["poll",{"5":[]}]]}"#;
        let report = check(&parse_history(text).unwrap());
        assert!(report.is_ok(), "{}", report.render());
        assert_eq!(report.stats.sends_unknown, 1);
    }

    #[test]
    fn unfinished_and_unknown_operations_only_excuse() {
        // Process 0's first transaction is overtaken by its next invoke and its second never
        // completes: their sends are of unknown outcome, so values 1 and 2 never read are not
        // lost, and reading 1 is no aborted read. A poll that ended info reads nothing.
        let text = r#"{"process":0,"type":"invoke","f":"txn","time":1,"value":[["send",5,1]]}
{"process":0,"type":"invoke","f":"send","time":2,"value":[["send",5,2]]}
{"process":1,"type":"invoke","f":"poll","time":3,"value":[["poll"]]}
{"process":1,"type":"info","f":"poll","time":4}
{"process":1,"type":"invoke","f":"poll","time":5,"value":[["poll"]]}
{"process":1,"type":"ok","f":"poll","time":6,"value":[["poll",{"5":[[0,1]]}]]}"#;
        let events = parse_history(text).unwrap();
        let report = check(&events);
        assert!(report.is_ok(), "{}", report.render());
        assert_eq!(report.stats.sends_unknown, 2);
        assert_eq!(report.stats.polls, 1, "the info poll is no read");
    }

    #[test]
    fn a_transaction_s_micro_operations_run_in_order() {
        // A send acknowledged at offset 1 and, in the same transaction, a poll that read offset
        // 0 only; another consumer reads 0 and 2 later: offset 1 was skipped and lost.
        let text = r#"{"process":0,"type":"invoke","f":"txn","time":1,"value":[["send","k",1],["send","k",2],["poll"]]}
{"process":0,"type":"ok","f":"txn","time":2,"value":[["send","k",[0,1]],["send","k",[1,2]],["poll",{"k":[[0,1]]}]]}
{"process":0,"type":"invoke","f":"send","time":3,"value":[["send","k",3]]}
{"process":0,"type":"ok","f":"send","time":4,"value":[["send","k",[2,3]]]}
{"process":1,"type":"invoke","f":"poll","time":5,"value":[["poll"]]}
{"process":1,"type":"ok","f":"poll","time":6,"value":[["poll",{"k":[[0,1],[2,3]]}]]}"#;
        let events = parse_history(text).unwrap();
        assert_eq!(events.len(), 10);
        let report = check(&events);
        let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            vec!["lost-write", "poll-skip"],
            "{}",
            report.render()
        );
        assert_eq!(report.stats.sends_ok, 3);
    }

    #[test]
    fn values_are_told_apart_by_key() {
        // Jepsen numbers each key's writes from 1: value 1 of key 5 and value 1 of key 6 are two
        // sends, not one sent twice.
        let text = r#"{"process":0,"type":"invoke","f":"txn","time":1,"value":[["send",5,1],["send",6,1]]}
{"process":0,"type":"ok","f":"txn","time":2,"value":[["send",5,[0,1]],["send",6,[0,1]]]}
{"process":1,"type":"invoke","f":"poll","time":3,"value":[["poll"]]}
{"process":1,"type":"ok","f":"poll","time":4,"value":[["poll",{"5":[[0,1]],"6":[[0,1]]}]]}"#;
        let report = check(&parse_history(text).unwrap());
        assert!(report.is_ok(), "{}", report.render());
        assert_eq!(report.stats.sends_ok, 2);
    }

    #[test]
    fn shapes_jepsen_writes_that_carry_less() {
        // An ok poll that read nothing, written [poll]; a poll with an element past its map;
        // a record Jepsen could not place (nil offset), which makes its poll excuse only; a
        // subscribe, under which Jepsen allows the consumer to skip (rebalances move it).
        let text = r#"{"process":0,"type":"invoke","f":"send","time":1,"value":[["send",5,1]]}
{"process":0,"type":"ok","f":"send","time":2,"value":[["send",5,[0,1]]]}
{"process":0,"type":"invoke","f":"send","time":3,"value":[["send",5,2]]}
{"process":0,"type":"ok","f":"send","time":4,"value":[["send",5,[1,2]]]}
{"process":0,"type":"invoke","f":"send","time":5,"value":[["send",5,3]]}
{"process":0,"type":"ok","f":"send","time":6,"value":[["send",5,[2,3]]]}
{"process":1,"type":"invoke","f":"poll","time":7,"value":[["poll"]]}
{"process":1,"type":"ok","f":"poll","time":8,"value":[["poll"]]}
{"process":1,"type":"invoke","f":"poll","time":9,"value":[["poll"]]}
{"process":1,"type":"ok","f":"poll","time":10,"value":[["poll",{"5":[[null,1],[1,2]]},"extra"]]}
{"process":2,"type":"invoke","f":"subscribe","time":11,"value":[5]}
{"process":2,"type":"ok","f":"subscribe","time":12,"value":[5]}
{"process":2,"type":"invoke","f":"poll","time":13,"value":[["poll"]]}
{"process":2,"type":"ok","f":"poll","time":14,"value":[["poll",{"5":[[2,3]]}]]}
{"process":2,"type":"invoke","f":"poll","time":15,"value":[["poll"]]}
{"process":2,"type":"ok","f":"poll","time":16,"value":[["poll",{"5":[[0,1],[2,3]]}]]}"#;
        let report = check(&parse_history(text).unwrap());
        assert!(report.is_ok(), "{}", report.render());
        // The empty poll and process 2's two polls; the partial one ended unknown.
        assert_eq!(report.stats.polls, 3);
        // Without the subscribe, process 2 going back to 0 and then skipping 1 is reported.
        let assigned = text.replace(r#""f":"subscribe""#, r#""f":"assign""#);
        let names: Vec<&str> = check(&parse_history(&assigned).unwrap())
            .anomalies
            .iter()
            .map(|a| a.name)
            .collect();
        assert!(names.contains(&"nonmonotonic-poll"), "{names:?}");
    }
}
