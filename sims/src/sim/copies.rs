//! Which brokers have ever held each record: for `acked-under-min-insync`, the promise of
//! acks=all with `min.insync.replicas = m` — when the producer hears Ok, at least m replicas had
//! the batch. A leader keeps it by waiting for every ISR member and by refusing the answer
//! (`NotEnoughReplicasAfterAppend`) when the ISR shrank below m while it waited. A leader that
//! answers Ok anyway has promised a record that one power loss can take, and the history shows
//! nothing unless that power loss comes.
//!
//! A record is named by its offset and the epoch of the leader that appended it (one leader per
//! epoch, so one record per pair). What a broker held of an epoch is kept as one span per epoch,
//! from the lowest offset to the highest end seen, never shrunk: a copy a broker held and lost
//! (a power loss, a truncation) still counted when the leader counted it. Two spans of one epoch
//! with a gap between them (held, lost, then fetched again above a moved log start) would count
//! the gap as held, which can hide a violation but never invent one.

use seedlog::log::PartitionLog;
use seedlog::protocol::{LeaderEpoch, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

/// Per partition, what its replicas have held.
#[derive(Default)]
pub struct Copies {
    partitions: BTreeMap<TopicPartition, PartitionCopies>,
}

#[derive(Default)]
struct PartitionCopies {
    /// Per (epoch, broker), the offsets `[from, to)` of that epoch the broker has held.
    spans: BTreeMap<(LeaderEpoch, NodeId), (Offset, Offset)>,
    /// Each broker's (log start, log end, latest epoch) when last noted: a step that moved none
    /// of them added no record, so its epochs are not walked again.
    marks: BTreeMap<NodeId, (Offset, Offset, Option<LeaderEpoch>)>,
}

impl Copies {
    /// Notes what `broker`'s replica of `tp` holds now.
    pub fn note(&mut self, broker: NodeId, tp: &TopicPartition, log: &PartitionLog) {
        self.note_below(broker, tp, log, log.log_end_offset());
    }

    /// Notes what `broker`'s replica of `tp` holds below `end` (its synced offset, for the
    /// copies on disk).
    pub fn note_below(
        &mut self,
        broker: NodeId,
        tp: &TopicPartition,
        log: &PartitionLog,
        end: Offset,
    ) {
        // No key clone on this per-step path once the partition is known.
        let p = match self.partitions.get_mut(tp) {
            Some(p) => p,
            None => self.partitions.entry(tp.clone()).or_default(),
        };
        let start = log.log_start_offset();
        let end = end.clamp(start, log.log_end_offset());
        let epochs = log.epoch_cache().entries();
        let mark = (start, end, epochs.last().map(|e| e.epoch));
        if p.marks.insert(broker, mark) == Some(mark) {
            return;
        }
        for (i, e) in epochs.iter().enumerate() {
            let from = e.start_offset.max(start);
            let to = epochs.get(i + 1).map_or(end, |n| n.start_offset.min(end));
            if from >= to {
                continue;
            }
            let span = p.spans.entry((e.epoch, broker)).or_insert((from, to));
            *span = (span.0.min(from), span.1.max(to));
        }
    }

    /// The most brokers that have held one record at `offset` of `tp` (the record of whichever
    /// epoch was copied most).
    pub fn holders(&self, tp: &TopicPartition, offset: Offset) -> usize {
        let Some(p) = self.partitions.get(tp) else {
            return 0;
        };
        // The spans are ordered by epoch, then broker: one walk counts each epoch's holders.
        let mut most = 0;
        let mut current: Option<(LeaderEpoch, usize)> = None;
        for (&(epoch, _), &(from, to)) in &p.spans {
            let held = usize::from((from..to).contains(&offset));
            let count = match current {
                Some((e, n)) if e == epoch => n + held,
                _ => held,
            };
            current = Some((epoch, count));
            most = most.max(count);
        }
        most
    }

    /// How many brokers have held the record that the leader of `epoch` put at `offset`.
    pub fn holders_of(&self, tp: &TopicPartition, offset: Offset, epoch: LeaderEpoch) -> usize {
        let Some(p) = self.partitions.get(tp) else {
            return 0;
        };
        let of_epoch = p.spans.range((epoch, NodeId::MIN)..=(epoch, NodeId::MAX));
        of_epoch
            .filter(|(_, (from, to))| (*from..*to).contains(&offset))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedlog::protocol::{LogEntry, Record};

    fn entries(from: Offset, to: Offset, epoch: LeaderEpoch) -> Vec<LogEntry> {
        (from..to)
            .map(|offset| LogEntry {
                offset,
                epoch,
                record: Record::keyed("k", offset.to_string()),
                producer: None,
            })
            .collect()
    }

    fn log_of(runs: &[(Offset, Offset, LeaderEpoch)]) -> PartitionLog {
        let mut log = PartitionLog::new();
        for &(from, to, epoch) in runs {
            log.assign_epoch(epoch, from);
            log.append_entries(&entries(from, to, epoch)).unwrap();
        }
        log
    }

    #[test]
    fn a_copy_counts_once_held_even_after_it_is_lost() {
        let tp = TopicPartition::new("events", 0);
        let mut c = Copies::default();
        // The leader (1) holds 0..4 of epoch 1; follower 2 fetched 0..3, follower 3 nothing.
        c.note(1, &tp, &log_of(&[(0, 4, 1)]));
        c.note(2, &tp, &log_of(&[(0, 3, 1)]));
        c.note(3, &tp, &PartitionLog::new());
        assert_eq!(c.holders(&tp, 2), 2);
        assert_eq!(c.holders(&tp, 3), 1);
        assert_eq!(c.holders(&tp, 4), 0);
        // Follower 2 loses power and comes back empty: what it held still counts.
        c.note(2, &tp, &PartitionLog::new());
        assert_eq!(c.holders(&tp, 2), 2);
        // Another partition is kept apart.
        assert_eq!(c.holders(&TopicPartition::new("events", 1), 0), 0);
    }

    #[test]
    fn records_of_different_epochs_at_one_offset_are_not_added_up() {
        let tp = TopicPartition::new("events", 0);
        let mut c = Copies::default();
        // Broker 1 led epoch 1 and appended 0..3; broker 2, leader of epoch 2, has 0..1 of epoch
        // 1 and its own 1..3; broker 3 fetched from it, and one step fetches across the epochs.
        c.note(1, &tp, &log_of(&[(0, 3, 1)]));
        c.note(2, &tp, &log_of(&[(0, 1, 1), (1, 3, 2)]));
        assert_eq!(c.holders(&tp, 2), 1);
        c.note(3, &tp, &log_of(&[(0, 1, 1), (1, 3, 2)]));
        assert_eq!(c.holders(&tp, 0), 3);
        assert_eq!(c.holders(&tp, 2), 2);
        assert_eq!((c.holders_of(&tp, 2, 1), c.holders_of(&tp, 2, 2)), (1, 2));
        assert_eq!(c.holders_of(&tp, 2, 3), 0);
        // Broker 1 truncates to the divergence and takes epoch 2's records.
        c.note(1, &tp, &log_of(&[(0, 1, 1), (1, 3, 2)]));
        assert_eq!(c.holders(&tp, 2), 3);
    }

    /// `holders` walks the spans once; it equals the most holders of any one epoch's record
    /// (`holders_of` per epoch), on random logs noted by random brokers.
    #[test]
    fn the_most_holders_are_those_of_the_epoch_held_most() {
        use crate::rng::SeedRng;
        let tp = TopicPartition::new("events", 0);
        let mut differed = 0;
        for seed in 0..300 {
            let mut rng = SeedRng::new(seed, 0);
            let mut c = Copies::default();
            for _ in 0..8 {
                let mut runs = Vec::new();
                let (mut at, mut epoch) = (0, 0);
                for _ in 0..rng.range(1, 3) {
                    epoch += rng.range(1, 2) as LeaderEpoch;
                    let to = at + rng.range(1, 4);
                    runs.push((at, to, epoch));
                    at = to;
                }
                let mut log = log_of(&runs);
                log.advance_log_start(rng.range(0, 3));
                c.note(rng.range(1, 4) as NodeId, &tp, &log);
            }
            for offset in 0..14 {
                let plain = (0..12).map(|e| c.holders_of(&tp, offset, e)).max().unwrap();
                assert_eq!(c.holders(&tp, offset), plain, "seed {seed} offset {offset}");
                let all: usize = (0..12).map(|e| c.holders_of(&tp, offset, e)).sum();
                differed += usize::from(all > plain);
            }
        }
        assert!(
            differed > 100,
            "only {differed} offsets held in more than one epoch"
        );
    }
}
