//! A partition's records with their offsets and epochs, and the three offsets that matter:
//! log start (first retained), high watermark (first uncommitted) and log end (next to assign).

use super::ProducerState;
use super::{ensure, Checked, EpochCache, RetentionPolicy};
use crate::protocol::{
    entry_block, EpochEndOffset, LeaderEpoch, LogEntry, Offset, ProducerSnapshot, ProducerStamp,
    Record,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("entries start at offset {got}, but the log ends at {expected}")]
    NotContiguous { expected: Offset, got: Offset },
    #[error(
        "entry at offset {offset} has epoch {epoch}, older than the log's latest epoch {latest}"
    )]
    EpochGoesBack {
        offset: Offset,
        epoch: LeaderEpoch,
        latest: LeaderEpoch,
    },
    #[error("cannot truncate to {offset}: below the log start offset {log_start}")]
    BelowLogStart { offset: Offset, log_start: Offset },
    #[error("high watermark {hw} outside the log [{log_start}, {log_end}]")]
    HighWatermarkOutsideLog {
        hw: Offset,
        log_start: Offset,
        log_end: Offset,
    },
}

/// Invariants: entries have consecutive offsets starting at `log_start`; their epochs never
/// decrease and each epoch change is in the epoch cache; `log_start <= high_watermark <= log_end`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionLog {
    log_start: Offset,
    high_watermark: Offset,
    /// Shared between copies of the log until one of them changes it: a copy that only moves
    /// its high watermark (or is never changed, as in the model checker's successor states)
    /// does not copy the records. Serialized as the plain list.
    #[serde(serialize_with = "entries_ser", deserialize_with = "entries_de")]
    entries: Arc<Vec<LogEntry>>,
    epochs: EpochCache,
    /// Each idempotent producer's epoch and last batches in this log. Kept when retention or
    /// compaction moves the log start past them, so a retry is still recognised after its
    /// original was deleted; follows truncation. (Derived from the entries: rebuilt by replay.)
    #[serde(default)]
    producers: BTreeMap<u64, ProducerState>,
}

fn entries_ser<S: serde::Serializer>(
    entries: &Arc<Vec<LogEntry>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(entries.as_slice(), s)
}

fn entries_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<Vec<LogEntry>>, D::Error> {
    <Vec<LogEntry> as serde::Deserialize>::deserialize(d).map(Arc::new)
}

