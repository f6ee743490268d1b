//! Checks of what clients were told, as each answer arrives: an answer is held to what the
//! cluster's nodes have had so far (every broker's replicas are noted after each of its steps,
//! the answering one's included, before its answer leaves).

use super::CrossChecks;
use seedlog::log::PartitionLog;
use seedlog::protocol::{LeaderEpoch, NodeId, Offset, OffsetsKey, OffsetsValue, TopicPartition};
use seedlog::runtime::lock;
use std::collections::BTreeMap;

impl CrossChecks {
    /// `latest-above-hw`: a consumer was told `offset` is `tp`'s latest offset. The leader
    /// answers its high watermark, and every leader's is noted after each of its steps (the
    /// answering one's included, before the answer leaves), so no answer can exceed the highest
    /// so far. An answer above it counted records nobody had committed, which a consumer seeking
    /// there skips; the history shows that only if a failover then gives those offsets to other
    /// records (`latest-ahead`).
    ///
    /// `latest-below-older-epoch`: the answer of a leader of epoch `e` is at least every high
    /// watermark a leader of an older epoch had. A clean election picks an ISR member, which
    /// holds everything its predecessors committed, so a new leader's epoch starts at or above
    /// their high watermarks (a deposed leader cannot commit past what its successor fetched
    /// from it), and it answers only once its own high watermark reaches its epoch start
    /// (KIP-207). A deposed leader still answering is held only to epochs older than its own.
    pub fn latest_answer(
        &self,
        tp: &TopicPartition,
        offset: Offset,
        epoch: Option<LeaderEpoch>,
    ) -> Result<(), String> {
        let by_epoch = lock(&self.leader_high_watermarks);
        let epochs = by_epoch.get(tp);
        let highest = highest_of(epochs);
        if offset > highest {
            return Err(format!(
                "latest-above-hw {tp}: a consumer was told the latest offset is {offset}, but no \
                 leader's high watermark has been above {highest}"
            ));
        }
        let Some(epoch) = epoch.filter(|_| !self.unclean_elections) else {
            return Ok(());
        };
        let older = epochs
            .into_iter()
            .flat_map(|e| e.range(..epoch))
            .max_by_key(|(_, hw)| **hw);
        match older {
            Some((e, hw)) if *hw > offset => Err(format!(
                "latest-below-older-epoch {tp}: the leader of epoch {epoch} answered the latest \
                 offset {offset}, but the leader of epoch {e} had already reached a high \
                 watermark of {hw}"
            )),
            _ => Ok(()),
        }
    }

    /// `time-offset-above-hw`: a consumer was told `offset` is the first of `tp` at or after a
    /// time (or the first with the largest timestamp). The leader searches its committed records only: a record found is below its high
    /// watermark, and with none found the answer is the high watermark itself. Either way no
    /// leader's high watermark so far may be below it (the history checker sees a wrong answer
    /// only where consumers read the records around it: `wrong-time-offset`).
    pub fn time_answer(
        &self,
        tp: &TopicPartition,
        offset: Offset,
        found: bool,
    ) -> Result<(), String> {
        let highest = highest_of(lock(&self.leader_high_watermarks).get(tp));
        let bound = if found {
            highest.saturating_sub(1)
        } else {
            highest
        };
        if offset > bound {
            let what = if found {
                "a record at"
            } else {
                "no record, so"
            };
            return Err(format!(
                "time-offset-above-hw {tp}: a consumer was told {what} {offset} answers its \
                 lookup by time, but no leader's high watermark has been above {highest}"
            ));
        }
        Ok(())
    }

    /// `acked-above-hw`: an acks=all producer was told its record is at `offset` of `tp`. A
    /// leader answers acks=all once its high watermark passes the batch's last record, and every
    /// leader's is noted after each of its steps (the answering one's included, before the
    /// answer leaves), so some leader has had a high watermark above `offset`. An answer before
    /// that promises a record a failover can still take away (the history shows it only if one
    /// does: `lost-write`).
    ///
    /// `acked-under-min-insync`: and at least `min.insync.replicas` brokers have held that
    /// record (see `Copies`); each broker's replicas are noted after each of its steps, before
    /// an answer it sends leaves.
    pub fn acked_answer(&self, tp: &TopicPartition, offset: Offset) -> Result<(), String> {
        if let Err(highest) = self.committed(tp, offset) {
            return Err(format!(
                "acked-above-hw {tp}: an acks=all producer was told its record is at {offset}, \
                 but no leader's high watermark has been above {highest}"
            ));
        }
        // A retry of a batch already in the log is answered from the producer's state, which
        // outlives retention (as in Kafka): if retention deleted the batch before a follower
        // fetched it, the ISR can grow back without anyone copying it, and the retry is
        // answered Ok. A record below some replica's log start is not held to the count.
        let deleted = lock(&self.log_starts).get(tp).is_some_and(|s| offset < *s);
        let holders = lock(&self.copies).holders(tp, offset);
        if holders < self.min_insync_replicas && !deleted {
            return Err(format!(
                "acked-under-min-insync {tp}: an acks=all producer was told its record is at \
                 {offset}, but only {holders} broker(s) ever held it (min.insync.replicas={})",
                self.min_insync_replicas
            ));
        }
        Ok(())
    }

