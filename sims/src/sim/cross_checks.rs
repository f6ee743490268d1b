//! Cross-node checks: after each step of a node, what its state rests on is checked against
//! what only the whole cluster shows (the other nodes' states, the quorum's committed metadata,
//! every epoch's leader so far). A node checks only itself (`check_invariants`), and the history
//! checker sees only what clients saw; a wrong belief about another node shows here at the step
//! it is formed. A failure stops the node like a broken invariant (`node-invariant`).
//!
//! The simulation runs one task at a time, so locking another node while the stepping one is
//! locked (by its driver) cannot wait.

mod answers;

use super::committed::CommittedLog;
use super::copies::Copies;
use seedlog::log::{Checked, PartitionLog, Violation};
use seedlog::node::coordinator::{CommitFencing, GroupState, LoggedOffsets};
use seedlog::node::{AnyNode, Broker, QuorumNode};
use seedlog::protocol::{
    BrokerEpoch, Generation, LeaderEpoch, LogEntry, MemberId, NodeId, Offset, QuorumEpoch,
    TopicPartition, OFFSETS_TOPIC,
};
use seedlog::runtime::driver::StepCheck;
use seedlog::runtime::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Every node's state by id.
pub type Peers = Arc<Mutex<BTreeMap<NodeId, Arc<Mutex<AnyNode>>>>>;

/// What the checks keep over a run: the nodes, and the leader each quorum epoch has had. It
/// outlives every incarnation of every node.
#[derive(Clone, Default)]
pub struct CrossChecks {
    pub peers: Peers,
    leaders: Arc<Mutex<BTreeMap<QuorumEpoch, NodeId>>>,
    /// How far `offsets-monotonic` has read each broker's replica of each `__consumer_offsets`
    /// partition.
    offsets: Arc<Mutex<BTreeMap<(NodeId, u32), OffsetsScan>>>,
    /// Per partition, the highest high watermark a leader of each epoch has had so far: no
    /// leader can have answered a latest offset above all of them (`latest-above-hw`), nor
    /// below those of epochs older than its own (`latest-below-older-epoch`).
    leader_high_watermarks: Arc<Mutex<BTreeMap<TopicPartition, BTreeMap<LeaderEpoch, Offset>>>>,
    /// Per partition, the highest log start any replica has had so far: no consumer told by a
    /// broker where the log starts can have been told more (`reset-above-log-start`).
    log_starts: Arc<Mutex<BTreeMap<TopicPartition, Offset>>>,
    /// Each broker's `__consumer_offsets` partitions as `coordinator-offsets-in-log` last
    /// checked them (log start, high watermark, log end, and the committed records read so
    /// far): checked again only once one of the marks moved, reading only the newly committed.
    coordinators: Arc<Mutex<BTreeMap<(NodeId, u32), CoordinatorScan>>>,
    /// Which brokers have held each record, for `acked-under-min-insync`.
    copies: Arc<Mutex<Copies>>,
    /// Per group and generation, the members any coordinator had when it first held the group
    /// stable in that generation (`generation-reused`).
    generations: Arc<Mutex<GenerationMembers>>,
    /// With `fsync` durability, which brokers have had each record on disk (counted synced),
    /// for `leader-acked-unsynced`; `None` otherwise.
    synced: Option<Arc<Mutex<Copies>>>,
    /// The run may elect unclean leaders, which lose committed records: no answer is held to
    /// older epochs' high watermarks then.
    unclean_elections: bool,
    /// `min.insync.replicas` of the topic the producers write.
    min_insync_replicas: usize,
}

/// `follows-unelected-leader`: voter `me` follows `l` in `epoch`, but `l` was not elected in
/// it (`elected` was, or no one yet). A leader is noted at the step it is elected, before any
/// message saying so leaves, so whoever learns of it learns of a noted leader; a voter that
/// takes a leader from an answer about another epoch follows a node that will not answer its
/// fetches as leader (or, worse, takes entries from a deposed one).
fn follows_elected(
    leaders: &BTreeMap<QuorumEpoch, NodeId>,
    me: NodeId,
    l: NodeId,
    epoch: QuorumEpoch,
) -> Checked {
    let elected = leaders.get(&epoch);
    if elected == Some(&l) {
        return Ok(());
    }
    let who = elected.map_or("no one yet".to_string(), |e| format!("voter {e}"));
    Err(Violation::new(
        "follows-unelected-leader",
        format!("voter {me} follows {l} in epoch {epoch}, which {who} was elected to lead"),
    ))
}

