//! The quorum's committed history as the controllers report it, checked as they go: every
//! entry a controller applies at an offset must be the one applied there first (by any
//! controller, in any incarnation), and every snapshot a controller takes or installs must be
//! the metadata the committed entries below its end build. Either difference is a committed
//! entry lost or changed — Raft's safety broken — and stops the run like a broken invariant.

use seedlog::node::{ControllerConfig, ControllerImage, QuorumController};
use seedlog::protocol::{MetadataRecord, Offset, QuorumEntry, QuorumSnapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CommittedLog {
    config: Arc<ControllerConfig>,
    /// The entries as first applied, at offsets `0..len`.
    entries: Vec<QuorumEntry>,
    /// The metadata `entries` build, and at which offsets it was what (kept at the offsets a
    /// snapshot may be taken at: multiples of `snapshot_every`).
    folded: ControllerImage,
    states: BTreeMap<Offset, ControllerImage>,
    snapshot_every: Option<Offset>,
}

impl CommittedLog {
    pub fn new(config: Arc<ControllerConfig>, snapshot_every: Option<Offset>) -> Self {
        let folded = QuorumController::snapshot_state(&config, &[]);
        CommittedLog {
            config,
            entries: Vec::new(),
            states: BTreeMap::from([(0, folded.clone())]),
            folded,
            snapshot_every,
        }
    }

    /// The metadata every entry known committed builds.
    pub fn metadata(&self) -> &seedlog::protocol::ClusterMetadata {
        &self.folded.metadata
    }

    /// The first producer id no committed block covers.
    pub fn next_producer_id(&self) -> u64 {
        self.folded.next_producer_id
    }

    /// The entries known committed.
    pub fn entries(&self) -> &[QuorumEntry] {
        &self.entries
    }

    /// `who` applied `entry` at `offset`: the problem line if that contradicts what is known.
    pub fn entry(&mut self, who: &str, offset: Offset, entry: &QuorumEntry) -> Result<(), String> {
        let known = self.entries.len() as Offset;
        match self.entries.get(offset as usize) {
            Some(first) if first != entry => Err(format!(
                "committed-diverged: {who} applied {entry} at offset {offset}, where {first} was \
                 applied before"
            )),
            Some(_) => Ok(()),
            None if offset == known => {
                self.entries.push(entry.clone());
                seedlog::node::apply_record(&mut self.folded, &entry.record);
                let end = offset + 1;
                if self
                    .snapshot_every
                    .is_some_and(|n| n > 0 && end.is_multiple_of(n))
                {
                    self.states.insert(end, self.folded.clone());
                }
                Ok(())
            }
            // Every committed entry is applied first by the leader that commits it, in order,
            // so whoever reaches an offset first finds every one before it known.
            None => Err(format!(
                "committed-diverged: {who} applied offset {offset} with only {known} known \
                 committed"
            )),
        }
    }

    /// `who` took (or, `installed`, received from its leader) `snapshot`.
    pub fn snapshot(
        &mut self,
        who: &str,
        snapshot: &QuorumSnapshot,
        installed: bool,
    ) -> Result<(), String> {
        let how = if installed { "installed" } else { "took" };
        let end = snapshot.end_offset;
        let known = self.entries.len() as Offset;
        if end > known {
            return Err(format!(
                "snapshot-diverged: {who} {how} a snapshot to offset {end} with only {known} \
                 entries known committed"
            ));
        }
        let expected = match self.states.get(&end) {
            Some(state) => state.clone(),
            None => self.state_at(end),
        };
        let got = QuorumController::snapshot_state(&self.config, &snapshot.records);
        let last_epoch = match end {
            0 => 0,
            e => self.entries[e as usize - 1].epoch,
        };
        if got != expected || snapshot.last_epoch != last_epoch {
            return Err(format!(
                "snapshot-diverged: {who} {how} a snapshot to offset {end} (metadata v{}, last \
                 epoch {}) that is not what the committed entries below it build (v{}, last \
                 epoch {last_epoch})",
                got.metadata.version, snapshot.last_epoch, expected.metadata.version
            ));
        }
        Ok(())
    }

    /// The metadata the first `end` entries build (`end` not a snapshot point: rebuilt).
    fn state_at(&self, end: Offset) -> ControllerImage {
        let records: Vec<MetadataRecord> = self.entries[..end as usize]
            .iter()
            .map(|e| e.record.clone())
            .collect();
        QuorumController::snapshot_state(&self.config, &records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::sim::cluster::controller_config;
    use seedlog::protocol::{BrokerRegistration, MetadataDelta};

    fn register(broker: u32, version: u64) -> MetadataRecord {
        MetadataRecord::Change(MetadataDelta {
            version,
            brokers: vec![BrokerRegistration {
                broker,
                epoch: version,
                fenced: false,
                incarnation: 0,
            }],
            partitions: vec![],
            next_broker_epoch: version + 1,
            next_producer_id: 0,
        })
    }

    fn entry(epoch: u32, record: MetadataRecord) -> QuorumEntry {
        QuorumEntry { epoch, record }
    }

    /// Four committed entries, snapshot points every 2.
    fn log() -> (CommittedLog, Arc<ControllerConfig>) {
        let sc = Scenario::from_seed(0, &Default::default());
        let config = Arc::new(controller_config(&sc));
        let mut log = CommittedLog::new(config.clone(), Some(2));
        for (o, e) in [
            entry(1, register(0, 2)),
            entry(1, register(1, 3)),
            entry(2, register(2, 4)),
            entry(2, register(0, 5)),
        ]
        .iter()
        .enumerate()
        {
            log.entry("ctl0", o as Offset, e).expect("in order");
        }
        (log, config)
    }

    fn snapshot_of(
        config: &Arc<ControllerConfig>,
        log: &CommittedLog,
        end: usize,
    ) -> QuorumSnapshot {
        let records: Vec<_> = log.entries()[..end]
            .iter()
            .map(|e| e.record.clone())
            .collect();
        let state = QuorumController::snapshot_state(config, &records);
        QuorumSnapshot {
            end_offset: end as Offset,
            last_epoch: log.entries()[end - 1].epoch,
            records: QuorumController::snapshot_records(config, &state),
        }
    }

    #[test]
    fn a_different_entry_at_a_committed_offset_or_a_gap_is_reported() {
        let (mut log, _) = log();
        assert!(log.entry("ctl1", 1, &entry(1, register(1, 3))).is_ok());
        let e = log.entry("ctl1", 1, &entry(1, register(7, 3))).unwrap_err();
        assert!(e.starts_with("committed-diverged: ctl1 applied"), "{e}");
        let e = log.entry("ctl2", 6, &entry(2, register(7, 6))).unwrap_err();
        assert!(e.contains("with only 4 known committed"), "{e}");
    }

    #[test]
    fn a_snapshot_is_checked_against_the_entries_below_it() {
        let (mut log, config) = log();
        // Right, at a snapshot point and elsewhere.
        for end in [2, 3, 4] {
            let s = snapshot_of(&config, &log, end);
            assert_eq!(log.snapshot("ctl1", &s, end % 2 == 1), Ok(()), "end {end}");
        }
        // The state of offset 3 claimed for offset 4 (a snapshot past what it applied).
        let mut s = snapshot_of(&config, &log, 3);
        s.end_offset = 4;
        s.last_epoch = 2;
        let e = log.snapshot("ctl1", &s, true).unwrap_err();
        assert!(e.starts_with("snapshot-diverged: ctl1 installed"), "{e}");
        // The right state under a wrong last epoch.
        let mut s = snapshot_of(&config, &log, 4);
        s.last_epoch = 1;
        assert!(log.snapshot("ctl1", &s, false).is_err());
        // Past everything committed.
        let mut s = snapshot_of(&config, &log, 4);
        s.end_offset = 6;
        let e = log.snapshot("ctl2", &s, false).unwrap_err();
        assert!(e.contains("with only 4 entries known committed"), "{e}");
    }
}
