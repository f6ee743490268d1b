//! The run's client operations as a history in the documented format (JSON lines), and the
//! checker's verdict on it.
//!
//! An `acks=1` acknowledgement promises nothing about surviving a leader failover, so such sends
//! are recorded as `info` (outcome unknown): they may be lost, but must never appear twice.

use super::cluster::Observed;
use crate::scenario::{Scenario, FIRST_PRODUCER, FIRST_READER};
use seedlog::history::{
    check, to_json_line, Event, EventType, MaxTimestampAnswer, Partition, PolledRecord,
};
use seedlog::node::{ClientEvent, Stage};
use seedlog::protocol::Acks;
use std::collections::BTreeMap;
use std::io::Write;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn events(observed: &[Observed], sc: &Scenario) -> Vec<Event> {
    // Sized once: a poll makes two events, everything else at most one (growing a vector of
    // thousands of events by doubling copied it again and again).
    let polls = observed
        .iter()
        .filter(|o| matches!(o.event, ClientEvent::Polled { .. }))
        .count();
    let mut out = Vec::with_capacity(observed.len() + polls);
    // The sends each producer has in flight, by record: (topic, key, value).
    let mut in_flight: BTreeMap<(u32, u64), (String, Option<String>, String)> = BTreeMap::new();
    // Names made once per node, not once per event.
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for o in observed {
        let process = names
            .entry(o.node)
            .or_insert_with(|| Scenario::node_name(o.node));
        let time_ns = o.time_ms * 1_000_000;
        let acks_all = o.node >= FIRST_PRODUCER
            && o.node < FIRST_READER
            && sc
                .producers
                .get((o.node - FIRST_PRODUCER) as usize)
                .is_some_and(|p| p.acks == Acks::All);
        match &o.event {
            ClientEvent::SendInvoke {
                id,
                topic,
                key,
                value,
            } => {
                let key = key.as_deref().map(text);
                let value = text(value);
                out.push(Event::send(
                    process,
                    EventType::Invoke,
                    time_ns,
                    topic,
                    key.as_deref(),
                    &value,
                ));
                in_flight.insert((o.node, *id), (topic.clone(), key, value));
            }
            ClientEvent::SendOk {
                id,
                partition,
                offset,
            } => {
                if let Some((topic, key, value)) = in_flight.remove(&(o.node, *id)) {
                    out.push(if acks_all {
                        Event::send_ok(
                            process,
                            time_ns,
                            &topic,
                            key.as_deref(),
                            &value,
                            *partition,
                            *offset,
                        )
                    } else {
                        Event::send(
                            process,
                            EventType::Info,
                            time_ns,
                            &topic,
                            key.as_deref(),
                            &value,
                        )
                    });
                }
            }
            ClientEvent::SendInfo { id, .. } | ClientEvent::SendFail { id, .. } => {
                let kind = match o.event {
                    ClientEvent::SendFail { .. } => EventType::Fail,
                    _ => EventType::Info,
                };
                if let Some((topic, key, value)) = in_flight.remove(&(o.node, *id)) {
                    out.push(Event::send(
                        process,
                        kind,
                        time_ns,
                        &topic,
                        key.as_deref(),
                        &value,
                    ));
                }
            }
            ClientEvent::Polled { tp, records, group } => {
                let records = records
                    .iter()
                    .map(|e| PolledRecord {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: e.offset,
                        key: e.record.key.as_deref().map(text),
                        // The workloads send unique non-null values; a null reads as empty.
                        value: e.record.value.as_deref().map(text).unwrap_or_default(),
                        timestamp: Some(e.record.timestamp),
                    })
                    .collect();
                let invoke = Event::poll(process, EventType::Invoke, time_ns, Vec::new());
                let ok = Event::poll(process, EventType::Ok, time_ns, records);
                out.push(grouped(invoke, group));
                out.push(grouped(ok, group));
            }
            ClientEvent::Seek { tp, offset, group } => {
                let seek = Event::seek(process, time_ns, &tp.topic, tp.partition, *offset);
                out.push(grouped(seek, group));
            }
            ClientEvent::Reset { tp, offset, group } => {
                let reset = Event::reset(process, time_ns, &tp.topic, tp.partition, *offset);
                out.push(grouped(reset, group));
            }
            ClientEvent::LatestOffset {
                stage,
                tp,
                offset,
                group,
                ..
            } => {
                let e = Event::latest_offset(
                    process,
                    kind_of(stage),
                    time_ns,
                    &tp.topic,
                    tp.partition,
                    *offset,
                );
                out.push(grouped(e, group));
            }
            ClientEvent::OffsetForTime {
                stage,
                tp,
                timestamp,
                offset,
                record_timestamp,
                log_start,
                group,
                ..
            } => {
                let e = Event::offset_for_time(
                    process,
                    kind_of(stage),
                    time_ns,
                    &tp.topic,
                    tp.partition,
                    *timestamp,
                    offset.map(|o| (o, *record_timestamp, *log_start)),
                );
                out.push(grouped(e, group));
            }
            ClientEvent::OffsetForMaxTimestamp {
                stage,
                tp,
                offset,
                record_timestamp,
                log_start,
                high_watermark,
                group,
                ..
            } => {
                let answer = offset.map(|offset| MaxTimestampAnswer {
                    offset,
                    record_timestamp: *record_timestamp,
                    log_start: *log_start,
                    high_watermark: *high_watermark,
                });
                let e = Event::offset_for_max_timestamp(
                    process,
                    kind_of(stage),
                    time_ns,
                    &tp.topic,
                    tp.partition,
                    answer,
                );
                out.push(grouped(e, group));
            }
            ClientEvent::Commit {
                stage,
                group,
                tp,
                offset,
            } => out.push(Event::commit(
                process,
                kind_of(stage),
                time_ns,
                group,
                &tp.topic,
                tp.partition,
                *offset,
            )),
            ClientEvent::FetchCommitted {
                stage,
                group,
                tp,
                offset,
            } => out.push(Event::fetch_committed(
                process,
                kind_of(stage),
                time_ns,
                group,
                &tp.topic,
                tp.partition,
                *offset,
            )),
            // A generation's assignment: the member's positions start afresh.
            ClientEvent::Assigned {
                group, partitions, ..
            } => {
                let given = partitions
                    .iter()
                    .map(|tp| Partition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                    })
                    .collect();
                let assign = Event::assign(process, EventType::Ok, time_ns, Some(given));
                out.push(assign.in_group(group));
            }
            // Not an operation of the history format; it shows in the trace.
            ClientEvent::ConsumerError { .. } => {}
        }
    }
    out
}

fn grouped(e: Event, group: &Option<String>) -> Event {
    match group {
        Some(g) => e.in_group(g),
        None => e,
    }
}

fn kind_of(stage: &Stage) -> EventType {
    match stage {
        Stage::Invoke => EventType::Invoke,
        Stage::Ok => EventType::Ok,
        Stage::Fail(_) => EventType::Fail,
        Stage::Info(_) => EventType::Info,
    }
}

/// The checker's anomalies, one line each.
pub fn anomalies(observed: &[Observed], sc: &Scenario) -> Vec<String> {
    check(&events(observed, sc))
        .anomalies
        .iter()
        .map(|a| a.to_string())
        .collect()
}

/// Writes the history; returns the number of events.
pub fn write(
    path: &std::path::Path,
    observed: &[Observed],
    sc: &Scenario,
) -> std::io::Result<usize> {
    let events = events(observed, sc);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in &events {
        writeln!(file, "{}", to_json_line(e))?;
    }
    file.flush()?;
    Ok(events.len())
}