/// Per group and generation, the members it was first held stable with.
type GenerationMembers = BTreeMap<String, BTreeMap<Generation, Vec<MemberId>>>;

/// Notes that `group` is stable in `generation` with `members`; `Err` with the members it was
/// first stable with in that generation if they were others (`generation-reused`).
fn note_generation<'a>(
    seen: &mut GenerationMembers,
    group: &str,
    generation: Generation,
    members: impl Iterator<Item = &'a MemberId> + Clone,
) -> Result<(), Vec<MemberId>> {
    match seen.get(group).and_then(|by| by.get(&generation)) {
        Some(first) if first.iter().eq(members.clone()) => Ok(()),
        Some(first) => Err(first.clone()),
        None => {
            seen.entry(group.to_string())
                .or_default()
                .insert(generation, members.cloned().collect());
            Ok(())
        }
    }
}

/// `leader-hw-regressed`: notes that a leader of `epoch` has high watermark `hw`, unless it is
/// below one a leader of that epoch had already (there is one leader per epoch).
fn note_leader_hw(
    epochs: &mut BTreeMap<LeaderEpoch, Offset>,
    epoch: LeaderEpoch,
    hw: Offset,
) -> Result<(), String> {
    let h = epochs.entry(epoch).or_insert(hw);
    if hw < *h {
        return Err(format!(
            "a leader of epoch {epoch} has high watermark {hw}, one of that epoch had {h}"
        ));
    }
    *h = hw;
    Ok(())
}

/// A log's start, high watermark and end.
type LogMarks = (Offset, Offset, Offset);

/// Which log a replica's reading belongs to: the broker's incarnation (its broker epoch) and the
/// leader epoch the replica acts in. Within one of them a replica's log only grows at its end,
/// moves its start, or truncates an end it then fetches again from the same leader.
type Lineage = (Option<BrokerEpoch>, Option<LeaderEpoch>);

/// How far a check has read one replica's log: entries `[start, next)`, the last of them `last`,
/// read in `lineage`. The log it reads on is that prefix as long as the lineage is the same, its
/// start is `start` and it still holds that last entry, the same entry (replicas that agree on an
/// entry agree on everything up to it, and within one lineage a replica takes entries from one
/// leader); otherwise the replica compacted, truncated, restarted, lost a tail or follows another
/// leader, and the log is read again from its start.
#[derive(Default)]
struct ReadMark {
    lineage: Option<Lineage>,
    start: Offset,
    next: Offset,
    last: Option<LogEntry>,
}

impl ReadMark {
    fn holds_prefix_of(&self, log: &PartitionLog, end: Offset, lineage: Lineage) -> bool {
        self.lineage == Some(lineage)
            && log.log_start_offset() == self.start
            && self.next <= end
            && (self.next == self.start || log.entry(self.next - 1) == self.last.as_ref())
    }

    /// Reads `log`'s entries below `end` past what was read: returns them, and whether the
    /// prefix read before was not this log's (they are then every entry from its start).
    fn advance<'l>(
        &mut self,
        log: &'l PartitionLog,
        end: Offset,
        lineage: Lineage,
    ) -> (bool, &'l [LogEntry]) {
        let again = !self.holds_prefix_of(log, end, lineage);
        if again {
            let start = log.log_start_offset();
            *self = ReadMark {
                lineage: Some(lineage),
                start,
                next: start,
                last: None,
            };
        }
        let index = |o: Offset| usize::try_from(o - self.start).unwrap_or(usize::MAX);
        let entries = log.entries();
        let new = entries
            .get(index(self.next)..index(end.max(self.next)).min(entries.len()))
            .unwrap_or_default();
        if let Some(last) = new.last() {
            self.next = last.offset + 1;
            self.last = Some(last.clone());
        }
        (again, new)
    }
}

