//! Cross-node checks: after each step of a node, what its state rests on is checked against
//! what only the whole cluster shows (the other nodes' states, the quorum's committed metadata,
//! every epoch's leader so far). A node checks only itself (`check_invariants`), and the history
//! checker sees only what clients saw; a wrong belief about another node shows here at the step
//! it is formed. A failure stops the node like a broken invariant (`node-invariant`).
//!
//! The simulation runs one task at a time, so locking another node while the stepping one is
//! locked (by its driver) cannot wait.

use super::committed::CommittedLog;
use seedlog::log::{Checked, PartitionLog, Violation};
use seedlog::node::coordinator::CommitFencing;
use seedlog::node::{AnyNode, Broker, QuorumNode};
use seedlog::protocol::{LeaderEpoch, NodeId, Offset, QuorumEpoch, TopicPartition, OFFSETS_TOPIC};
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
    /// checked them (log start, high watermark, log end): checked again only once one moved.
    coordinators: Arc<Mutex<BTreeMap<(NodeId, u32), LogMarks>>>,
    /// The run may elect unclean leaders, which lose committed records: no answer is held to
    /// older epochs' high watermarks then.
    unclean_elections: bool,
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

/// What `offsets-monotonic` has read of one replica's log: entries `[start, next)`, the last of
/// them of leader epoch `last_epoch`. The log it reads on is that prefix as long as its start is
/// `start` and it still holds that last entry in that epoch (replicas that agree on an entry's
/// epoch agree on everything up to it); otherwise the replica compacted, truncated, restarted
/// at its leader's log start or lost a tail, and the log is read again from its start.
#[derive(Default)]
struct OffsetsScan {
    start: Offset,
    next: Offset,
    last_epoch: Option<LeaderEpoch>,
    fencing: CommitFencing,
}

impl OffsetsScan {
    fn holds_prefix_of(&self, log: &PartitionLog) -> bool {
        log.log_start_offset() == self.start
            && self.next <= log.log_end_offset()
            && (self.next == self.start
                || log.entry(self.next - 1).map(|e| e.epoch) == self.last_epoch)
    }

    /// Reads what `log` holds past what was read; the error names a commit the rule refuses.
    fn read(&mut self, log: &PartitionLog) -> Result<(), String> {
        if !self.holds_prefix_of(log) {
            *self = OffsetsScan {
                start: log.log_start_offset(),
                next: log.log_start_offset(),
                ..OffsetsScan::default()
            };
        }
        let first = usize::try_from(self.next - self.start).unwrap_or(usize::MAX);
        for e in log.entries().get(first..).unwrap_or_default() {
            self.fencing.feed(e)?;
            self.next = e.offset + 1;
            self.last_epoch = Some(e.epoch);
        }
        Ok(())
    }
}

