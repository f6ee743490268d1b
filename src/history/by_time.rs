//! `wrong-time-offset`: an answer to "the first offset whose record's timestamp is at least
//! `T`" (Kafka's ListOffsets by time), held against the records consumers read.
//!
//! The leader answers from its committed records (below its high watermark), which no clean
//! failover takes back, so the records read at those offsets are the ones it searched. An `ok`
//! answer `O` with record timestamp `r` is wrong if
//! - `r < T`: the record found is before the time asked;
//! - a record read at `O` has a timestamp other than `r`: the answer named a record that is not
//!   the one at `O` (an uncommitted record, or the wrong offset);
//! - a record read at an offset `o` with `log_start <= o < O` has a timestamp at or after `T`:
//!   the answer is not the first (with no record found, `O` is the high watermark and no record
//!   below it may qualify). Records below the leader's log start were deleted and cannot be
//!   found, so this needs the answer's `log_start` (histories of real Kafka clients lack it:
//!   Kafka's answer does not carry it), and polls that wrote the records' timestamps.
//!
//! Timestamps are the producers' and need not grow with offsets; "first" means the lowest
//! offset, as in Kafka.
//!
//! `wrong-max-timestamp`: an answer to "the first offset holding the largest timestamp of the
//! committed records" (Kafka's max-timestamp lookup), held the same way against the records
//! read. The leader looks at its records from its log start `L` to its high watermark `H`, both
//! carried by the answer when known. An `ok` answer `O` with record timestamp `r` is wrong if
//! - `O >= H`: the record named is not committed;
//! - a record read at `O` has a timestamp other than `r`;
//! - a record read at an offset in `L..O` has a timestamp at or after `r` (the answer is not the
//!   first with the largest), or one in `O+1..H` a timestamp after `r` (not the largest);
//! - with no record found, `O` is not `H`, or a record was read in `L..O`.

use super::checker::Tp;
use super::event::{EventType, Op};
use super::ops::Operation;
use std::collections::BTreeMap;

/// The records read from one partition with their timestamps, sorted by offset, and a table of
/// range maxima over the timestamps: is there a record at or after `T` in an offset range, and
/// which is the first, without a scan per answer.
struct Timeline {
    offsets: Vec<u64>,
    /// `max[k][i]`: the highest timestamp of the records `i .. i + 2^k`.
    max: Vec<Vec<i64>>,
}

impl Timeline {
    fn new(records: BTreeMap<u64, i64>) -> Timeline {
        let (offsets, stamps): (Vec<u64>, Vec<i64>) = records.into_iter().unzip();
        let mut max = vec![stamps];
        let mut width = 1;
        while width * 2 <= offsets.len() {
            let prev = &max[max.len() - 1];
            let next = (0..=offsets.len() - width * 2)
                .map(|i| prev[i].max(prev[i + width]))
                .collect();
            max.push(next);
            width *= 2;
        }
        Timeline { offsets, max }
    }

    fn stamp_at(&self, offset: u64) -> Option<i64> {
        let i = self.offsets.binary_search(&offset).ok()?;
        Some(self.max[0][i])
    }

    /// The highest timestamp among records `lo..hi` (indices, `lo < hi`).
    fn range_max(&self, lo: usize, hi: usize) -> i64 {
        let k = (usize::BITS - 1 - (hi - lo).leading_zeros()) as usize;
        self.max[k][lo].max(self.max[k][hi - (1 << k)])
    }