impl PartitionLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start
    }

    pub fn log_end_offset(&self) -> Offset {
        self.log_start + self.entries.len() as Offset
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    pub fn epoch_cache(&self) -> &EpochCache {
        &self.epochs
    }

    /// Where this log's durable part differs from `disk`'s, the same log as replayed from a disk
    /// image: the log start, the entries, the epoch cache and the producer states, everything
    /// but the high watermark (which is not persisted). `None` if nowhere. A replica's journal
    /// must rebuild exactly the log it runs with, or a crash changes what it holds.
    pub fn journaled_difference(&self, disk: &PartitionLog) -> Option<String> {
        if self.log_start != disk.log_start {
            return Some(format!(
                "log start {} in memory, {} on disk",
                self.log_start, disk.log_start
            ));
        }
        if self.entries != disk.entries {
            let (mine, theirs) = (self.entries(), disk.entries());
            let same = mine.iter().zip(theirs).take_while(|(a, b)| a == b).count();
            let at = self.log_start + same as Offset;
            return Some(format!(
                "entries differ from offset {at} (log end {} in memory, {} on disk; \
                 at {at}: {:?} in memory, {:?} on disk)",
                self.log_end_offset(),
                disk.log_end_offset(),
                mine.get(same).map(|e| (e.epoch, &e.producer)),
                theirs.get(same).map(|e| (e.epoch, &e.producer)),
            ));
        }
        if self.epochs != disk.epochs {
            return Some(format!(
                "epoch cache {:?} in memory, {:?} on disk",
                self.epochs, disk.epochs
            ));
        }
        self.producer_difference(disk).map(|(id, mine, theirs)| {
            format!("producer {id}: {mine:?} in memory, {theirs:?} on disk")
        })
    }

    /// The first producer whose state here and in `other`, a replica of the same partition
    /// holding the same log end, could not both be right, with both states. Each must hold
    /// every producer with a batch in its own log; where both hold one, the epochs are equal and
    /// one's batches are the newest of the other's. (Not always all of them: a replica that
    /// truncated an uncommitted tail rebuilds its window without the batches the tail had
    /// pushed out, which no retry can be for any more: the producer sent that tail after them.)
    pub fn producer_disagreement<'a>(
        &'a self,
        other: &'a PartitionLog,
    ) -> Option<(u64, Option<&'a ProducerState>, Option<&'a ProducerState>)> {
        let in_log = |log: &PartitionLog, st: &ProducerState| {
            st.batches
                .iter()
                .any(|b| b.last_offset >= log.log_start && b.first_offset < log.log_end_offset())
        };
        let newest_of = |short: &ProducerState, long: &ProducerState| {
            short.batches.len() <= long.batches.len()
                && long
                    .batches
                    .iter()
                    .rev()
                    .zip(short.batches.iter().rev())
                    .all(|(a, b)| a == b)
        };
        let differ =
            |mine: Option<&ProducerState>, theirs: Option<&ProducerState>| match (mine, theirs) {
                (Some(a), Some(b)) => a.epoch != b.epoch || !(newest_of(a, b) || newest_of(b, a)),
                (Some(a), None) => in_log(other, a),
                (None, Some(b)) => in_log(self, b),
                (None, None) => false,
            };
        // The producers this log holds are named first, in id order, then those only `other`
        // holds. One walk over both maps in id order (this runs after a follower's every step in
        // the simulator): no lookups.
        let (mut mine, mut theirs) = (
            self.producers.iter().peekable(),
            other.producers.iter().peekable(),
        );
        let mut only_theirs = None;
        loop {
            let (id, a, b) = match (mine.peek(), theirs.peek()) {
                (None, None) => return only_theirs,
                (Some(&(&i, a)), Some(&(&j, b))) if i == j => {
                    mine.next();
                    theirs.next();
                    (i, Some(a), Some(b))
                }
                (Some(&(&i, a)), Some(&(&j, _))) if i < j => {
                    mine.next();
                    (i, Some(a), None)
                }
                (Some(&(&i, a)), None) => {
                    mine.next();
                    (i, Some(a), None)
                }
                (_, Some(&(&j, b))) => {
                    theirs.next();
                    (j, None, Some(b))
                }
            };
            if differ(a, b) {
                if a.is_some() {
                    return Some((id, a, b));
                }
                only_theirs.get_or_insert((id, a, b));
            }
        }
    }

    /// The first producer whose state here differs from `other`'s, with both states.
    fn producer_difference<'a>(
        &'a self,
        other: &'a PartitionLog,
    ) -> Option<(u64, Option<&'a ProducerState>, Option<&'a ProducerState>)> {
        let ids = self.producers.keys().chain(other.producers.keys());
        let differs = ids
            .copied()
            .find(|id| self.producers.get(id) != other.producers.get(id))?;
        Some((
            differs,
            self.producers.get(&differs),
            other.producers.get(&differs),
        ))
    }

    pub fn entry(&self, offset: Offset) -> Option<&LogEntry> {
        let i = offset.checked_sub(self.log_start)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// Epoch of the last record, which a follower sends as its `last_fetched_epoch`.
    pub fn last_entry_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The latest epoch this log knows of (a new leader's epoch is known before its first record).
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest().map(|e| e.epoch)
    }

    /// A new leader records where its epoch starts at once, not at its first append (KAFKA-7415).
    pub fn assign_epoch(&mut self, epoch: LeaderEpoch, start_offset: Offset) {
        self.epochs.assign(epoch, start_offset);
    }

    /// The leader appends records in its epoch and returns the entries it created.
    pub fn append_as_leader(
        &mut self,
        epoch: LeaderEpoch,
        records: &[Record],
    ) -> Result<Vec<LogEntry>, LogError> {
        self.append_stamped(epoch, records.to_vec(), None)
    }

    /// Like `append_as_leader`, for an idempotent producer's batch: the i-th record gets the
    /// stamp's sequence + i, and every record the batch's first sequence.
    pub fn append_stamped(
        &mut self,
        epoch: LeaderEpoch,
        records: Vec<Record>,
        stamp: Option<ProducerStamp>,
    ) -> Result<Vec<LogEntry>, LogError> {
        let base = self.log_end_offset();
        // The records move into the entries: one copy of each is left to make, the log's own.
        let entries: Vec<LogEntry> = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| LogEntry {
                offset: base + i as Offset,
                epoch,
                record,
                producer: stamp.map(|s| ProducerStamp {
                    producer: s.producer,
                    epoch: s.epoch,
                    sequence: s.sequence + i as u64,
                    batch_first: s.sequence,
                }),
            })
            .collect();
        self.append_entries(&entries)?;
        Ok(entries)
    }

    /// What this log knows of `producer`: its epoch and last batches, even if retention has
    /// deleted them since. (Scanning the retained entries instead forgot a producer whose records
    /// retention had deleted, and its retry was appended twice: found by the simulator once runs
    /// drew retention.)
    pub fn producer_state(&self, producer: u64) -> Option<&ProducerState> {
        self.producers.get(&producer)
    }

    /// What this log knows of its producers below its log start: the state a replica cannot
    /// rebuild by fetching, because the entries that carried it are deleted. A leader hands it
    /// to a follower that restarts at the log start.
    pub fn producers_below_log_start(&self) -> Vec<ProducerSnapshot> {
        self.producers
            .iter()
            .filter_map(|(p, st)| st.below(*p, self.log_start))
            .collect()
    }

    /// Takes a leader's producer state below the log start, into a log just restarted there
    /// (empty: every entry it later appends continues these batches or starts new ones, as on
    /// the leader). Ignored on a log holding entries, whose producers its entries built.
    pub fn install_producers(&mut self, snapshot: &[ProducerSnapshot]) -> bool {
        if !self.entries.is_empty() {
            return false;
        }
        // The leader's word replaces whatever this replica held: it may have diverged.
        self.producers.clear();
        for s in snapshot {
            self.producers
                .insert(s.producer, ProducerState::from_snapshot(s));
        }
        true
    }

    /// After truncating at `offset`: producers with a batch that was cut are rebuilt from what
    /// they held below the log start (batches no entry can rebuild: retention deleted them, or
    /// a leader handed them over) and the entries that remain (rare: a follower's divergence),
    /// or forgotten. (Rebuilding from the entries alone forgot a handed-over batch once a
    /// divergence cut a later one, and a retry of it was appended again.)
    fn producers_truncated_at(&mut self, offset: Offset) {
        let cut: Vec<(u64, Option<ProducerSnapshot>)> = self
            .producers
            .iter()
            .filter(|(_, st)| st.batches.back().is_some_and(|b| b.last_offset >= offset))
            .map(|(p, st)| (*p, st.below(*p, self.log_start)))
            .collect();
        for (p, below) in cut {
            let mut rebuilt = below.as_ref().map(ProducerState::from_snapshot);
            for e in self.entries.iter() {
                if let Some(s) = e.producer.filter(|s| s.producer == p) {
                    rebuilt
                        .get_or_insert_with(Default::default)
                        .record(s, e.offset);
                }
            }
            match rebuilt {
                Some(st) => self.producers.insert(p, st),
                None => self.producers.remove(&p),
            };
        }
    }

    /// Appends entries that already carry offsets and epochs (a follower copying its leader, or
    /// recovery replaying a disk image). They must continue the log exactly.
    pub fn append_entries(&mut self, entries: &[LogEntry]) -> Result<(), LogError> {
        let mut latest = self.latest_epoch();
        for (expected, e) in (self.log_end_offset()..).zip(entries) {
            if e.offset != expected {
                return Err(LogError::NotContiguous {
                    expected,
                    got: e.offset,
                });
            }
            if let Some(l) = latest.filter(|&l| e.epoch < l) {
                return Err(LogError::EpochGoesBack {
                    offset: e.offset,
                    epoch: e.epoch,
                    latest: l,
                });
            }
            latest = Some(e.epoch);
        }
        for e in entries {
            if self.latest_epoch() != Some(e.epoch) {
                self.epochs.assign(e.epoch, e.offset);
            }
            if let Some(s) = e.producer {
                self.producers
                    .entry(s.producer)
                    .or_default()
                    .record(s, e.offset);
            }
            Arc::make_mut(&mut self.entries).push(e.clone());
        }
        Ok(())
    }

    /// Removes every entry at or above `offset`, with the epochs that start there. The high
    /// watermark follows if it was above.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<(), LogError> {
        if offset < self.log_start {
            return Err(LogError::BelowLogStart {
                offset,
                log_start: self.log_start,
            });
        }
        if offset < self.log_end_offset() {
            let keep = (offset - self.log_start) as usize;
            Arc::make_mut(&mut self.entries).truncate(keep);
            self.producers_truncated_at(offset);
        }
        self.epochs.truncate_from_end(offset);
        self.high_watermark = self.high_watermark.min(self.log_end_offset());
        Ok(())
    }

    /// Empties the log and restarts it at `offset`: a follower so far behind that the leader no
    /// longer retains where it stopped.
    pub fn reset_to(&mut self, offset: Offset) {
        self.entries = Arc::default();
        self.epochs = EpochCache::default();
        // What this replica held may have diverged from the leader it restarts from.
        self.producers.clear();
        self.log_start = offset;
        self.high_watermark = offset;
    }

    /// Sets the high watermark, which must lie in [log start, log end]: callers compute it from
    /// the log, so one outside is a broken invariant, not something to clamp silently. Only the
    /// leader's rules decide whether it may go back.
    pub fn set_high_watermark(&mut self, hw: Offset) -> Result<(), LogError> {
        if hw < self.log_start || hw > self.log_end_offset() {
            return Err(LogError::HighWatermarkOutsideLog {
                hw,
                log_start: self.log_start,
                log_end: self.log_end_offset(),
            });
        }
        self.high_watermark = hw;
        Ok(())
    }

    /// log start <= high watermark <= log end; entries continue from the log start without a
    /// gap (checked at both ends: appends keep the middle dense); the epoch cache is ordered,
    /// within the log, gives the first entry's offset that entry's epoch, and knows the epoch
    /// of the last entry. Cheap: run after every event.
    pub fn check_invariants(&self) -> Checked {
        let (start, hw, end) = (self.log_start, self.high_watermark, self.log_end_offset());
        ensure(start <= hw && hw <= end, "hw-within-log", || {
            format!("log start {start}, high watermark {hw}, log end {end}")
        })?;
        let first = self.entries.first().map(|e| e.offset);
        let last = self.entries.last().map(|e| e.offset);
        ensure(
            first.is_none_or(|f| f == start) && last.is_none_or(|l| l + 1 == end),
            "log-dense",
            || format!("entries {first:?}..={last:?} in a log [{start}, {end})"),
        )?;
        self.epochs.check_invariants(end)?;
        // The first entry's epoch is the one the cache gives its offset: divergence answers
        // and truncations read the cache, and one that starts above the log start (or names
        // another epoch there) would answer for records it does not know.
        if let Some(e) = self.entries.first() {
            let cached = self.epochs.epoch_at(e.offset);
            ensure(
                cached == Some(e.epoch),
                "epoch-cache-knows-first-entry",
                || {
                    format!(
                        "first entry at {} in epoch {}, the cache gives {:?} (first cached {:?})",
                        e.offset,
                        e.epoch,
                        cached,
                        self.epochs.entries().first()
                    )
                },
            )?;
        }
        let last_epoch = self.last_entry_epoch();
        ensure(
            last_epoch.is_none_or(|e| self.latest_epoch().is_some_and(|l| l >= e)),
            "epoch-cache-knows-last-entry",
            || {
                format!(
                    "last entry in epoch {last_epoch:?}, cache's latest {:?}",
                    self.latest_epoch()
                )
            },
        )?;
        self.check_producer_batches()
    }

    /// Every batch the producer state remembers is one this log held: it spans offsets forward,
    /// over no fewer offsets than sequences (both go up together within a batch; a retry
    /// appended again under a bug switch adds offsets only), and ends below the log end. A
    /// state that kept a batch a truncation cut, or that was cut wrongly where a restart or a
    /// handover began, would answer a retry with offsets that hold other records, or none —
    /// usually long after the step that made it, if at all.
    fn check_producer_batches(&self) -> Checked {
        let end = self.log_end_offset();
        for (producer, st) in &self.producers {
            for b in &st.batches {
                let fits = b.first_offset <= b.last_offset
                    && b.first_seq <= b.last_seq
                    && b.last_seq - b.first_seq <= b.last_offset - b.first_offset
                    && b.last_offset < end;
                ensure(fits, "producer-batches-in-log", || {
                    format!(
                        "producer {producer} remembers sequences {}..={} at offsets {}..={} in a \
                         log ending at {end}",
                        b.first_seq, b.last_seq, b.first_offset, b.last_offset
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The entries below the high watermark.
    fn committed_entries(&self) -> &[LogEntry] {
        let n = self.high_watermark.saturating_sub(self.log_start) as usize;
        &self.entries[..n.min(self.entries.len())]
    }

    /// Entries in `[from, until)` (clamped to the log), at most `max` of them.
    pub fn read(&self, from: Offset, until: Offset, max: usize) -> Vec<LogEntry> {
        self.read_within(from, until, max, u64::MAX)
    }

    /// Like `read`, and stops before the entry that would take the records' size
    /// (`Record::size_bytes`) past `max_bytes` — but always returns the first entry, so a reader
    /// behind one large record still advances (Kafka's rule for `fetch.max.bytes`). It also stops
    /// before the entries would take more than `entry_block::MAX_APPEND_BYTES` as a block: the
    /// records' size leaves out lengths and headers' framing, so entries of many empty headers
    /// could otherwise make an answer past the frame limit, which its reader refuses (and a
    /// follower's journal write of it past what recovery reads).
    pub fn read_within(
        &self,
        from: Offset,
        until: Offset,
        max: usize,
        max_bytes: u64,
    ) -> Vec<LogEntry> {
        let from = from.max(self.log_start);
        let until = until.min(self.log_end_offset());
        if from >= until {
            return Vec::new();
        }
        let lo = (from - self.log_start) as usize;
        let hi = (until - self.log_start) as usize;
        let window = &self.entries[lo..hi.min(lo + max)];
        let (mut bytes, mut block) = (0u64, 0u64);
        let fits = window
            .iter()
            .position(|e| {
                bytes = bytes.saturating_add(e.record.size_bytes());
                block = block.saturating_add(entry_block::entry_bound(&e.record));
                bytes > max_bytes || block > entry_block::MAX_APPEND_BYTES
            })
            .unwrap_or(window.len())
            .max(1);
        window[..fits].to_vec()
    }

    /// The first entry below `until` whose record's timestamp is at least `timestamp` (Kafka's
    /// ListOffsets by time; timestamps are the producers', not necessarily in offset order, so
    /// the scan looks at every entry rather than bisecting).
    pub fn first_at_or_after(&self, timestamp: i64, until: Offset) -> Option<&LogEntry> {
        self.entries
            .iter()
            .take_while(|e| e.offset < until)
            .find(|e| e.record.timestamp >= timestamp)
    }

    /// The first entry below `until` holding the largest timestamp of those below it (ties go
    /// to the lowest offset, as Kafka's max-timestamp lookup answers).
    pub fn first_with_max_timestamp(&self, until: Offset) -> Option<&LogEntry> {
        let mut best: Option<&LogEntry> = None;
        for e in self.entries.iter().take_while(|e| e.offset < until) {
            if best.is_none_or(|b| e.record.timestamp > b.record.timestamp) {
                best = Some(e);
            }
        }
        best
    }

    /// Where `epoch` ends in this log (the leader's answer to a follower's divergence check).
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> EpochEndOffset {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// Moves the log start forward to `offset`, dropping the records below; past the log end it
    /// empties the log and restarts it there. Callers decide what may be deleted (retention only
    /// targets committed records). Returns whether it moved.
    pub fn advance_log_start(&mut self, offset: Offset) -> bool {
        if offset <= self.log_start {
            return false;
        }
        if offset > self.log_end_offset() {
            self.reset_to(offset);
            return true;
        }
        let drop = (offset - self.log_start) as usize;
        Arc::make_mut(&mut self.entries).drain(..drop);
        self.log_start = offset;
        self.high_watermark = self.high_watermark.max(offset);
        self.epochs.truncate_from_start(offset);
        true
    }

    /// The log start offset that `policy` asks for at time `now_ms`: records older than the age
    /// limit, or beyond the size limit counting from the newest, go; only committed ones.
    pub fn retention_target(&self, policy: &RetentionPolicy, now_ms: i64) -> Offset {
        // Borrowed, not copied: the broker asks every retention check, of every replica.
        let committed = self.committed_entries();
        let mut start = self.log_start;
        if let Some(max_age) = policy.max_age_ms {
            for e in committed {
                if now_ms.saturating_sub(e.record.timestamp) > max_age {
                    start = e.offset + 1;
                } else {
                    break;
                }
            }
        }
        if let Some(max_bytes) = policy.max_bytes {
            let mut total: u64 = self.entries.iter().map(|e| e.record.size_bytes()).sum();
            for e in committed {
                if total <= max_bytes {
                    break;
                }
                total -= e.record.size_bytes();
                start = start.max(e.offset + 1);
            }
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{BatchMeta, ProducerStamp};

    fn rec(v: &str) -> Record {
        Record::keyed("k", v)
    }

    #[test]
    fn leader_appends_assign_offsets_and_epochs() {
        let mut log = PartitionLog::new();
        log.assign_epoch(0, 0);
        let a = log.append_as_leader(0, &[rec("a"), rec("b")]).unwrap();
        assert_eq!((a[0].offset, a[1].offset), (0, 1));
        log.assign_epoch(2, 2);
        log.append_as_leader(2, &[rec("c")]).unwrap();
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.end_offset_for_epoch(0).end_offset, 2);
        assert_eq!(log.end_offset_for_epoch(1).end_offset, 2);
        assert_eq!(log.end_offset_for_epoch(2).end_offset, 3);
    }

    #[test]
    fn follower_append_must_be_contiguous_and_epochs_monotonic() {
        let mut log = PartitionLog::new();
        let e = |offset, epoch| LogEntry {
            offset,
            epoch,
            record: rec("x"),
            producer: None,
        };
        assert_eq!(
            log.append_entries(&[e(1, 0)]),
            Err(LogError::NotContiguous {
                expected: 0,
                got: 1
            })
        );
        log.append_entries(&[e(0, 3), e(1, 3)]).unwrap();
        assert!(matches!(
            log.append_entries(&[e(2, 2)]),
            Err(LogError::EpochGoesBack { .. })
        ));
        assert_eq!(
            log.log_end_offset(),
            2,
            "a rejected batch leaves the log untouched"
        );
        assert_eq!(log.latest_epoch(), Some(3));
    }

    #[test]
    fn truncation_drops_records_epochs_and_clamps_hw() {
        let mut log = PartitionLog::new();
        log.append_as_leader(1, &[rec("a")]).unwrap();
        log.append_as_leader(2, &[rec("b"), rec("c")]).unwrap();
        log.set_high_watermark(3).unwrap();
        log.truncate_to(1).unwrap();
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.high_watermark(), 1);
        assert_eq!(log.latest_epoch(), Some(1));
        assert!(log.entry(1).is_none());
        assert!(
            log.truncate_to(5).is_ok(),
            "truncating beyond the end is a no-op"
        );
        assert_eq!(log.log_end_offset(), 1);
    }

    #[test]
    fn advancing_the_log_start_drops_a_prefix() {
        let mut log = PartitionLog::new();
        log.append_as_leader(0, &[rec("a"), rec("b"), rec("c")])
            .unwrap();
        log.set_high_watermark(1).unwrap();
        assert!(log.advance_log_start(2));
        assert_eq!((log.log_start_offset(), log.high_watermark()), (2, 2));
        assert_eq!(log.entries().len(), 1);
        assert_eq!(
            log.truncate_to(1),
            Err(LogError::BelowLogStart {
                offset: 1,
                log_start: 2
            })
        );
        assert_eq!(log.read(0, 10, 10).len(), 1);
        assert!(
            log.advance_log_start(7),
            "past the end: empty log restarting at 7"
        );
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
        assert!(!log.advance_log_start(3));
    }

    #[test]
    fn a_read_stops_at_its_byte_budget_but_returns_at_least_one_entry() {
        let mut log = PartitionLog::new();
        let big = |v: &str| Record::keyed("k", v.repeat(100));
        log.append_as_leader(0, &[big("a"), big("b"), big("c")])
            .unwrap();
        let one = big("a").size_bytes();
        assert_eq!(log.read_within(0, 3, 10, 2 * one).len(), 2);
        assert_eq!(log.read_within(0, 3, 10, 2 * one - 1).len(), 1);
        assert_eq!(log.read_within(0, 3, 10, 1).len(), 1, "at least one");
        assert_eq!(log.read_within(1, 3, 10, u64::MAX).len(), 2);
        assert_eq!(
            log.read_within(0, 3, 2, u64::MAX).len(),
            2,
            "the count still caps"
        );
        assert!(log.read_within(3, 3, 10, 1).is_empty());
    }

    /// Records of many empty headers are small by `Record::size_bytes` but not as a block: a read
    /// stops before its entries take more than `MAX_APPEND_BYTES` as the answer carries them,
    /// whatever the caller's byte budget, so a fetch answer stays under the frame limit.
    #[test]
    fn a_read_stops_before_its_block_passes_what_one_append_may_take() {
        use crate::protocol::{entry_block, Header};
        let mut record = Record::keyed("", "");
        record.headers = vec![
            Header {
                key: String::new(),
                value: None,
            };
            100_000
        ];
        assert!(record.size_bytes() < 100);
        let each = entry_block::entry_bound(&record);
        let per_block = (entry_block::MAX_APPEND_BYTES / each) as usize;
        assert!(
            (2..50).contains(&per_block),
            "{per_block} entries per block"
        );
        let mut log = PartitionLog::new();
        log.append_as_leader(0, &vec![record; per_block + 5])
            .unwrap();
        let read = log.read_within(0, 100, 100, u64::MAX);
        assert_eq!(read.len(), per_block);
        let block: u64 = read
            .iter()
            .map(|e| entry_block::entry_bound(&e.record))
            .sum();
        assert!(block <= entry_block::MAX_APPEND_BYTES);
        assert_eq!(
            log.read_within(per_block as u64, 100, 100, u64::MAX).len(),
            5
        );
    }

    /// Each of the log's invariants, broken by hand, is reported under its name.
    #[test]
    fn every_log_invariant_trips_on_a_broken_log() {
        let good = || {
            let mut log = PartitionLog::new();
            log.assign_epoch(1, 0);
            log.append_as_leader(1, &[rec("a"), rec("b"), rec("c")])
                .unwrap();
            log.assign_epoch(2, 3);
            // An idempotent producer's batch of one record, at offset 3.
            let stamp = Some(ProducerStamp::batch(7, 0, 0));
            log.append_stamped(2, vec![rec("d")], stamp).unwrap();
            log.set_high_watermark(2).unwrap();
            log
        };
        assert_eq!(good().check_invariants(), Ok(()));
        type Corrupt = Box<dyn Fn(&mut PartitionLog)>;
        // Producer 7 also remembers a batch of sequences `seqs` at offsets `offsets`.
        let remembers = |seqs: (u64, u64), offsets: (Offset, Offset)| -> Corrupt {
            let b = BatchMeta {
                first_seq: seqs.0,
                last_seq: seqs.1,
                first_offset: offsets.0,
                last_offset: offsets.1,
            };
            Box::new(move |l| l.producers.entry(7).or_default().batches.push_back(b))
        };
        let cases: Vec<(&str, Corrupt)> = vec![
            ("hw-within-log", Box::new(|l| l.high_watermark = 9)),
            ("hw-within-log", Box::new(|l| l.log_start = 3)),
            (
                "log-dense",
                Box::new(|l| Arc::make_mut(&mut l.entries)[0].offset = 1),
            ),
            (
                "log-dense",
                Box::new(|l| Arc::make_mut(&mut l.entries)[3].offset = 7),
            ),
            (
                "epoch-cache-ordered",
                Box::new(|l| {
                    l.epochs = EpochCache::default();
                    l.epochs.assign(2, 0);
                    l.epochs
                        .entries_mut_for_tests()
                        .push(crate::log::EpochStart {
                            epoch: 1,
                            start_offset: 3,
                        });
                }),
            ),
            (
                "epoch-cache-within-log",
                Box::new(|l| l.epochs.assign(5, 9)),
            ),
            (
                "epoch-cache-knows-last-entry",
                Box::new(|l| Arc::make_mut(&mut l.entries)[3].epoch = 4),
            ),
            (
                "epoch-cache-knows-first-entry",
                Box::new(|l| Arc::make_mut(&mut l.entries)[0].epoch = 2),
            ),
            (
                "epoch-cache-knows-first-entry",
                Box::new(|l| {
                    l.epochs = EpochCache::default();
                    l.epochs.assign(1, 1);
                    l.epochs.assign(2, 3);
                }),
            ),
            (
                "producer-batches-in-log",
                Box::new(|l| {
                    let stamp = ProducerStamp::batch(7, 0, 0);
                    l.producers.entry(7).or_default().record(stamp, 4);
                }),
            ),
            // Offsets going back; more sequences than offsets.
            ("producer-batches-in-log", remembers((3, 3), (2, 1))),
            ("producer-batches-in-log", remembers((0, 2), (1, 2))),
        ];
        for (rule, corrupt) in cases {
            let mut log = good();
            corrupt(&mut log);
            let got = log.check_invariants().map_err(|v| v.rule);
            assert_eq!(got, Err(rule), "{log:?}");
        }
    }

    #[test]
    fn a_producers_batches_outlive_retention_and_follow_truncation() {
        let mut log = PartitionLog::new();
        let stamp = |sequence| Some(ProducerStamp::batch(7, 0, sequence));
        let last = |log: &PartitionLog| {
            log.producer_state(7)
                .and_then(|st| st.batches.back().copied())
                .map(|b| (b.first_seq, b.last_seq, b.first_offset, b.last_offset))
        };
        log.append_stamped(0, vec![rec("a"), rec("b")], stamp(0))
            .unwrap();
        log.append_stamped(0, vec![rec("c")], stamp(2)).unwrap();
        assert_eq!(last(&log), Some((2, 2, 2, 2)));
        assert_eq!(log.producer_state(7).map(|s| s.batches.len()), Some(2));
        // Truncation cuts the newest batch: the one before it is the newest again.
        log.truncate_to(2).unwrap();
        assert_eq!(last(&log), Some((0, 1, 0, 1)));
        log.set_high_watermark(2).unwrap();
        // Retention deletes every record of the producer: a retry must still be recognised.
        assert!(log.advance_log_start(2));
        assert_eq!(last(&log), Some((0, 1, 0, 1)));
        assert!(log.producer_state(8).is_none());
    }

    /// A log replayed from the middle of a batch (what remains after the log start or a
    /// truncation cut it) knows where that batch began: a retry of it is answered with the
    /// offsets it was given. (Before, the surviving tail's first offset: seed 55296109's
    /// follower answered 602 where its leader answered 587, `producers-held-by-follower`.)
    #[test]
    fn a_batch_replayed_from_its_middle_keeps_its_first_offset() {
        let mut log = PartitionLog::new();
        log.reset_to(10);
        let entries: Vec<LogEntry> = (10..13)
            .map(|offset| LogEntry {
                offset,
                epoch: 0,
                record: rec("v"),
                producer: Some(ProducerStamp {
                    producer: 7,
                    epoch: 0,
                    sequence: offset - 5,
                    batch_first: 3,
                }),
            })
            .collect();
        log.append_entries(&entries).unwrap();
        let batches = &log.producer_state(7).unwrap().batches;
        assert_eq!(batches.len(), 1);
        let b = batches[0];
        assert_eq!(
            (b.first_seq, b.last_seq, b.first_offset, b.last_offset),
            (3, 7, 8, 12)
        );
    }

    /// Two replicas at the same log end agree on their producers when each holds the producers
    /// of its own log with the same epoch and the same newest batches; a window one truncation
    /// left shorter is no disagreement, a missing, re-stamped or different one is.
    #[test]
    fn replicas_disagree_on_a_producer_missing_fenced_differently_or_with_other_batches() {
        let mut leader = PartitionLog::new();
        for seq in 0..6 {
            leader
                .append_stamped(0, vec![rec("v")], Some(ProducerStamp::batch(7, 0, seq)))
                .unwrap();
        }
        let named = |a: &PartitionLog, b: &PartitionLog| a.producer_disagreement(b).map(|d| d.0);
        let follower = leader.clone();
        assert_eq!(named(&follower, &leader), None);
        // A window the truncation of an uncommitted tail left shorter: its newest batches agree.
        let mut shorter = leader.clone();
        shorter.producers.get_mut(&7).unwrap().batches.pop_front();
        assert_eq!(named(&shorter, &leader), None);
        assert_eq!(named(&leader, &shorter), None);
        // Not the newest batches: one in the middle lost.
        let mut gap = leader.clone();
        gap.producers.get_mut(&7).unwrap().batches.remove(2);
        assert_eq!(named(&gap, &leader), Some(7));
        // Another epoch.
        let mut fenced = leader.clone();
        fenced.producers.get_mut(&7).unwrap().epoch = 1;
        assert_eq!(named(&fenced, &leader), Some(7));
        // Missing while its batches are in the follower's own log; once retention deleted them
        // all, a replica that never saw them need not know the producer.
        let mut missing = leader.clone();
        missing.producers.clear();
        assert_eq!(named(&missing, &leader), Some(7));
        leader.set_high_watermark(6).unwrap();
        missing.set_high_watermark(6).unwrap();
        assert!(missing.advance_log_start(6));
        assert_eq!(named(&missing, &leader), None);
    }

    /// `producer_disagreement` walks both maps in id order; it names what the plain definition
    /// names (the first of this log's producers, in id order, that differs, then the first of
    /// those only `other` holds), on random pairs of producer maps.
    #[test]
    fn the_producer_walk_names_what_the_plain_definition_names() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        fn plain(a: &PartitionLog, b: &PartitionLog) -> Option<u64> {
            let in_log = |log: &PartitionLog, st: &ProducerState| {
                st.batches.iter().any(|m| {
                    m.last_offset >= log.log_start && m.first_offset < log.log_end_offset()
                })
            };
            let newest_of = |short: &ProducerState, long: &ProducerState| {
                short.batches.len() <= long.batches.len()
                    && long
                        .batches
                        .iter()
                        .rev()
                        .zip(short.batches.iter().rev())
                        .all(|(x, y)| x == y)
            };
            let ids = a.producers.keys().chain(b.producers.keys());
            ids.copied()
                .find(|id| match (a.producers.get(id), b.producers.get(id)) {
                    (Some(x), Some(y)) => {
                        x.epoch != y.epoch || !(newest_of(x, y) || newest_of(y, x))
                    }
                    (Some(x), None) => in_log(b, x),
                    (None, Some(y)) => in_log(a, y),
                    (None, None) => false,
                })
        }
        let batch = (0u64..4).prop_map(|o| BatchMeta {
            first_seq: o,
            last_seq: o,
            first_offset: o,
            last_offset: o,
        });
        let state = (0u16..2, proptest::collection::vec_deque(batch, 0..4))
            .prop_map(|(epoch, batches)| ProducerState { epoch, batches });
        let producers = proptest::collection::btree_map(0u64..6, state, 0..5);
        let log = (producers, 0u64..3).prop_map(|(producers, n)| {
            let mut log = PartitionLog::new();
            for _ in 0..n {
                log.append_stamped(0, vec![rec("v")], None).unwrap();
            }
            log.producers = producers;
            log
        });
        let mut runner = TestRunner::new_with_rng(
            Config::with_cases(4000),
            proptest::test_runner::TestRng::deterministic_rng(Default::default()),
        );
        let differing = std::cell::Cell::new(0);
        runner
            .run(&(log.clone(), log), |(a, b)| {
                let walked = a.producer_disagreement(&b).map(|d| d.0);
                differing.set(differing.get() + usize::from(walked.is_some()));
                prop_assert_eq!(walked, plain(&a, &b));
                Ok(())
            })
            .unwrap();
        let differing = differing.get();
        assert!(
            differing > 500,
            "too few disagreements generated: {differing}"
        );
    }

    /// A replica restarted at the log start takes the producer state below it and, after
    /// fetching the rest, holds what the log it copies holds — also when the log start cut a
    /// batch in two.
    #[test]
    fn producer_state_below_the_log_start_is_handed_over_whole() {
        let mut log = PartitionLog::new();
        log.append_stamped(
            0,
            vec![rec("a"), rec("b"), rec("c")],
            Some(ProducerStamp::batch(7, 0, 0)),
        )
        .unwrap();
        log.append_stamped(0, vec![rec("d")], Some(ProducerStamp::batch(8, 0, 0)))
            .unwrap();
        log.append_stamped(1, vec![rec("e")], Some(ProducerStamp::batch(9, 0, 0)))
            .unwrap();
        log.set_high_watermark(5).unwrap();
        assert!(log.advance_log_start(2));
        let snapshot = log.producers_below_log_start();
        // Producer 7's batch is cut at 2; 8's lies wholly above the log start, like 9's.
        let seven: Vec<_> = snapshot
            .iter()
            .map(|s| (s.producer, s.batches.clone()))
            .collect();
        assert_eq!(
            seven,
            vec![(
                7,
                vec![BatchMeta {
                    first_seq: 0,
                    last_seq: 1,
                    first_offset: 0,
                    last_offset: 1
                }]
            )]
        );
        let mut copy = PartitionLog::new();
        copy.reset_to(2);
        assert!(copy.install_producers(&snapshot));
        copy.append_entries(&log.read_within(2, 5, 10, u64::MAX))
            .unwrap();
        for p in [7, 8, 9] {
            assert_eq!(
                copy.producer_state(p),
                log.producer_state(p),
                "producer {p}"
            );
        }
        // A log holding entries keeps the state they built.
        assert!(!copy.install_producers(&[]));
        // A divergence that cuts producer 7's next batch keeps what was handed over below the
        // log start. (Here its entry at the log start would rebuild the cut batch whole; a
        // batch wholly below the log start is
        // `a_truncation_keeps_the_batches_below_the_log_start`'s case.)
        copy.append_entries(&[LogEntry {
            offset: 5,
            epoch: 1,
            record: rec("f"),
            producer: Some(ProducerStamp::batch(7, 0, 3)),
        }])
        .unwrap();
        copy.truncate_to(5).unwrap();
        assert_eq!(copy.producer_state(7), log.producer_state(7));
        // A batch that begins exactly at the log start is not below it: its entries rebuild it.
        assert!(log.advance_log_start(3));
        let below: Vec<u64> = log
            .producers_below_log_start()
            .iter()
            .map(|s| s.producer)
            .collect();
        assert_eq!(below, vec![7]);
    }

    /// A truncation that cuts a producer's newest batch rebuilds its state from the batches
    /// below the log start (no entry is left to rebuild them: retention deleted them, or a
    /// leader handed them over) and the entries that remain. Rebuilt from the entries alone,
    /// the batch wholly below the log start was forgotten, and a retry of it, once this replica
    /// led, was appended a second time.
    #[test]
    fn a_truncation_keeps_the_batches_below_the_log_start() {
        let mut log = PartitionLog::new();
        let stamp = |sequence| Some(ProducerStamp::batch(7, 0, sequence));
        log.append_stamped(0, vec![rec("a")], stamp(0)).unwrap();
        log.append_stamped(0, vec![rec("b"), rec("c")], stamp(1))
            .unwrap();
        log.set_high_watermark(3).unwrap();
        // Retention deletes the first batch: only the producer state remembers it.
        assert!(log.advance_log_start(1));
        let before = log.producer_state(7).cloned();
        assert_eq!(before.as_ref().map(|st| st.batches.len()), Some(2));
        // A divergence cuts the next batch: the state is what it was before it.
        log.append_stamped(1, vec![rec("d")], stamp(3)).unwrap();
        log.truncate_to(3).unwrap();
        assert_eq!(log.producer_state(7).cloned(), before);
    }

    #[test]
    fn a_high_watermark_outside_the_log_is_refused_not_clamped() {
        let mut log = PartitionLog::new();
        log.append_as_leader(0, &[rec("a")]).unwrap();
        assert!(matches!(
            log.set_high_watermark(2),
            Err(LogError::HighWatermarkOutsideLog { hw: 2, .. })
        ));
        assert_eq!(log.high_watermark(), 0);
        assert_eq!(log.set_high_watermark(1), Ok(()));
    }

    #[test]
    fn retention_by_age_and_size_keeps_uncommitted_records() {
        let mut log = PartitionLog::new();
        for (i, v) in ["a", "b", "c", "d"].iter().enumerate() {
            let mut r = rec(v);
            r.timestamp = i as i64 * 1000;
            log.append_as_leader(0, &[r]).unwrap();
        }
        log.set_high_watermark(3).unwrap();
        let age = RetentionPolicy {
            max_age_ms: Some(1500),
            max_bytes: None,
        };
        assert_eq!(log.retention_target(&age, 3000), 2);
        let everything = RetentionPolicy {
            max_age_ms: Some(0),
            max_bytes: None,
        };
        assert_eq!(
            log.retention_target(&everything, 10_000),
            3,
            "offset 3 is not committed"
        );
        let size = RetentionPolicy {
            max_age_ms: None,
            max_bytes: Some(2 * rec("a").size_bytes()),
        };
        assert_eq!(log.retention_target(&size, 0), 2);
    }

    /// Clocks disagree: a broker's clock set back sees records stamped in its future, a
    /// producer's clock set back stamps records in the past. Ages below zero delete nothing,
    /// extreme readings do not overflow, and only a committed prefix ever goes.
    #[test]
    fn retention_by_age_survives_clocks_that_went_back_or_disagree() {
        let mut log = PartitionLog::new();
        // The third record's producer clock was an hour behind the others'.
        for ts in [10_000_000, 10_001_000, 10_001_000 - 3_600_000, 10_002_000] {
            let mut r = rec("v");
            r.timestamp = ts;
            log.append_as_leader(0, &[r]).unwrap();
        }
        log.set_high_watermark(3).unwrap();
        let age = RetentionPolicy {
            max_age_ms: Some(1_000),
            max_bytes: None,
        };
        assert_eq!(log.retention_target(&age, 10_001_500), 1);
        // The broker's clock went back an hour: every record lies in its future, none goes.
        assert_eq!(log.retention_target(&age, 10_001_500 - 3_600_000), 0);
        // Far ahead (a clock jumped by years): everything committed, nothing more.
        assert_eq!(log.retention_target(&age, i64::MAX), 3);
        assert_eq!(log.retention_target(&age, i64::MIN), 0);
        let mut r = rec("w");
        r.timestamp = i64::MIN;
        log.append_as_leader(0, &[r]).unwrap();
        log.set_high_watermark(5).unwrap();
        assert_eq!(log.retention_target(&age, i64::MAX), 5);
    }
}
