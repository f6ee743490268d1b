//! `cargo bench --bench history_check`: how long the history checker takes on long histories,
//! in events per second, at three sizes each, so a cost that grows faster than the history
//! shows as a falling rate. A measurement, not a test: it asserts nothing about time.
//!
//! - `produce-consume`: one producer's keyed sends to three partitions (a third of them of
//!   unknown outcome), and a group member that reads them all in batches of 20, commits after
//!   each poll and seeks back now and then, while another process fetches the committed
//!   offsets. A correct history: no anomaly.
//! - `seek-flip`: a group member that seeks between two offsets and commits each time, with a
//!   fetch of the committed offset after each commit: every second commit is lower than the one
//!   before, and each is excused by the seek before it (the case the group checks once took
//!   cubic time on).
//! - `jepsen-edn`: a history as Jepsen's Kafka workload writes `history.edn` (sends to ten
//!   keys, then polls reading them all back), timed from the text: reading it
//!   (`parse_history`, EDN converted operation by operation) and checking it.

use seedlog::history::{check, parse_history, Event, EventType, PolledRecord};
use std::fmt::Write;
use std::hint::black_box;
use std::time::Instant;

const T: &str = "events";

struct History {
    events: Vec<Event>,
    now: u64,
}

impl History {
    fn new() -> Self {
        History {
            events: Vec::new(),
            now: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.now += 1_000;
        self.now
    }

    fn commit(&mut self, process: &str, partition: u32, offset: u64) {
        for kind in [EventType::Invoke, EventType::Ok] {
            let at = self.tick();
            let e = Event::commit(process, kind, at, "g", T, partition, offset);
            self.events.push(e);
        }
    }

    fn fetch(&mut self, process: &str, partition: u32, found: u64) {
        for (kind, offset) in [(EventType::Invoke, None), (EventType::Ok, Some(found))] {
            let at = self.tick();
            let e = Event::fetch_committed(process, kind, at, "g", T, partition, offset);
            self.events.push(e);
        }
    }

    fn seek(&mut self, process: &str, partition: u32, offset: u64) {
        let at = self.tick();
        let e = Event::seek(process, at, T, partition, offset).in_group("g");
        self.events.push(e);
    }

    fn poll(&mut self, process: &str, records: Vec<PolledRecord>) {
        let at = self.tick();
        let invoke = Event::poll(process, EventType::Invoke, at, vec![]).in_group("g");
        self.events.push(invoke);
        let at = self.tick();
        let ok = Event::poll(process, EventType::Ok, at, records).in_group("g");
        self.events.push(ok);
    }
}

fn record(partition: u32, offset: u64, key: &str, value: &str) -> PolledRecord {
    PolledRecord {
        topic: T.into(),
        partition,
        offset,
        key: Some(key.into()),
        value: value.into(),
        timestamp: None,
    }
}

fn produce_consume(sends: u64) -> Vec<Event> {
    let mut h = History::new();
    let mut logs: [Vec<(String, String)>; 3] = Default::default();
    for i in 0..sends {
        let (key, value) = (format!("k{}", i % 50), format!("v{i}"));
        let p = (i % 50 % 3) as u32;
        let at = h.tick();
        h.events.push(Event::send(
            "p0",
            EventType::Invoke,
            at,
            T,
            Some(&key),
            &value,
        ));
        let at = h.tick();
        let log = &mut logs[p as usize];
        h.events.push(if i % 3 == 0 {
            Event::send("p0", EventType::Info, at, T, Some(&key), &value)
        } else {
            Event::send_ok("p0", at, T, Some(&key), &value, p, log.len() as u64)
        });
        log.push((key, value));
    }
    let mut at = [0u64; 3];
    let mut round = 0;
    while at.iter().zip(&logs).any(|(&a, log)| a < log.len() as u64) {
        round += 1;
        let p = (round % 3) as u32;
        let from = at[p as usize];
        let log = &logs[p as usize];
        let until = (from + 20).min(log.len() as u64);
        let records = (from..until)
            .map(|o| {
                let (k, v) = &log[o as usize];
                record(p, o, k, v)
            })
            .collect();
        h.poll("m0", records);
        at[p as usize] = until;
        h.commit("m0", p, until);
        if round % 7 == 0 {
            h.fetch("m1", p, until);
        }
        if round % 11 == 0 && until > 30 {
            at[p as usize] = until - 30;
            h.seek("m0", p, until - 30);
        }
    }
    h.events
}

fn seek_flip(flips: u64) -> Vec<Event> {
    let mut h = History::new();
    for o in 0..20 {
        let at = h.tick();
        let value = format!("v{o}");
        h.events.push(Event::send(
            "p0",
            EventType::Invoke,
            at,
            T,
            Some("k"),
            &value,
        ));
        let at = h.tick();
        h.events
            .push(Event::send_ok("p0", at, T, Some("k"), &value, 0, o));
    }
    h.poll(
        "m0",
        (0..20)
            .map(|o| record(0, o, "k", &format!("v{o}")))
            .collect(),
    );
    for i in 0..flips {
        let offset = if i % 2 == 0 { 20 } else { 10 };
        h.seek("m0", 0, offset);
        h.commit("m0", 0, offset);
        h.fetch("m1", 0, offset);
    }
    h.events
}

/// `sends` sends to ten keys (each key one log), one per operation, then polls of 20 offsets
/// of every key at a time until all are read, as EDN operation maps, one per line.
fn jepsen_edn(sends: u64) -> String {
    let mut text = String::new();
    let mut index = 0;
    let mut op = |time: u64, rest: String| {
        writeln!(text, "{{:index {index}, :time {time}, {rest}}}").expect("a String takes text");
        index += 1;
    };
    for i in 0..sends {
        let (key, offset) = (i % 10, i / 10);
        let send = ":process 0, :f :send, :value [[:send";
        op(2 * i, format!(":type :invoke, {send} {key} {i}]]"));
        op(
            2 * i + 1,
            format!(":type :ok, {send} {key} [{offset} {i}]]]"),
        );
    }
    let per_key = sends / 10;
    let mut time = 2 * sends;
    for from in (0..per_key).step_by(20) {
        let read: Vec<String> = (0..10)
            .map(|key| {
                let records: Vec<String> = (from..(from + 20).min(per_key))
                    .map(|o| format!("[{o} {}]", o * 10 + key))
                    .collect();
                format!("{key} [{}]", records.join(" "))
            })
            .collect();
        op(
            time,
            ":type :invoke, :process 1, :f :poll, :value [[:poll]]".to_string(),
        );
        let poll = format!("[[:poll {{{}}}]]", read.join(", "));
        op(
            time + 1,
            format!(":type :ok, :process 1, :f :poll, :value {poll}"),
        );
        time += 2;
    }
    text
}

/// Builds a history of the given size.
type Build = fn(u64) -> Vec<Event>;

fn main() {
    let cases: [(&str, Build, [u64; 3]); 2] = [
        (
            "produce-consume",
            produce_consume,
            [25_000, 100_000, 400_000],
        ),
        ("seek-flip", seek_flip, [2_000, 8_000, 32_000]),
    ];
    for (name, build, sizes) in cases {
        for size in sizes {
            let events = build(size);
            let start = Instant::now();
            let report = black_box(check(&events));
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{name:<16} {size:>7} {:>9} events {secs:>8.3} s {:>12.0} events/s  anomalies {}",
                events.len(),
                events.len() as f64 / secs,
                report.anomalies.len()
            );
        }
    }
    for sends in [25_000, 100_000, 400_000] {
        let text = jepsen_edn(sends);
        let start = Instant::now();
        let events = parse_history(&text).expect("a well-formed EDN history");
        let report = black_box(check(&events));
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<16} {sends:>7} {:>9} events {secs:>8.3} s {:>12.0} events/s  anomalies {} \
             (read and checked)",
            "jepsen-edn",
            events.len(),
            events.len() as f64 / secs,
            report.anomalies.len()
        );
    }
}