/// What `offsets-monotonic` has read of one replica's log, and the fencing state it left.
#[derive(Default)]
struct OffsetsScan {
    read: ReadMark,
    fencing: CommitFencing,
}

impl OffsetsScan {
    /// Reads what `log` holds past what was read; the error names a commit the rule refuses.
    fn read(&mut self, log: &PartitionLog, lineage: Lineage) -> Result<(), String> {
        let (again, new) = self.read.advance(log, log.log_end_offset(), lineage);
        if again {
            self.fencing = CommitFencing::default();
        }
        new.iter().try_for_each(|e| self.fencing.feed(e))
    }
}

/// What `coordinator-offsets-in-log` has read of one broker's replica of a `__consumer_offsets`
/// partition: its committed records so far (`[log start, high watermark)`), and the log's
/// marks when last checked.
#[derive(Default)]
struct CoordinatorScan {
    marks: Option<LogMarks>,
    read: ReadMark,
    logged: LoggedOffsets,
}

impl CoordinatorScan {
    /// The offsets `log`'s committed records say, reading only those committed since the last
    /// call, or all of them if the log is not the one read before (then `true`).
    fn read(&mut self, log: &PartitionLog, lineage: Lineage) -> (bool, &LoggedOffsets) {
        let (again, new) = self.read.advance(log, log.high_watermark(), lineage);
        if again {
            self.logged = LoggedOffsets::default();
        }
        self.logged.read(new);
        (again, &self.logged)
    }
}

impl CrossChecks {
    pub fn new(unclean_elections: bool, min_insync_replicas: usize) -> Self {
        CrossChecks {
            unclean_elections,
            min_insync_replicas,
            ..CrossChecks::default()
        }
    }

    /// The checks of a cluster with `fsync` durability: what brokers synced is noted too.
    pub fn with_fsync(self) -> Self {
        CrossChecks {
            synced: Some(Arc::default()),
            ..self
        }
    }

    /// The check a node's driver runs after each step.
    pub fn step_check(&self, committed: &Arc<Mutex<CommittedLog>>) -> StepCheck {
        let (checks, committed) = (self.clone(), committed.clone());
        Arc::new(move |node| {
            if let Some(b) = node.as_broker() {
                return checks.broker(b, &committed);
            }
            match node.as_quorum_controller() {
                Some(c) => checks.voter(c.quorum()),
                None => Ok(()),
            }
        })
    }

    /// Node `id`'s state, unless it is `me` (locked already by its driver).
    fn peer(&self, me: NodeId, id: NodeId) -> Option<Arc<Mutex<AnyNode>>> {
        (id != me)
            .then(|| lock(&self.peers).get(&id).cloned())
            .flatten()
    }

    /// A broker against:
    /// - the metadata known committed: the leader counts every member of the ISR the controller
    ///   committed (`isr-known-to-leader`), and hands out producer ids from committed blocks
    ///   (`producer-ids-committed`);
    /// - the members of that ISR: each holds the leader's high watermark (`isr-member-holds-hw`);
    /// - its followers: each holds what the leader counts for it (`progress-held-by-follower`),
    ///   and, once at the leader's log end, the leader's producer states
    ///   (`producers-held-by-follower`);
    /// - what it has written so far of `__consumer_offsets`: every member's commit in each
    ///   replica names its group's generation recorded last (`offsets-monotonic`).
    fn broker(&self, b: &Broker, committed: &Arc<Mutex<CommittedLog>>) -> Checked {
        self.note_replicas(b)?;
        self.commits_fenced(b)?;
        self.coordinators_match_logs(b)?;
        self.generations_unique(b)?;
        let committed = lock(committed);
        b.check_against_committed(committed.metadata(), Some(committed.next_producer_id()))?;
        // The peers map is locked once for the step's checks, not once per follower and
        // partition (the node states are locked one at a time, as each is read).
        let peers = lock(&self.peers);
        let broker_of = |id: NodeId| (id != b.id()).then(|| peers.get(&id)).flatten();
        b.each_committed_isr_member(
            committed.metadata(),
            |tp, hw, m, registered| match broker_of(m) {
                Some(state) => lock(state).as_broker().map_or(Ok(()), |member| {
                    member.check_isr_member_holds(tp, hw, registered)
                }),
                None => Ok(()),
            },
        )?;
        b.each_recorded_progress(|tp, epoch, f, p, log| match broker_of(f) {
            Some(state) => lock(state).as_broker().map_or(Ok(()), |follower| {
                follower.check_recorded_follower(b.id(), tp, epoch, p, log)
            }),
            None => Ok(()),
        })
    }

