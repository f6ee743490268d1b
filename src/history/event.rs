//! The history format: JSON lines, one operation event per line.
//!
//! ```text
//! {"process":"p0","type":"invoke","f":"send","time_ns":1000,"topic":"t","key":"k","value":"v1"}
//! {"process":"p0","type":"ok","f":"send","time_ns":2000,"topic":"t","key":"k","value":"v1","partition":0,"offset":0}
//! {"process":"c0","type":"ok","f":"poll","time_ns":3000,"records":[{"topic":"t","partition":0,"offset":0,"key":"k","value":"v1"}]}
//! {"process":"c0","type":"ok","f":"seek","time_ns":4000,"topic":"t","partition":0,"offset":0}
//! ```
//!
//! `type` is `invoke`, `ok`, `fail` (definitely did not happen) or `info` (outcome unknown).
//! Unknown fields are ignored and unknown `f` values are kept but not checked, so the format can
//! grow.
//!
//! Consumer-group members add `"group"` to their polls and seeks, and write commits and
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

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Send,
    Poll,
    Seek,
    Commit,
    FetchCommitted,
    /// An operation this checker does not know; kept, not checked.
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolledRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    #[serde(default)]
    pub key: Option<String>,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub process: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: Op,
    pub time_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<PolledRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
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

    /// The same event made by a member of consumer group `group` (for polls and seeks).
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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole history; the first bad line is reported with its number (1-based).
pub fn parse_history(text: &str) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(line).map_err(|e| HistoryError {
            line: line_no,
            message: format!("not a history event: {e}"),
        })?;
        validate(&event).map_err(|message| HistoryError {
            line: line_no,
            message,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// The fields an event of each kind must carry to be checked.
fn validate(e: &Event) -> Result<(), String> {
    let need = |present: bool, what: &str| {
        if present {
            Ok(())
        } else {
            Err(format!(
                "{:?} {:?} event of process {} lacks \"{what}\"",
                e.kind, e.f, e.process
            ))
        }
    };
    match (&e.f, e.kind) {
        (Op::Send, EventType::Ok) => {
            need(e.value.is_some(), "value")?;
            need(e.topic.is_some(), "topic")?;
            need(e.partition.is_some(), "partition")?;
            need(e.offset.is_some(), "offset")
        }
        (Op::Send, EventType::Invoke) => {
            need(e.value.is_some(), "value")?;
            need(e.topic.is_some(), "topic")
        }
        (Op::Poll, EventType::Ok) => need(e.records.is_some(), "records"),
        (Op::Seek, EventType::Ok) => {
            need(e.topic.is_some(), "topic")?;
            need(e.partition.is_some(), "partition")?;
            need(e.offset.is_some(), "offset")
        }
        // Completions may leave these to the invoke (`ops::pair` fills them in).
        (Op::Commit, EventType::Invoke) => {
            need(e.group.is_some(), "group")?;
            need(e.topic.is_some(), "topic")?;
            need(e.partition.is_some(), "partition")?;
            need(e.offset.is_some(), "offset")
        }
        (Op::FetchCommitted, EventType::Invoke) => {
            need(e.group.is_some(), "group")?;
            need(e.topic.is_some(), "topic")?;
            need(e.partition.is_some(), "partition")
        }
        _ => Ok(()),
    }
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
        ];
        let text: Vec<String> = events.iter().map(to_json_line).collect();
        let back = parse_history(&text.join("\n")).expect("parse");
        assert_eq!(back, events);
        // "No committed offset" is the absence of the field, as a hand-written history has it.
        assert!(!text[2].contains("offset"), "{}", text[2]);
    }
}