    /// `leader-acked-unsynced`: with `fsync` durability, an acks=1 producer was told its record
    /// is at `offset` of `tp`. The leader answers acks=1 once the batch is on its own disk (its
    /// synced offset past the batch's last record), and every broker's synced offset is noted
    /// after each of its steps, before an answer it sends leaves; so some broker has had the
    /// record synced. An answer before promises a record that the leader's power loss takes,
    /// and the history cannot tell (an acks=1 record may also be lost to a failover).
    pub fn leader_acked_answer(&self, tp: &TopicPartition, offset: Offset) -> Result<(), String> {
        let Some(synced) = &self.synced else {
            return Ok(());
        };
        if lock(synced).holders(tp, offset) == 0 {
            return Err(format!(
                "leader-acked-unsynced {tp}: an acks=1 producer was told its record is at \
                 {offset}, but no broker has had it on disk (fsync durability)"
            ));
        }
        Ok(())
    }

    /// `read-above-hw`: a consumer received a record at `offset` of `tp`. A leader gives consumers
    /// only records below its high watermark, noted after each of its steps (the answering one's
    /// included, before the answer leaves), so some leader has had one above `offset`. A record
    /// read before it was committed can still be taken back by a failover; the history shows it
    /// only if one does (`inconsistent-offsets`, `duplicate`).
    pub fn read_answer(&self, tp: &TopicPartition, offset: Offset) -> Result<(), String> {
        if let Err(highest) = self.committed(tp, offset) {
            return Err(format!(
                "read-above-hw {tp}: a consumer read the record at {offset}, but no leader's \
                 high watermark has been above {highest}"
            ));
        }
        Ok(())
    }

    /// `commit-under-min-insync`: group member `me` was told its commit of `offset` for `tp` is
    /// done. The coordinator answers Ok once the commit's record in `offsets` (the group's
    /// `__consumer_offsets` partition) is committed, and refuses with
    /// `NotEnoughReplicasAfterAppend` if the ISR shrank below `min.insync.replicas` meanwhile,
    /// as for acks=all produce; so at least that many brokers have held a record of this
    /// commit. Every broker's replica is searched, newest record first, for records of
    /// (group, `tp`, `offset`) — a later commit of the same offset, or a compaction's copy,
    /// counts as well; a commit no replica holds any more (compacted away, lost) is not checked.
    pub fn commit_answer(
        &self,
        me: NodeId,
        offsets: &TopicPartition,
        group: &str,
        tp: &TopicPartition,
        offset: Offset,
    ) -> Result<(), String> {
        let ids: Vec<NodeId> = lock(&self.peers).keys().copied().collect();
        let states: Vec<_> = ids.into_iter().filter_map(|id| self.peer(me, id)).collect();
        let nodes: Vec<_> = states.iter().map(|s| lock(s)).collect();
        let logs = nodes
            .iter()
            .filter_map(|n| n.as_broker().and_then(|b| b.log(offsets)));
        self.commit_held(logs, offsets, group, tp, offset)
    }