    /// `generation-reused`: a group's generation names one membership. A coordinator bumps the
    /// generation at every completed rebalance, and a stable group's generation is committed
    /// in `__consumer_offsets` (its syncs are answered only then), so a coordinator that takes
    /// the group over loads it and goes on from there: no coordinator ever holds a group stable
    /// in a generation with other members than the first did. A reused generation lets a
    /// member that missed a rebalance commit as if it had not (its commit is not refused as
    /// `IllegalGeneration`), which the history shows only when that stale commit moves the
    /// group's offset back. Not judged in runs that may elect unclean leaders, which may lose
    /// the committed generation record.
    fn generations_unique(&self, b: &Broker) -> Checked {
        if self.unclean_elections {
            return Ok(());
        }
        let mut seen = lock(&self.generations);
        for (&p, c) in b.coordinators().iter().filter(|(_, c)| c.is_loaded()) {
            let stable = c
                .groups()
                .iter()
                .filter(|(_, g)| g.state == GroupState::Stable);
            for (name, g) in stable {
                note_generation(&mut seen, name, g.generation, g.members.keys()).map_err(
                    |first| {
                        let detail = format!(
                            "broker {} holds group {name} stable in generation {} with members \
                             {:?}, but that generation was first stable with {first:?}",
                            b.id(),
                            g.generation,
                            g.members.keys().collect::<Vec<_>>()
                        );
                        let tp = TopicPartition::new(OFFSETS_TOPIC, p);
                        Violation::new("generation-reused", detail).at(&tp)
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Each loaded coordinator of `b` holds what its log's committed part says
    /// (`Coordinator::check_offsets_in_log`), checked after a step that moved that partition's
    /// log start, high watermark or log end (after every step it cost half again the run's
    /// CPU), on the records committed since the last check added to what was read before (a
    /// replay of the whole partition each time cost a twentieth of the run).
    fn coordinators_match_logs(&self, b: &Broker) -> Checked {
        let mut scans = lock(&self.coordinators);
        for (&p, c) in b.coordinators().iter().filter(|(_, c)| c.is_loaded()) {
            let tp = TopicPartition::new(OFFSETS_TOPIC, p);
            let Some(replica) = b.replicas().get(&tp) else {
                continue;
            };
            let log = &replica.log;
            let marks = (
                log.log_start_offset(),
                log.high_watermark(),
                log.log_end_offset(),
            );
            let scan = scans.entry((b.id(), p)).or_default();
            if scan.marks.replace(marks) == Some(marks) {
                continue;
            }
            let lineage = (b.broker_epoch(), replica.leader_epoch);
            c.check_offsets_logged(scan.read(log, lineage).1, log)
                .map_err(|v| v.at(&tp))?;
        }
        Ok(())
    }

    /// Notes each of `b`'s replicas' log start and, for those it leads, the high watermark of
    /// the leader's epoch (the bounds `log_start_reset` and `latest_answer` check against).
    ///
    /// `leader-hw-regressed`: a leader's high watermark never goes back in its epoch. Records
    /// below it were committed and may have been read and acknowledged; a leader that takes
    /// them back (say, by counting a follower that restarted with a shorter log) hands consumers
    /// a latest offset below what they read and lets a truncation cut committed records.
    fn note_replicas(&self, b: &Broker) -> Checked {
        let mut by_epoch = lock(&self.leader_high_watermarks);
        let mut starts = lock(&self.log_starts);
        let mut copies = lock(&self.copies);
        let mut synced = self.synced.as_ref().map(|s| lock(s));
        for (tp, r) in b.replicas() {
            copies.note(b.id(), tp, &r.log);
            if let Some(synced) = synced.as_mut() {
                synced.note_below(b.id(), tp, &r.log, r.synced_offset);
            }
            let start = r.log.log_start_offset();
            match starts.get_mut(tp) {
                Some(s) => *s = (*s).max(start),
                None => {
                    starts.insert(tp.clone(), start);
                }
            }
            let Some(l) = r.leader() else { continue };
            let hw = r.log.high_watermark();
            // No key clone on this per-step path once the partition is known.
            let epochs = match by_epoch.get_mut(tp) {
                Some(e) => e,
                None => by_epoch.entry(tp.clone()).or_default(),
            };
            note_leader_hw(epochs, l.epoch, hw).map_err(|e| {
                Violation::new("leader-hw-regressed", format!("broker {}: {e}", b.id())).at(tp)
            })?;
        }
        Ok(())
    }

    /// `offsets-monotonic` on each of `b`'s replicas of `__consumer_offsets`, reading only what
    /// was appended since the last step.
    fn commits_fenced(&self, b: &Broker) -> Checked {
        let first = TopicPartition::new(OFFSETS_TOPIC, 0);
        let mut scans = lock(&self.offsets);
        for (tp, r) in b.replicas().range(first..) {
            if tp.topic != OFFSETS_TOPIC {
                break;
            }
            let scan = scans.entry((b.id(), tp.partition)).or_default();
            scan.read(&r.log, (b.broker_epoch(), r.leader_epoch))
                .map_err(|e| Violation::new("offsets-monotonic", e).at(tp))?;
        }
        Ok(())
    }

    /// A controller-quorum voter against the other voters: a leader was elected by a majority
    /// (`leader-elected-by-majority`) and is the only one its epoch has had
    /// (`single-leader-per-epoch`), what it counts of each follower is held by it
    /// (`quorum-progress-held-by-follower`), and what this voter takes as committed is held by
    /// a majority on synced disks (`quorum-hw-held-by-majority`). A voter that is down is judged
    /// by the state it last ran with, whose synced part its disk holds (its recovered log, if
    /// it went down before the sync owed for it, counts as in `durable_end`): that can only be
    /// lenient.
    fn voter(&self, q: &QuorumNode) -> Checked {
        let me = q.id();
        let with_voter = |v: NodeId, judge: &dyn Fn(&QuorumNode) -> bool| {
            self.peer(me, v).is_none_or(|state| {
                lock(&state)
                    .as_quorum_controller()
                    .is_none_or(|c| judge(c.quorum()))
            })
        };
        if q.is_leader() {
            let epoch = q.epoch();
            let first = *lock(&self.leaders).entry(epoch).or_insert(me);
            if first != me {
                return Err(Violation::new(
                    "single-leader-per-epoch",
                    format!("voter {me} leads epoch {epoch}, which voter {first} led before"),
                ));
            }
            q.check_elected_by_majority(|v| {
                with_voter(v, &|o| o.supports_leader_durably(me, epoch))
            })?;
            q.each_recorded_progress(|f, epoch, offset, leader_entry| match self.peer(me, f) {
                Some(state) => lock(&state).as_quorum_controller().map_or(Ok(()), |c| {
                    c.quorum()
                        .check_progress_held(me, epoch, offset, leader_entry)
                }),
                None => Ok(()),
            })?;
        } else if let Some(l) = q.leader() {
            follows_elected(&lock(&self.leaders), me, l, q.epoch())?;
        }
        q.check_hw_held_by_majority(|v, offset, epoch| {
            with_voter(v, &|o| o.holds_durably(offset, epoch))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedlog::protocol::{LogEntry, OffsetsKey, OffsetsValue};

    /// A `__consumer_offsets` entry: generation `g` recorded (no member), or member `m`'s commit
    /// in generation `g`.
    fn entry(offset: Offset, epoch: LeaderEpoch, member: Option<&str>, g: u32) -> LogEntry {
        let (key, value) = match member {
            None => (
                OffsetsKey::Group { group: "g".into() },
                OffsetsValue::Group { generation: g },
            ),
            Some(m) => (
                OffsetsKey::Offset {
                    group: "g".into(),
                    tp: TopicPartition::new("t", 0),
                },
                OffsetsValue::Offset {
                    offset: 1,
                    member: m.into(),
                    generation: g,
                    metadata: String::new(),
                },
            ),
        };
        offsets_entry(offset, epoch, &key, &value)
    }

    /// The entry at `offset` of a `__consumer_offsets` log, appended in leader epoch `epoch`.
    pub(super) fn offsets_entry(
        offset: Offset,
        epoch: LeaderEpoch,
        key: &OffsetsKey,
        value: &OffsetsValue,
    ) -> LogEntry {
        LogEntry {
            offset,
            epoch,
            record: key.record(value),
            producer: None,
        }
    }

    /// A `__consumer_offsets` entry: `group`'s commit of `committed` for `tp` (member m,
    /// generation 1), at `offset`, appended in leader epoch `epoch`.
    pub(super) fn group_commit(
        offset: Offset,
        epoch: LeaderEpoch,
        group: &str,
        tp: TopicPartition,
        committed: Offset,
    ) -> LogEntry {
        let key = OffsetsKey::Offset {
            group: group.into(),
            tp,
        };
        let value = OffsetsValue::Offset {
            offset: committed,
            member: "m".into(),
            generation: 1,
            metadata: String::new(),
        };
        offsets_entry(offset, epoch, &key, &value)
    }

    fn log(entries: &[LogEntry]) -> PartitionLog {
        let mut log = PartitionLog::new();
        log.append_entries(entries).expect("contiguous");
        log
    }

    /// One broker incarnation and leader epoch, for reads of one unchanging lineage.
    const SAME: Lineage = (Some(1), Some(1));

    /// A log read in another lineage (a restarted broker, another leader epoch), or whose last
    /// read entry is another record of the same epoch, is read again from its start, though its
    /// start and its epochs are as before: an entry replaced below what was read (a replica
    /// that broke log matching, say) is not taken for the one read.
    #[test]
    fn a_log_of_another_lineage_or_another_last_entry_is_read_again() {
        let g = |o: Offset, commit: Offset| {
            group_commit(o, 1, "g", TopicPartition::new("t", 0), commit)
        };
        let committed = |entries: &[LogEntry]| {
            let mut l = log(entries);
            l.set_high_watermark(l.log_end_offset()).unwrap();
            l
        };
        let first = committed(&[g(0, 5), g(1, 6)]);
        let mut scan = CoordinatorScan::default();
        assert_eq!(
            scan.read(&first, SAME)
                .1
                .get("g", &TopicPartition::new("t", 0)),
            Some(6)
        );
        // The same log, grown: only the new record is read.
        let grown = committed(&[g(0, 5), g(1, 6), g(2, 7)]);
        let (again, logged) = scan.read(&grown, SAME);
        assert!(!again);
        assert_eq!(logged.get("g", &TopicPartition::new("t", 0)), Some(7));
        // Another record at offset 2, in the same epoch: read again, and it says 9.
        let replaced = committed(&[g(0, 5), g(1, 6), g(2, 9)]);
        let (again, logged) = scan.read(&replaced, SAME);
        assert!(again);
        assert_eq!(logged.get("g", &TopicPartition::new("t", 0)), Some(9));
        // Offset 1 replaced below the last read entry, in another lineage: read again.
        let below = committed(&[g(0, 5), g(1, 8), g(2, 9), g(3, 4)]);
        let (again, logged) = scan.read(&below, (Some(2), Some(1)));
        assert!(again);
        assert_eq!(logged.get("g", &TopicPartition::new("t", 0)), Some(4));
        assert!(!scan.read(&below, (Some(2), Some(1))).0);
        assert!(scan.read(&below, (Some(2), Some(2))).0);
    }

    #[test]
    fn a_stale_commit_appended_after_what_was_read_is_caught() {
        let mut scan = OffsetsScan::default();
        let mut l = log(&[entry(0, 1, None, 1), entry(1, 1, Some("a"), 1)]);
        assert_eq!(scan.read(&l, SAME), Ok(()));
        assert_eq!(scan.read.next, 2);
        l.append_entries(&[entry(2, 1, None, 2)]).unwrap();
        assert_eq!(scan.read(&l, SAME), Ok(()));
        l.append_entries(&[entry(3, 1, Some("a"), 1)]).unwrap();
        let err = scan.read(&l, SAME).unwrap_err();
        assert!(err.contains("generation 1 at offset 3"), "{err}");
    }

    /// `coordinator-offsets-in-log` reads only what was committed since its last check: what
    /// it has read equals the committed records read whole, after every change a replica's log
    /// goes through (appends in new leader epochs, a high watermark that moves, truncation of
    /// the uncommitted tail, a log start that moves, a restart with a shorter log), on random
    /// sequences of them.
    #[test]
    fn offsets_read_as_committed_equal_the_committed_log_read_whole() {
        use crate::rng::SeedRng;
        let commit = |o: Offset, epoch: LeaderEpoch, g: u64, p: u64, committed: Offset| {
            group_commit(
                o,
                epoch,
                &format!("g{g}"),
                TopicPartition::new("t", p as u32),
                committed,
            )
        };
        let (mut resets, mut longest) = (0, 0);
        for seed in 0..200 {
            let mut rng = SeedRng::new(seed, 0);
            let mut log = PartitionLog::new();
            let mut epoch = 0;
            let mut scan = CoordinatorScan::default();
            for _ in 0..60 {
                let (start, hw, end) = (
                    log.log_start_offset(),
                    log.high_watermark(),
                    log.log_end_offset(),
                );
                match rng.range(0, 10) {
                    0..=3 => {
                        if rng.chance(20) {
                            epoch += 1;
                            log.assign_epoch(epoch, end);
                        }
                        let n = rng.range(1, 3);
                        let new: Vec<LogEntry> = (end..end + n)
                            .map(|o| {
                                let (g, p) = (rng.range(0, 1), rng.range(0, 2));
                                commit(o, epoch, g, p, rng.range(0, 50))
                            })
                            .collect();
                        log.append_entries(&new).unwrap();
                    }
                    4..=6 => log.set_high_watermark(rng.range(hw, end)).unwrap(),
                    7 => log.truncate_to(rng.range(hw, end)).unwrap(),
                    8 => {
                        log.advance_log_start(rng.range(start, hw));
                    }
                    9 => {
                        // Records replaced under what was read, in one step: an unclean leader's
                        // log taken whole, committed at once (the read prefix's last entry is
                        // then of another epoch).
                        log.truncate_to(rng.range(start, end)).unwrap();
                        epoch += 1;
                        let from = log.log_end_offset();
                        log.assign_epoch(epoch, from);
                        let new: Vec<LogEntry> =
                            (from..end + 2).map(|o| commit(o, epoch, 0, 0, o)).collect();
                        log.append_entries(&new).unwrap();
                        log.set_high_watermark(end + 2).unwrap();
                    }
                    _ => {
                        // A restart that kept less than it had, with a lower high watermark
                        // (what it took as committed is learned again from its leader).
                        let kept = rng.range(start, end);
                        log.truncate_to(kept).unwrap();
                        log.set_high_watermark(rng.range(start, kept)).unwrap();
                    }
                }
                let (again, logged) = scan.read(&log, SAME);
                resets += usize::from(again);
                let logged = logged.clone();
                let mut whole = LoggedOffsets::default();
                let committed = (log.high_watermark() - log.log_start_offset()) as usize;
                whole.read(&log.entries()[..committed]);
                assert_eq!(logged, whole, "seed {seed}");
                longest = longest.max(whole.len());
            }
        }
        assert!(
            resets > 200 && longest >= 5,
            "{resets} re-reads, {longest} keys at most"
        );
    }

    #[test]
    fn a_truncated_or_compacted_log_is_read_again_from_its_start() {
        // Read up to generation 2 (epoch 1); the replica then truncates it and takes commits of
        // generation 1 from a new leader (epoch 2): right for the log it now holds, though the
        // prefix read before would have refused the second.
        let mut scan = OffsetsScan::default();
        let mut l = log(&[entry(0, 1, None, 1), entry(1, 1, None, 2)]);
        assert_eq!(scan.read(&l, SAME), Ok(()));
        l.truncate_to(1).unwrap();
        l.append_entries(&[entry(1, 2, Some("a"), 1), entry(2, 2, Some("a"), 1)])
            .unwrap();
        assert_eq!(scan.read(&l, SAME), Ok(()));
        assert_eq!((scan.read.start, scan.read.next), (0, 3));
        // Compaction moves the start: the log is read again from it.
        l.append_entries(&[entry(3, 2, None, 3), entry(4, 2, Some("b"), 3)])
            .unwrap();
        assert!(l.advance_log_start(3));
        assert_eq!(scan.read(&l, SAME), Ok(()));
        assert_eq!((scan.read.start, scan.read.next), (3, 5));
        l.append_entries(&[entry(5, 2, Some("a"), 1)]).unwrap();
        assert!(scan.read(&l, SAME).is_err());
    }

    #[test]
    fn a_voter_following_a_node_not_elected_in_its_epoch_is_refused() {
        // Voter 100 led epoch 1 and voter 101 epoch 2; no one leads epoch 3 yet.
        let leaders = BTreeMap::from([(1, 100), (2, 101)]);
        let rule = |l, epoch| follows_elected(&leaders, 102, l, epoch).map_err(|v| v.rule);
        assert_eq!(rule(101, 2), Ok(()));
        assert_eq!(rule(100, 1), Ok(()));
        // Epoch 1's leader named as epoch 2's (an answer from an older epoch), or a leader of
        // an epoch nobody has won.
        assert_eq!(rule(100, 2), Err("follows-unelected-leader"));
        assert_eq!(rule(101, 3), Err("follows-unelected-leader"));
    }

    #[test]
    fn a_leaders_high_watermark_going_back_in_its_epoch_is_refused() {
        let mut epochs = BTreeMap::new();
        assert_eq!(note_leader_hw(&mut epochs, 1, 5), Ok(()));
        assert_eq!(note_leader_hw(&mut epochs, 1, 7), Ok(()));
        assert_eq!(note_leader_hw(&mut epochs, 1, 7), Ok(()));
        let err = note_leader_hw(&mut epochs, 1, 6).unwrap_err();
        assert!(
            err.contains("high watermark 6, one of that epoch had 7"),
            "{err}"
        );
        // Another epoch has its own leader, which may start lower (it is not checked here).
        assert_eq!(note_leader_hw(&mut epochs, 2, 3), Ok(()));
        assert_eq!(epochs, BTreeMap::from([(1, 7), (2, 3)]));
    }

    /// One generation, one membership: the same members again are fine, in any generation;
    /// other members in a generation already held stable are named with the first ones.
    #[test]
    fn a_generation_first_stable_with_some_members_is_reused_with_others() {
        let ids =
            |names: &[&str]| -> Vec<MemberId> { names.iter().map(|n| n.to_string()).collect() };
        let mut seen = GenerationMembers::new();
        let (a, ab) = (ids(&["a"]), ids(&["a", "b"]));
        assert_eq!(note_generation(&mut seen, "g", 1, a.iter()), Ok(()));
        assert_eq!(note_generation(&mut seen, "g", 1, a.iter()), Ok(()));
        assert_eq!(
            note_generation(&mut seen, "g", 1, ab.iter()),
            Err(a.clone())
        );
        assert_eq!(
            note_generation(&mut seen, "g", 1, [].iter()),
            Err(a.clone())
        );
        // The next generation, or another group, starts its own.
        assert_eq!(note_generation(&mut seen, "g", 2, ab.iter()), Ok(()));
        assert_eq!(note_generation(&mut seen, "h", 1, ab.iter()), Ok(()));
        assert_eq!(note_generation(&mut seen, "g", 2, a.iter()), Err(ab));
    }
}