impl CrossChecks {
    pub fn new(unclean_elections: bool) -> Self {
        CrossChecks {
            unclean_elections,
            ..CrossChecks::default()
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
        let committed = lock(committed);
        b.check_against_committed(committed.metadata(), Some(committed.next_producer_id()))?;
        b.each_committed_isr_member(committed.metadata(), |tp, hw, m, registered| {
            match self.peer(b.id(), m) {
                Some(state) => lock(&state).as_broker().map_or(Ok(()), |member| {
                    member.check_isr_member_holds(tp, hw, registered)
                }),
                None => Ok(()),
            }
        })?;
        b.each_recorded_progress(|tp, epoch, f, p| match self.peer(b.id(), f) {
            Some(state) => lock(&state).as_broker().map_or(Ok(()), |follower| {
                follower.check_recorded_progress(b.id(), tp, epoch, p)?;
                match b.log(tp) {
                    Some(log) => follower.check_producers_held(b.id(), tp, epoch, p, log),
                    None => Ok(()),
                }
            }),
            None => Ok(()),
        })
    }

    /// Each loaded coordinator of `b` holds what its log's committed part says
    /// (`Coordinator::check_offsets_in_log`), checked after a step that moved that partition's
    /// log start, high watermark or log end (a replay of the partition each time: after every
    /// step it cost half again the run's CPU).
    fn coordinators_match_logs(&self, b: &Broker) -> Checked {
        let mut seen = lock(&self.coordinators);
        for (&p, c) in b.coordinators().iter().filter(|(_, c)| c.is_loaded()) {
            let tp = TopicPartition::new(OFFSETS_TOPIC, p);
            let Some(log) = b.log(&tp) else { continue };
            let marks = (
                log.log_start_offset(),
                log.high_watermark(),
                log.log_end_offset(),
            );
            if seen.insert((b.id(), p), marks) != Some(marks) {
                c.check_offsets_in_log(log).map_err(|v| v.at(&tp))?;
            }
        }
        Ok(())
    }

    /// Notes each of `b`'s replicas' log start and, for those it leads, the high watermark of
    /// the leader's epoch (the bounds `log_start_reset` and `latest_answer` check against).
    ///
    /// `leader-hw-regressed`: a leader's high watermark never goes back in its epoch. Records
    /// below it were committed and may have been read and acknowledged; a leader that takes
    /// them back (say, by counting a follower that restarted with a shorter log) hands consumers a latest offset
    /// below what they read and lets a truncation cut committed records.
    fn note_replicas(&self, b: &Broker) -> Checked {
        let mut by_epoch = lock(&self.leader_high_watermarks);
        let mut starts = lock(&self.log_starts);
        for (tp, r) in b.replicas() {
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
        let highest = epochs.into_iter().flat_map(|e| e.values()).max().copied();
        if offset > highest.unwrap_or(0) {
            return Err(format!(
                "latest-above-hw {tp}: a consumer was told the latest offset is {offset}, but no \
                 leader's high watermark has been above {}",
                highest.unwrap_or(0)
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

    /// `acked-above-hw`: an acks=all producer was told its record is at `offset` of `tp`. A
    /// leader answers acks=all once its high watermark passes the batch's last record, and every
    /// leader's is noted after each of its steps (the answering one's included, before the
    /// answer leaves), so some leader has had a high watermark above `offset`. An answer before
    /// that promises a record a failover can still take away (the history shows it only if one
    /// does: `lost-write`).
    pub fn acked_answer(&self, tp: &TopicPartition, offset: Offset) -> Result<(), String> {
        let by_epoch = lock(&self.leader_high_watermarks);
        let highest = by_epoch
            .get(tp)
            .into_iter()
            .flat_map(|e| e.values())
            .max()
            .copied()
            .unwrap_or(0);
        if offset >= highest {
            return Err(format!(
                "acked-above-hw {tp}: an acks=all producer was told its record is at {offset}, \
                 but no leader's high watermark has been above {highest}"
            ));
        }
        Ok(())
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
            scan.read(&r.log)
                .map_err(|e| Violation::new("offsets-monotonic", e).at(tp))?;
        }
        Ok(())
    }

    /// A controller-quorum voter against the other voters: a leader was elected by a majority
    /// (`leader-elected-by-majority`) and is the only one its epoch has had
    /// (`single-leader-per-epoch`), what it counts of each follower is held by it
    /// (`quorum-progress-held-by-follower`), and what this voter takes as committed is held by
    /// a majority (`quorum-hw-held-by-majority`). A voter that is down is judged by the state it
    /// last ran with, which holds at least what its disk does: that can only be lenient.
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
            q.check_elected_by_majority(|v| with_voter(v, &|o| o.supports_leader(me, epoch)))?;
            q.each_recorded_progress(|f, epoch, offset, leader_entry| match self.peer(me, f) {
                Some(state) => lock(&state).as_quorum_controller().map_or(Ok(()), |c| {
                    c.quorum()
                        .check_progress_held(me, epoch, offset, leader_entry)
                }),
                None => Ok(()),
            })?;
        }
        q.check_hw_held_by_majority(|v, offset, epoch| with_voter(v, &|o| o.holds(offset, epoch)))
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
        LogEntry {
            offset,
            epoch,
            record: key.record(&value),
            producer: None,
        }
    }

    fn log(entries: &[LogEntry]) -> PartitionLog {
        let mut log = PartitionLog::new();
        log.append_entries(entries).expect("contiguous");
        log
    }

    #[test]
    fn a_stale_commit_appended_after_what_was_read_is_caught() {
        let mut scan = OffsetsScan::default();
        let mut l = log(&[entry(0, 1, None, 1), entry(1, 1, Some("a"), 1)]);
        assert_eq!(scan.read(&l), Ok(()));
        assert_eq!(scan.next, 2);
        l.append_entries(&[entry(2, 1, None, 2)]).unwrap();
        assert_eq!(scan.read(&l), Ok(()));
        l.append_entries(&[entry(3, 1, Some("a"), 1)]).unwrap();
        let err = scan.read(&l).unwrap_err();
        assert!(err.contains("generation 1 at offset 3"), "{err}");
    }

    #[test]
    fn a_truncated_or_compacted_log_is_read_again_from_its_start() {
        // Read up to generation 2 (epoch 1); the replica then truncates it and takes commits of
        // generation 1 from a new leader (epoch 2): right for the log it now holds, though the
        // prefix read before would have refused the second.
        let mut scan = OffsetsScan::default();
        let mut l = log(&[entry(0, 1, None, 1), entry(1, 1, None, 2)]);
        assert_eq!(scan.read(&l), Ok(()));
        l.truncate_to(1).unwrap();
        l.append_entries(&[entry(1, 2, Some("a"), 1), entry(2, 2, Some("a"), 1)])
            .unwrap();
        assert_eq!(scan.read(&l), Ok(()));
        assert_eq!((scan.start, scan.next), (0, 3));
        // Compaction moves the start: the log is read again from it.
        l.append_entries(&[entry(3, 2, None, 3), entry(4, 2, Some("b"), 3)])
            .unwrap();
        assert!(l.advance_log_start(3));
        assert_eq!(scan.read(&l), Ok(()));
        assert_eq!((scan.start, scan.next), (3, 5));
        l.append_entries(&[entry(5, 2, Some("a"), 1)]).unwrap();
        assert!(scan.read(&l).is_err());
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

    /// Leaders of epochs 1, 2 and 3 reached high watermarks 10, 12 and 15.
    fn checks(unclean_elections: bool) -> (CrossChecks, TopicPartition) {
        let tp = TopicPartition::new("events", 0);
        let c = CrossChecks::new(unclean_elections);
        let epochs = BTreeMap::from([(1, 10), (2, 12), (3, 15)]);
        lock(&c.leader_high_watermarks).insert(tp.clone(), epochs);
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