    /// The first record read at an offset in `from..until` whose timestamp is at least `t`.
    fn first_at_or_after(&self, t: i64, from: u64, until: u64) -> Option<(u64, i64)> {
        let lo = self.offsets.partition_point(|&o| o < from);
        let hi = self.offsets.partition_point(|&o| o < until);
        if lo >= hi || self.range_max(lo, hi) < t {
            return None;
        }
        // The prefix maximum only grows: the first end at which it reaches `t`.
        let (mut a, mut b) = (lo + 1, hi);
        while a < b {
            let mid = (a + b) / 2;
            if self.range_max(lo, mid) >= t {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        Some((self.offsets[a - 1], self.max[0][a - 1]))
    }
}

/// The `ok` answers of operation `f`, and a timeline of the records read from each partition
/// they asked about.
fn answers_and_timelines<'a>(
    ops: &'a [Operation],
    f: Op,
) -> (Vec<&'a Operation<'a>>, BTreeMap<Tp<'a>, Timeline>) {
    let answers: Vec<&Operation> = ops
        .iter()
        .filter(|op| op.f == f && op.outcome == EventType::Ok)
        .collect();
    if answers.is_empty() {
        return (answers, BTreeMap::new());
    }
    let asked: BTreeMap<Tp, ()> = answers
        .iter()
        .filter_map(|op| Some(((op.event.topic.as_deref()?, op.event.partition?), ())))
        .collect();
    let mut read: BTreeMap<Tp, BTreeMap<u64, i64>> = BTreeMap::new();
    for op in ops
        .iter()
        .filter(|op| op.f == Op::Poll && op.outcome == EventType::Ok)
    {
        for r in op.event.records.iter().flatten() {
            let tp = (r.topic.as_str(), r.partition);
            if let (Some(ts), true) = (r.timestamp, asked.contains_key(&tp)) {
                read.entry(tp).or_default().entry(r.offset).or_insert(ts);
            }
        }
    }
    let timelines = read
        .into_iter()
        .map(|(tp, records)| (tp, Timeline::new(records)))
        .collect();
    (answers, timelines)
}

pub(super) fn check_offsets_for_time(
    ops: &[Operation],
    report: &mut impl FnMut(&'static str, String, String),
) {
    let (answers, timelines) = answers_and_timelines(ops, Op::OffsetForTime);
    for op in answers {
        let e = &op.event;
        let (Some(topic), Some(p), Some(t), Some(o)) =
            (e.topic.as_deref(), e.partition, e.timestamp, e.offset)
        else {
            continue;
        };
        let subject = format!("{topic}-{p}@{o}");
        let told = format!(
            "{} asked for the first offset of {topic}-{p} at or after time {t} and was told {o}",
            op.process
        );
        let timeline = timelines.get(&(topic, p));
        if let Some(r) = e.record_timestamp {
            if r < t {
                let detail = format!("{told}, whose record's timestamp {r} is before that time");
                report("wrong-time-offset", subject.clone(), detail);
            }
            match timeline.and_then(|tl| tl.stamp_at(o)) {
                Some(x) if x != r => {
                    let detail = format!(
                        "{told} with timestamp {r}, but the record read at {o} has timestamp {x}"
                    );
                    report("wrong-time-offset", subject.clone(), detail);
                }
                _ => {}
            }
        }
        let (Some(start), Some(tl)) = (e.log_start, timeline) else {
            continue;
        };
        if let Some((below, x)) = tl.first_at_or_after(t, start, o) {
            let found = if e.record_timestamp.is_some() {
                ""
            } else {
                " (no record found)"
            };
            let detail = format!(
                "{told}{found}, but the record read at {below}, above the leader's log start \
                 {start}, has timestamp {x}: the answer is not the first"
            );
            report("wrong-time-offset", subject, detail);
        }
    }
}

pub(super) fn check_offsets_for_max_timestamp(
    ops: &[Operation],
    report: &mut impl FnMut(&'static str, String, String),
) {
    let (answers, timelines) = answers_and_timelines(ops, Op::OffsetForMaxTimestamp);
    for op in answers {
        let e = &op.event;
        let (Some(topic), Some(p), Some(o)) = (e.topic.as_deref(), e.partition, e.offset) else {
            continue;
        };
        let subject = format!("{topic}-{p}@{o}");
        let told = format!(
            "{} asked for the first offset of {topic}-{p} with the largest timestamp and was told {o}",
            op.process
        );
        let mut wrong = |detail: String| report("wrong-max-timestamp", subject.clone(), detail);
        let timeline = timelines.get(&(topic, p));
        let Some(r) = e.record_timestamp else {
            // None found: the leader had no committed record from its log start up, and the
            // answer is its high watermark.
            if let Some(h) = e.high_watermark.filter(|&h| h != o) {
                wrong(format!(
                    "{told} (no record found), but the leader's high watermark was {h}"
                ));
            }
            if let (Some(start), Some(tl)) = (e.log_start, timeline) {
                if let Some((below, x)) = tl.first_at_or_after(i64::MIN, start, o) {
                    wrong(format!(
                        "{told} (no record found), but the record read at {below}, above the \
                         leader's log start {start}, has timestamp {x}"
                    ));
                }
            }
            continue;
        };
        if let Some(h) = e.high_watermark.filter(|&h| o >= h) {
            wrong(format!(
                "{told} with timestamp {r}, at or above the leader's high watermark {h}: the \
                 record is not committed"
            ));
        }
        let Some(tl) = timeline else {
            continue;
        };
        if let Some(x) = tl.stamp_at(o).filter(|&x| x != r) {
            wrong(format!(
                "{told} with timestamp {r}, but the record read at {o} has timestamp {x}"
            ));
        }
        if let Some(start) = e.log_start {
            if let Some((below, x)) = tl.first_at_or_after(r, start, o) {
                wrong(format!(
                    "{told} with timestamp {r}, but the record read at {below}, above the \
                     leader's log start {start}, has timestamp {x}: the answer is not the first \
                     with the largest"
                ));
            }
        }
        // Larger than `r`: none, if `r` is the largest timestamp there is.
        if let (Some(h), Some(larger)) = (e.high_watermark, r.checked_add(1)) {
            if let Some((at, x)) = tl.first_at_or_after(larger, o.saturating_add(1), h) {
                wrong(format!(
                    "{told} with timestamp {r}, but the record read at {at}, below the leader's \
                     high watermark {h}, has the larger timestamp {x}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timeline;
    use crate::history::{
        check, parse_history, to_json_line, Event, EventType, MaxTimestampAnswer, PolledRecord,
    };
    use std::collections::BTreeMap;

    /// Records at offsets 0..6 of `t-0`, read by c9, with these timestamps (out of order, one
    /// repeated, as producers' clocks give).
    const STAMPS: [i64; 6] = [10, 20, 20, 15, 30, 40];

    fn reads() -> Vec<Event> {
        read_by_c9(&STAMPS)
    }

    /// c9's poll of records at offsets 0.. of `t-0`, stamped `stamps`.
    fn read_by_c9(stamps: &[i64]) -> Vec<Event> {
        let records = stamps
            .iter()
            .enumerate()
            .map(|(o, &ts)| PolledRecord {
                topic: "t".into(),
                partition: 0,
                offset: o as u64,
                key: None,
                value: format!("v{o}"),
                timestamp: Some(ts),
            })
            .collect();
        vec![Event::poll("c9", EventType::Ok, 0, records)]
    }

    /// An answer: offset, found record's timestamp, log start.
    type Answer = (u64, Option<i64>, Option<u64>);

    /// c0 asks for time `t` and is told `answer`.
    fn asked(t: i64, answer: Answer) -> Vec<Event> {
        let ask = |kind, answer| Event::offset_for_time("c0", kind, 0, "t", 0, t, answer);
        vec![
            ask(EventType::Invoke, None),
            ask(EventType::Ok, Some(answer)),
        ]
    }

    /// The anomalies' names and details of `reads` plus these answers.
    fn judged(answers: &[(i64, Answer)]) -> Vec<(String, String)> {
        let mut h = reads();
        for &(t, a) in answers {
            h.extend(asked(t, a));
        }
        let report = check(&h);
        assert_eq!(report.stats.offsets_for_time, answers.len());
        report
            .anomalies
            .into_iter()
            .map(|a| (a.name.to_string(), a.detail))
            .collect()
    }

    #[test]
    fn right_answers_by_time_pass() {
        let right = [
            // The first record at or after 20 is at 1 (20), not 3 (15, lower but later).
            (20, (1, Some(20), Some(0))),
            (11, (1, Some(20), Some(0))),
            (10, (0, Some(10), Some(0))),
            (31, (5, Some(40), Some(0))),
            // Nothing at or after 41: the high watermark.
            (41, (6, None, Some(0))),
            // Retention deleted 0..3: the first held record at or after 10 is 3.
            (10, (3, Some(15), Some(3))),
            // No log start: below the answer is not judged.
            (10, (4, Some(30), None)),
        ];
        assert_eq!(judged(&right), vec![]);
    }

    #[test]
    fn an_answer_before_the_time_asked_is_wrong() {
        let found = judged(&[(21, (3, Some(15), Some(0)))]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "wrong-time-offset");
        assert!(
            found[0].1.contains("timestamp 15 is before that time"),
            "{found:?}"
        );
    }

    #[test]
    fn an_answer_naming_another_record_s_timestamp_is_wrong() {
        // Offset 2 holds 20; the answer says 30 (the record at 4).
        let found = judged(&[(25, (2, Some(30), None))]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].1.contains("the record read at 2 has timestamp 20"),
            "{found:?}"
        );
    }

    #[test]
    fn an_answer_past_a_record_that_qualifies_is_wrong() {
        // A strict search (timestamp above, not at or above, the time asked) skips 1 for 2.
        let found = judged(&[(20, (2, Some(20), Some(0)))]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].1.contains(
                "the record read at 1, above the leader's log start 0, has \
                                 timestamp 20: the answer is not the first"
            ),
            "{found:?}"
        );
        // "None found" while 5 (40) qualifies.
        let found = judged(&[(35, (6, None, Some(2)))]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("(no record found)"), "{found:?}");
    }

    #[test]
    fn answers_by_time_survive_the_history_format() {
        let mut h = reads();
        h.extend(asked(20, (1, Some(20), Some(0))));
        h.extend(asked(41, (6, None, Some(0))));
        let text: String = h.iter().map(|e| to_json_line(e) + "\n").collect();
        assert!(text.contains(r#""f":"offset-for-time""#), "{text}");
        assert_eq!(parse_history(&text).unwrap(), h);
        // What the check reads must be there: the time asked, and the answer of an ok.
        let no_time: String = text
            .lines()
            .map(|l| match l.contains(r#""type":"invoke""#) {
                true => l.replacen(r#","timestamp":20"#, "", 1) + "\n",
                false => l.to_string() + "\n",
            })
            .collect();
        let err = parse_history(&no_time).unwrap_err();
        assert!(err.message.contains(r#"lacks "timestamp""#), "{err}");
    }

    /// The range-maximum search against a scan, over every range of a small partition with
    /// gaps and timestamps out of offset order.
    #[test]
    fn the_first_record_at_or_after_a_time_matches_a_scan() {
        let stamps = [5, 3, 9, 9, 1, 7, 2, 8, 8, 4, 6];
        let records: BTreeMap<u64, i64> = stamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| (i as u64 * 2, ts))
            .collect();
        let tl = Timeline::new(records.clone());
        for from in 0..24 {
            for until in 0..24 {
                for t in 0..11 {
                    let scan = records
                        .range(from..until.max(from))
                        .find(|(_, &ts)| ts >= t)
                        .map(|(&o, &ts)| (o, ts));
                    assert_eq!(
                        tl.first_at_or_after(t, from, until),
                        scan,
                        "{t} {from}..{until}"
                    );
                }
            }
        }
        assert_eq!(tl.stamp_at(4), Some(9));
        assert_eq!(tl.stamp_at(5), None);
    }

    /// Records at offsets 0..6 of `t-0` for the max-timestamp checks: the largest, 40, twice.
    const MAX_STAMPS: [i64; 6] = [10, 40, 20, 40, 15, 30];

    /// A max-timestamp answer: offset, record timestamp, log start, high watermark.
    type MaxAnswer = (u64, Option<i64>, Option<u64>, Option<u64>);

    /// c0 asks `t-0` for its max-timestamp offset and is told each answer, after c9 read
    /// `MAX_STAMPS`; the anomalies.
    fn judged_max(answers: &[MaxAnswer]) -> Vec<String> {
        let mut h = read_by_c9(&MAX_STAMPS);
        for &(offset, record_timestamp, log_start, high_watermark) in answers {
            let answer = MaxTimestampAnswer {
                offset,
                record_timestamp,
                log_start,
                high_watermark,
            };
            let ask = |kind, answer| Event::offset_for_max_timestamp("c0", kind, 0, "t", 0, answer);
            h.push(ask(EventType::Invoke, None));
            h.push(ask(EventType::Ok, Some(answer)));
        }
        let report = check(&h);
        assert_eq!(report.stats.offsets_for_max_timestamp, answers.len());
        report
            .anomalies
            .into_iter()
            .map(|a| {
                assert_eq!(a.name, "wrong-max-timestamp");
                a.detail
            })
            .collect()
    }

    #[test]
    fn right_answers_by_max_timestamp_pass() {
        let right = [
            // The first of the two 40s.
            (1, Some(40), Some(0), Some(6)),
            // Only offset 0 committed: its 10 is the largest.
            (0, Some(10), Some(0), Some(1)),
            // 0..3 committed: 1 still.
            (1, Some(40), Some(0), Some(3)),
            // Retention deleted 0..2: the 40 at 3 is the first left.
            (3, Some(40), Some(2), Some(6)),
            // Everything deleted: none found, the high watermark.
            (6, None, Some(6), Some(6)),
            // A real client's answer (no log start, no high watermark): only the record at the
            // offset is judged.
            (3, Some(40), None, None),
        ];
        assert_eq!(judged_max(&right), Vec::<String>::new());
    }

    #[test]
    fn wrong_answers_by_max_timestamp_are_named() {
        let one = |answer| {
            let found = judged_max(&[answer]);
            assert_eq!(found.len(), 1, "{answer:?}: {found:?}");
            found.into_iter().next().unwrap()
        };
        // The last of the two 40s (KAFKA-16310's kind of answer).
        let d = one((3, Some(40), Some(0), Some(6)));
        assert!(d.contains("the record read at 1, above the leader's log start 0, has timestamp 40: the answer is not the first with the largest"), "{d}");
        // A smaller timestamp, below the largest.
        let d = one((5, Some(30), Some(0), Some(7)));
        assert!(d.contains("the record read at 1"), "{d}");
        // A smaller timestamp, above it: a committed record after the answer is larger.
        let d = one((0, Some(10), Some(0), Some(3)));
        assert!(d.contains("the record read at 1, below the leader's high watermark 3, has the larger timestamp 40"), "{d}");
        // A record the leader had not committed.
        let d = one((1, Some(40), Some(0), Some(1)));
        assert!(
            d.contains("at or above the leader's high watermark 1"),
            "{d}"
        );
        // Another record's timestamp.
        let d = one((2, Some(40), None, None));
        assert!(d.contains("the record read at 2 has timestamp 20"), "{d}");
        // None found, answered with an offset other than the high watermark (its log end).
        let d = one((8, None, Some(6), Some(6)));
        assert!(
            d.contains("(no record found), but the leader's high watermark was 6"),
            "{d}"
        );
        // None found, though the leader held committed records.
        let d = one((6, None, Some(4), Some(6)));
        assert!(
            d.contains("(no record found), but the record read at 4"),
            "{d}"
        );
    }

    #[test]
    fn answers_by_max_timestamp_survive_the_history_format() {
        let answer = MaxTimestampAnswer {
            offset: 1,
            record_timestamp: Some(40),
            log_start: Some(0),
            high_watermark: Some(6),
        };
        let h = vec![
            Event::offset_for_max_timestamp("c0", EventType::Invoke, 0, "t", 0, None),
            Event::offset_for_max_timestamp("c0", EventType::Ok, 1, "t", 0, Some(answer)),
        ];
        let text: String = h.iter().map(|e| to_json_line(e) + "\n").collect();
        assert!(text.contains(r#""f":"offset-for-max-timestamp""#), "{text}");
        assert!(text.contains(r#""high_watermark":6"#), "{text}");
        assert_eq!(parse_history(&text).unwrap(), h);
        // An ok must carry its answer.
        let no_offset = text.replacen(r#","offset":1"#, "", 1);
        let err = parse_history(&no_offset).unwrap_err();
        assert!(err.message.contains(r#"lacks "offset""#), "{err}");
    }
}