    /// `commit_answer` over the replicas `logs` of `offsets`.
    fn commit_held<'a>(
        &self,
        logs: impl Iterator<Item = &'a PartitionLog>,
        offsets: &TopicPartition,
        group: &str,
        tp: &TopicPartition,
        offset: Offset,
    ) -> Result<(), String> {
        let key = OffsetsKey::Offset {
            group: group.to_string(),
            tp: tp.clone(),
        }
        .encode();
        let mut found = Vec::new();
        for log in logs {
            for e in log.entries().iter().rev() {
                if e.record.key.as_deref() != Some(&key[..]) {
                    continue;
                }
                let value = e.record.value.as_deref().and_then(OffsetsValue::decode);
                if !matches!(value, Some(OffsetsValue::Offset { offset: o, .. }) if o == offset) {
                    continue;
                }
                let holders = lock(&self.copies).holders_of(offsets, e.offset, e.epoch);
                if holders >= self.min_insync_replicas {
                    return Ok(());
                }
                found.push(format!("{}@{} held by {holders}", e.offset, e.epoch));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        found.sort();
        found.dedup();
        Err(format!(
            "commit-under-min-insync {tp}: group {group}'s member was told its commit of {offset} \
             is done, but no record of it in {offsets} was held by min.insync.replicas={} \
             brokers (offset@epoch: {})",
            self.min_insync_replicas,
            found.join(", ")
        ))
    }

    /// Whether some leader of `tp` has had its high watermark above `offset`, that is, has
    /// committed the record there; if none has, the highest high watermark so far.
    fn committed(&self, tp: &TopicPartition, offset: Offset) -> Result<(), Offset> {
        let highest = highest_of(lock(&self.leader_high_watermarks).get(tp));
        if offset < highest {
            Ok(())
        } else {
            Err(highest)
        }
    }

    /// `reset-above-log-start`: a consumer whose fetch was out of range moved to `offset`,
    /// which it reports as `tp`'s log start (what its answer said). Records below a log start
    /// were deleted by retention, which excuses an acknowledged record nobody read, so the
    /// history checker takes the report on trust. Every replica's log start is noted after each
    /// of its steps (the answering one's included, before its answer leaves), so no true report
    /// exceeds the highest so far; one above it skipped records that were still there.
    pub fn log_start_reset(&self, tp: &TopicPartition, offset: Offset) -> Result<(), String> {
        let highest = lock(&self.log_starts).get(tp).copied().unwrap_or(0);
        if offset > highest {
            return Err(format!(
                "reset-above-log-start {tp}: a consumer moved to {offset} as the log start, but \
                 no replica's log has started above {highest}"
            ));
        }
        Ok(())
    }
}

/// The highest of a partition's leaders' high watermarks `by_epoch` (0 if none).
fn highest_of(by_epoch: Option<&BTreeMap<LeaderEpoch, Offset>>) -> Offset {
    by_epoch
        .into_iter()
        .flat_map(|e| e.values())
        .max()
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::tests::group_commit;
    use super::*;
    use seedlog::protocol::{LogEntry, Record};

    fn record(offset: Offset, epoch: LeaderEpoch) -> LogEntry {
        LogEntry {
            offset,
            epoch,
            record: Record::keyed("k", offset.to_string()),
            producer: None,
        }
    }

    fn log_of(entries: &[LogEntry]) -> PartitionLog {
        let mut log = PartitionLog::new();
        log.append_entries(entries).expect("contiguous");
        log
    }

    /// Leaders of epochs 1, 2 and 3 reached high watermarks 10, 12 and 15.
    fn checks(unclean_elections: bool) -> (CrossChecks, TopicPartition) {
        let tp = TopicPartition::new("events", 0);
        let c = CrossChecks::new(unclean_elections, 2);
        let epochs = BTreeMap::from([(1, 10), (2, 12), (3, 15)]);
        lock(&c.leader_high_watermarks).insert(tp.clone(), epochs);
        // Brokers 1 and 2 hold 0..15 of epoch 1, broker 3 all of it and 15..17 as well.
        let entries: Vec<_> = (0..17).map(|o| record(o, 1)).collect();
        let mut copies = lock(&c.copies);
        copies.note(1, &tp, &log_of(&entries[..15]));
        copies.note(2, &tp, &log_of(&entries[..15]));
        copies.note(3, &tp, &log_of(&entries));
        drop(copies);
        (c, tp)
    }

    fn problem(r: Result<(), String>) -> String {
        r.err().map_or(String::new(), |e| {
            e.split(' ').next().unwrap_or("").to_string()
        })
    }

    #[test]
    fn a_reset_above_every_log_start_is_refused() {
        let (c, tp) = checks(false);
        lock(&c.log_starts).insert(tp.clone(), 7);
        assert_eq!(problem(c.log_start_reset(&tp, 8)), "reset-above-log-start");
        assert_eq!(problem(c.log_start_reset(&tp, 7)), "");
        assert_eq!(problem(c.log_start_reset(&tp, 0)), "");
        let other = TopicPartition::new("events", 1);
        assert_eq!(
            problem(c.log_start_reset(&other, 1)),
            "reset-above-log-start"
        );
    }

    #[test]
    fn a_latest_answer_above_every_high_watermark_is_refused() {
        let (c, tp) = checks(false);
        assert_eq!(
            problem(c.latest_answer(&tp, 16, Some(3))),
            "latest-above-hw"
        );
        assert_eq!(problem(c.latest_answer(&tp, 15, Some(3))), "");
        // Unclean elections excuse nothing here: no correct answer exceeds a high watermark.
        let (c, tp) = checks(true);
        assert_eq!(problem(c.latest_answer(&tp, 16, None)), "latest-above-hw");
    }

    #[test]
    fn an_answer_by_time_at_or_above_every_high_watermark_is_refused() {
        let (c, tp) = checks(false);
        // The highest high watermark is 15: a record found is below it; none found, it.
        assert_eq!(problem(c.time_answer(&tp, 14, true)), "");
        assert_eq!(problem(c.time_answer(&tp, 15, false)), "");
        assert_eq!(
            problem(c.time_answer(&tp, 15, true)),
            "time-offset-above-hw"
        );
        assert_eq!(
            problem(c.time_answer(&tp, 16, false)),
            "time-offset-above-hw"
        );
    }

    #[test]
    fn an_acknowledgment_at_or_above_every_high_watermark_is_refused() {
        let (c, tp) = checks(false);
        // The highest high watermark is 15: offsets up to 14 were committed by some leader.
        assert_eq!(problem(c.acked_answer(&tp, 14)), "");
        assert_eq!(problem(c.acked_answer(&tp, 0)), "");
        assert_eq!(problem(c.acked_answer(&tp, 15)), "acked-above-hw");
        let other = TopicPartition::new("events", 1);
        assert_eq!(problem(c.acked_answer(&other, 0)), "acked-above-hw");
    }

    #[test]
    fn a_record_read_at_or_above_every_high_watermark_is_refused() {
        let (c, tp) = checks(false);
        assert_eq!(problem(c.read_answer(&tp, 14)), "");
        assert_eq!(problem(c.read_answer(&tp, 15)), "read-above-hw");
        let other = TopicPartition::new("events", 1);
        assert_eq!(problem(c.read_answer(&other, 0)), "read-above-hw");
    }

    /// A `__consumer_offsets` entry: group g's commit of `committed` for events-0.
    fn commit(offset: Offset, epoch: LeaderEpoch, committed: Offset) -> LogEntry {
        group_commit(
            offset,
            epoch,
            "g",
            TopicPartition::new("events", 0),
            committed,
        )
    }

    #[test]
    fn a_commit_whose_records_too_few_brokers_held_is_refused() {
        let c = CrossChecks::new(false, 2);
        let (offsets, tp) = (
            TopicPartition::new("__consumer_offsets", 1),
            TopicPartition::new("events", 0),
        );
        // The leader (1) holds commits of 5, 7 and 5 again; follower 2 only the first two.
        let leader = log_of(&[commit(0, 1, 5), commit(1, 1, 7), commit(2, 1, 5)]);
        let follower = log_of(&[commit(0, 1, 5), commit(1, 1, 7)]);
        c.copies.lock().unwrap().note(1, &offsets, &leader);
        c.copies.lock().unwrap().note(2, &offsets, &follower);
        let held = |logs: &[&PartitionLog], committed| {
            problem(c.commit_held(logs.iter().copied(), &offsets, "g", &tp, committed))
        };
        // 7 is held by both; 5 twice, once by both: either copy may be the one answered.
        assert_eq!(held(&[&leader, &follower], 7), "");
        assert_eq!(held(&[&leader, &follower], 5), "");
        // A commit of 9 only the leader ever held.
        let mut longer = leader.clone();
        longer.append_entries(&[commit(3, 1, 9)]).unwrap();
        c.copies.lock().unwrap().note(1, &offsets, &longer);
        assert_eq!(held(&[&longer, &follower], 9), "commit-under-min-insync");
        // Another group's, partition's or offset's records do not count, and a commit no
        // replica holds is not judged.
        assert_eq!(held(&[&longer], 8), "");
        let other = problem(c.commit_held([&longer].into_iter(), &offsets, "h", &tp, 9));
        assert_eq!(other, "");
        // Once the follower has fetched it, the answer is right.
        c.copies.lock().unwrap().note(2, &offsets, &longer);
        assert_eq!(held(&[&longer, &follower], 9), "");
    }

    #[test]
    fn an_acknowledgment_of_a_record_fewer_than_min_insync_brokers_held_is_refused() {
        let (c, tp) = checks(false);
        assert_eq!(problem(c.acked_answer(&tp, 14)), "");
        // Offset 14 is now committed by a leader, but only broker 3 ever held 15 and 16.
        lock(&c.leader_high_watermarks)
            .get_mut(&tp)
            .unwrap()
            .insert(4, 17);
        assert_eq!(problem(c.acked_answer(&tp, 16)), "acked-under-min-insync");
        // A second copy (say, a follower that caught up) makes the answer right.
        lock(&c.copies).note(
            1,
            &tp,
            &log_of(&(0..17).map(|o| record(o, 1)).collect::<Vec<_>>()),
        );
        assert_eq!(problem(c.acked_answer(&tp, 16)), "");
        // A record retention deleted is not counted: a retry of its batch is answered from the
        // producer's state after the ISR grew back without copying it.
        lock(&c.copies).note(
            3,
            &tp,
            &log_of(&(0..18).map(|o| record(o, 1)).collect::<Vec<_>>()),
        );
        lock(&c.leader_high_watermarks)
            .get_mut(&tp)
            .unwrap()
            .insert(4, 18);
        assert_eq!(problem(c.acked_answer(&tp, 17)), "acked-under-min-insync");
        lock(&c.log_starts).insert(tp.clone(), 18);
        assert_eq!(problem(c.acked_answer(&tp, 17)), "");
        // With min.insync.replicas=1 the leader's own copy is enough.
        let c1 = CrossChecks::new(false, 1);
        lock(&c1.leader_high_watermarks).insert(tp.clone(), BTreeMap::from([(1, 3)]));
        lock(&c1.copies).note(
            1,
            &tp,
            &log_of(&(0..3).map(|o| record(o, 1)).collect::<Vec<_>>()),
        );
        assert_eq!(problem(c1.acked_answer(&tp, 2)), "");
    }

    /// With fsync durability an acks=1 answer is held to what some broker synced; a record only
    /// written (in the page cache) is named, a record synced since is not, and without fsync
    /// nothing is judged.
    #[test]
    fn an_acks_1_answer_of_a_record_no_broker_synced_is_refused_with_fsync() {
        let tp = TopicPartition::new("events", 0);
        let log = log_of(&(0..4).map(|o| record(o, 1)).collect::<Vec<_>>());
        let c = CrossChecks::new(false, 2).with_fsync();
        assert_eq!(
            problem(c.leader_acked_answer(&tp, 0)),
            "leader-acked-unsynced"
        );
        // The leader holds 0..4 and has synced 0..2: the copies count all four, the disk two.
        lock(&c.copies).note(1, &tp, &log);
        let synced = c.synced.as_ref().expect("fsync");
        lock(synced).note_below(1, &tp, &log, 2);
        assert_eq!(problem(c.leader_acked_answer(&tp, 1)), "");
        assert_eq!(
            problem(c.leader_acked_answer(&tp, 2)),
            "leader-acked-unsynced"
        );
        assert_eq!(
            problem(c.leader_acked_answer(&tp, 3)),
            "leader-acked-unsynced"
        );
        // A follower that synced more counts: the record is on a disk.
        lock(synced).note_below(2, &tp, &log, 3);
        assert_eq!(problem(c.leader_acked_answer(&tp, 2)), "");
        assert_eq!(
            problem(c.leader_acked_answer(&tp, 3)),
            "leader-acked-unsynced"
        );
        // Replicated durability promises nothing of disks.
        let replicated = CrossChecks::new(false, 2);
        assert_eq!(problem(replicated.leader_acked_answer(&tp, 3)), "");
    }

    #[test]
    fn a_latest_answer_below_an_older_epoch_s_high_watermark_is_refused() {
        let (c, tp) = checks(false);
        // A new leader (epoch 3) answering before it reached its predecessors' commits.
        assert_eq!(
            problem(c.latest_answer(&tp, 11, Some(3))),
            "latest-below-older-epoch"
        );
        assert_eq!(
            problem(c.latest_answer(&tp, 5, Some(2))),
            "latest-below-older-epoch"
        );
        assert_eq!(problem(c.latest_answer(&tp, 12, Some(3))), "");
        // A deposed leader of epoch 1 answering its old high watermark is held to nothing older.
        assert_eq!(problem(c.latest_answer(&tp, 5, Some(1))), "");
        // Without the epoch, or with unclean elections possible, only the upper bound holds.
        assert_eq!(problem(c.latest_answer(&tp, 5, None)), "");
        let (c, tp) = checks(true);
        assert_eq!(problem(c.latest_answer(&tp, 11, Some(3))), "");
    }
}
