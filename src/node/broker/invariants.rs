//! What must hold of a broker after every entry point: each replica's log is well formed, its
//! synced prefix lies within it, and its role agrees with its log and with the metadata; each
//! coordinator's writes in flight are uncommitted records of its partition. Drivers call
//! `check_invariants` after every step and stop the node on the first violation.

use super::{Broker, LeaderState, Progress, Registration, Replica, Role};
use crate::log::{ensure, Checked, PartitionLog, Violation};
use crate::node::Durability;
use crate::protocol::{
    BrokerEpoch, BrokerId, ClusterMetadata, LeaderEpoch, Offset, PartitionState, TopicPartition,
    OFFSETS_TOPIC,
};

impl Broker {
    /// Records the first broken invariant a handler met; the node stops after this step.
    pub(super) fn broken(&mut self, v: Violation) {
        tracing::error!(broker = self.config.id, "broken invariant: {v}");
        self.violation.get_or_insert(v);
    }

    pub fn check_invariants(&self) -> Checked {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        // One pass (this runs after every step): each replica, and the coordinator of each
        // `__consumer_offsets` replica that has one, which must be its leader.
        let mut coordinated = 0;
        for (tp, r) in &self.replicas {
            self.check_replica(tp, r).map_err(|v| v.at(tp))?;
            let coordinator = (tp.topic == OFFSETS_TOPIC)
                .then(|| self.coordinators.get(&tp.partition))
                .flatten();
            if let Some(c) = coordinator {
                coordinated += 1;
                ensure(r.leader().is_some(), "coordinator-leads", || {
                    format!("coordinator of {tp} on a broker that does not lead it")
                })?;
                c.check_invariants(&r.log).map_err(|v| v.at(tp))?;
            }
        }
        ensure(
            coordinated == self.coordinators.len(),
            "coordinator-leads",
            || {
                let hosted = self.coordinators.keys().collect::<Vec<_>>();
                format!("coordinators of {OFFSETS_TOPIC} partitions {hosted:?}, some without a replica here")
            },
        )?;
        self.check_syncs_in_flight()?;
        self.check_roles_follow_metadata()
    }

    /// Every sync in flight covers no more of a replica than the replica has asked to have
    /// synced (`syncs-within-requested`): a truncation or a restart of the log lowers what it
    /// asked for and must cut the marks of the syncs in flight to match. A mark left above would,
    /// once its sync completes, count as durable records written after the cut, which that sync
    /// never covered; a power loss then takes them while their acknowledgements stand.
    pub(super) fn check_syncs_in_flight(&self) -> Checked {
        for (token, marks) in &self.pending_syncs {
            for (tp, mark) in marks {
                let Some(r) = self.replicas.get(tp) else {
                    continue;
                };
                ensure(*mark <= r.sync_requested, "syncs-within-requested", || {
                    format!(
                        "sync {token} in flight covers {tp} to {mark}, above the {} asked for",
                        r.sync_requested
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Each replica acts on the metadata this incarnation applied (`role-follows-metadata`): it
    /// knows the partition's leader epoch, and in that epoch it has the role the metadata gives
    /// it — leader in that epoch, follower of that leader, or idle without one. A broker applies
    /// metadata in the step that stores it, so a replica still in an older epoch, or in another
    /// role in this one, is a push taken wrongly: a leader that keeps its old epoch when named
    /// leader again in a newer one refuses its followers' fetches of the new epoch, and nothing
    /// else shows it until the partition stalls.
    fn check_roles_follow_metadata(&self) -> Checked {
        let Registration::Registered { min_version, .. } = self.registration else {
            return Ok(());
        };
        if self.metadata.version < min_version {
            return Ok(());
        }
        let me = self.config.id;
        for ps in self
            .metadata
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&me))
        {
            let r = self.replicas.get(&ps.tp);
            let known = r.and_then(|r| r.leader_epoch);
            let role_ok = r.is_some_and(|r| match (&r.role, ps.leader) {
                (Role::Leader(ls), Some(l)) => l == me && ls.epoch == ps.leader_epoch,
                (Role::Follower(fs), Some(l)) => fs.leader == l && fs.epoch == ps.leader_epoch,
                (Role::Idle, None) => true,
                _ => false,
            });
            let ok = match known {
                Some(e) if e > ps.leader_epoch => true,
                Some(e) if e == ps.leader_epoch => role_ok,
                _ => false,
            };
            ensure(ok, "role-follows-metadata", || {
                let role = r.map(|r| match &r.role {
                    Role::Leader(ls) => format!("leader in epoch {}", ls.epoch),
                    Role::Follower(fs) => {
                        format!("follower of {} in epoch {}", fs.leader, fs.epoch)
                    }
                    Role::Idle => "idle".to_string(),
                });
                format!(
                    "metadata version {} names leader {:?} in epoch {}; the replica knows epoch \
                     {known:?} and is {role:?}",
                    self.metadata.version, ps.leader, ps.leader_epoch
                )
            })
            .map_err(|v| v.at(&ps.tp))?;
            // A leader in this epoch takes every newer partition state of it (a push, or the
            // controller's answer to its own ISR change, which may come first): so it is never
            // behind the applied metadata, and at the same partition epoch both describe the one
            // committed ISR. A leader that took the epoch without the ISR counts members the
            // controller removed, or leaves out one it added, for its high watermark.
            let Some(Role::Leader(ls)) = r.map(|r| &r.role) else {
                continue;
            };
            if ls.epoch != ps.leader_epoch {
                continue;
            }
            let same_isr = || {
                let mut a = ls.isr.clone();
                let mut b = ps.isr.clone();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            };
            let ok = ls.partition_epoch > ps.partition_epoch
                || (ls.partition_epoch == ps.partition_epoch && same_isr());
            ensure(ok, "leader-isr-follows-metadata", || {
                format!(
                    "metadata version {} gives partition epoch {} the ISR {:?}; the leader is at \
                     partition epoch {} with the ISR {:?}",
                    self.metadata.version, ps.partition_epoch, ps.isr, ls.partition_epoch, ls.isr
                )
            })
            .map_err(|v| v.at(&ps.tp))?;
        }
        Ok(())
    }

    fn check_replica(&self, tp: &TopicPartition, r: &Replica) -> Checked {
        r.log.check_invariants()?;
        // The synced mark lies within the log: not past its end (a sync covers only what was
        // written), and not below its start, which every move of the log start raises it to
        // (what is gone needs no sync, and a mark left below would report less synced than is).
        let (start, end) = (r.log.log_start_offset(), r.log.log_end_offset());
        ensure(
            start <= r.synced_offset && r.synced_offset <= end,
            "synced-within-log",
            || format!("synced to {}, log [{start}, {end})", r.synced_offset),
        )?;
        match &r.role {
            Role::Idle => Ok(()),
            Role::Follower(fs) => ensure(
                r.leader_epoch == Some(fs.epoch) && fs.leader != self.config.id,
                "follower-epoch",
                || {
                    format!(
                        "follows {} in epoch {}, replica at {:?}",
                        fs.leader, fs.epoch, r.leader_epoch
                    )
                },
            ),
            Role::Leader(ls) => self.check_leader(tp, r, ls),
        }
    }

    fn check_leader(&self, tp: &TopicPartition, r: &Replica, ls: &LeaderState) -> Checked {
        let me = self.config.id;
        let end = r.log.log_end_offset();
        ensure(r.leader_epoch == Some(ls.epoch), "leader-epoch", || {
            format!(
                "leads in epoch {}, replica at {:?}",
                ls.epoch, r.leader_epoch
            )
        })?;
        // The new leader's epoch is in its cache from the start (KAFKA-7415).
        ensure(
            r.log.latest_epoch() == Some(ls.epoch),
            "leader-epoch-cached",
            || {
                format!(
                    "leads in epoch {}, cache's latest {:?}",
                    ls.epoch,
                    r.log.latest_epoch()
                )
            },
        )?;
        ensure(
            ls.epoch_start <= end,
            "leader-epoch-start-within-log",
            || format!("epoch starts at {}, log end {end}", ls.epoch_start),
        )?;
        ensure(ls.isr.contains(&me), "isr-has-leader", || {
            format!("leader {me} not in its ISR {:?}", ls.isr)
        })?;
        if let Some(p) = &ls.pending_isr {
            ensure(p.contains(&me), "isr-has-leader", || {
                format!("leader {me} not in its proposed ISR {p:?}")
            })?;
        }
        if let Some(assigned) = self.metadata.partition(tp).map(|p| &p.replicas) {
            // The ISR and any proposed one, without building the maximal ISR (this runs after
            // every step).
            let proposed = ls.pending_isr.iter().flatten();
            let stray = ls
                .isr
                .iter()
                .chain(proposed)
                .find(|b| !assigned.contains(b));
            ensure(stray.is_none(), "isr-within-replicas", || {
                format!("ISR member {stray:?} not among replicas {assigned:?}")
            })?;
        }
        // A follower proves what it holds by fetching from here: never more than we have.
        let ahead = ls
            .followers
            .iter()
            .find(|(_, p)| p.log_end > end || p.synced > p.log_end);
        ensure(ahead.is_none(), "follower-progress-within-log", || {
            format!("follower progress {ahead:?} past the leader's log end {end}")
        })?;
        // Every ISR member holds what the high watermark covers: a follower joins only once it
        // has reached the high watermark, and the high watermark then moves only as far as every
        // member has. (A member's progress is counted only while it comes from the registration
        // the leader knows: a restarted follower reports a shorter log under a new registration,
        // and the controller drops it from the ISR for that.)
        let hw = r.log.high_watermark();
        let short = ls.isr.iter().filter(|&&m| m != me).find_map(|m| {
            let p = ls.followers.get(m)?;
            let current = self.metadata.registration(*m)?.epoch == p.broker_epoch;
            (current && p.log_end < hw).then_some((m, p.log_end))
        });
        ensure(short.is_none(), "isr-holds-hw", || {
            format!("ISR member at {short:?} is below the high watermark {hw}")
        })?;
        let waiting = ls.waiting_produce.iter().find(|w| w.last_offset >= end);
        ensure(waiting.is_none(), "waiting-produce-within-log", || {
            format!("produce waits for {waiting:?} past the log end {end}")
        })?;
        // Nothing the leader's progress step would do is left undone after a step: every path
        // that changes what the high watermark counts (an append, a sync, a fetch, an ISR change,
        // taking leadership) moves it as far as it may go and answers the produces that commits.
        // A path that forgot leaves the watermark behind until some later event, or for good
        // when none comes (a leader alone in its ISR takes no fetches).
        let due = r.hw_due(&self.config);
        ensure(due.is_none(), "leader-hw-current", || {
            format!("high watermark {hw}, but the ISR's progress allows {due:?}")
        })?;
        let owed = ls
            .waiting_produce
            .iter()
            .find(|w| r.produce_due(&self.config, w));
        ensure(owed.is_none(), "produce-answered-when-due", || {
            format!("produce {owed:?} still waits at high watermark {hw}")
        })
    }

    /// The partitions this broker leads in the leader epoch `committed` names for it, with its
    /// replica, its leader state and the committed partition state.
    fn led_in_committed_epoch<'a>(
        &'a self,
        committed: &'a ClusterMetadata,
    ) -> impl Iterator<
        Item = (
            &'a TopicPartition,
            &'a Replica,
            &'a LeaderState,
            &'a PartitionState,
        ),
    > {
        let me = self.config.id;
        self.replicas.iter().filter_map(move |(tp, r)| {
            let ls = r.leader()?;
            let ps = committed.partition(tp)?;
            (ps.leader == Some(me) && ps.leader_epoch == ls.epoch).then_some((tp, r, ls, ps))
        })
    }

    /// What must hold between this broker and the metadata the controller quorum has
    /// committed (`committed`, the newest: a harness that sees every node — the simulator, the
    /// model checker — passes it in after every step of this broker). For each partition this
    /// broker leads in the leader epoch the controller committed, every member of the committed
    /// ISR is one its high watermark waits for (in its maximal ISR: its ISR and any change in
    /// flight). The controller grows an ISR only on this leader's proposal (which the leader
    /// counts from the moment it sends it) or with a new leader epoch, so a member the leader does
    /// not count is one it dropped while the controller took it in: the high watermark can
    /// pass that member, the controller can elect it, and acknowledged records are lost. The
    /// leader's own check (`isr-holds-hw`) cannot see this: it checks the members it knows.
    ///
    /// With `next_producer_id`, the first producer id the controller has not committed as given
    /// out: the block this broker hands producer ids from lies below it (a block answered before
    /// its allocation was committed can be given again after a controller failover, and two
    /// producers then share an id; `producer-ids-committed`).
    pub fn check_against_committed(
        &self,
        committed: &ClusterMetadata,
        next_producer_id: Option<u64>,
    ) -> Checked {
        if let Some(next) = next_producer_id {
            let end = self.producer_ids.block_end();
            ensure(end <= next, "producer-ids-committed", || {
                format!(
                    "hands out producer ids up to {end}, the controller committed blocks up to \
                     {next}"
                )
            })?;
        }
        for (tp, _, ls, ps) in self.led_in_committed_epoch(committed) {
            let counted =
                |b: &u32| ls.isr.contains(b) || ls.pending_isr.iter().flatten().any(|p| p == b);
            let missing = ps.isr.iter().find(|b| !counted(b));
            ensure(missing.is_none(), "isr-known-to-leader", || {
                format!(
                    "the controller committed ISR {:?} (partition epoch {}), the leader counts \
                     {:?} (epoch {}, proposed {:?}): broker {} is not counted",
                    ps.isr,
                    ps.partition_epoch,
                    ls.isr,
                    ls.partition_epoch,
                    ls.pending_isr,
                    missing.copied().unwrap_or_default()
                )
            })
            .map_err(|v| v.at(tp))?;
        }
        Ok(())
    }

    /// What this broker, leading, has recorded of its followers' progress, per partition it
    /// leads, handed to `check` (the partition, its leader epoch, the follower, its progress)
    /// until one fails. A harness that sees the followers checks each with
    /// `check_recorded_progress`.
    pub fn each_recorded_progress(
        &self,
        mut check: impl FnMut(
            &TopicPartition,
            LeaderEpoch,
            BrokerId,
            &Progress,
            &PartitionLog,
        ) -> Checked,
    ) -> Checked {
        for (tp, r) in &self.replicas {
            if let Some(ls) = r.leader() {
                for (&f, p) in &ls.followers {
                    check(tp, ls.epoch, f, p, &r.log)?;
                }
            }
        }
        Ok(())
    }

    /// This broker's replica of `tp`, if it follows `leader` in `epoch` in the incarnation
    /// (broker epoch) that leader recorded in `p`: the replica a leader's record of this
    /// broker's progress speaks of.
    fn recorded_by(
        &self,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
    ) -> Option<&Replica> {
        if self.broker_epoch() != Some(p.broker_epoch) {
            return None;
        }
        let r = self.replicas.get(tp)?;
        let following =
            matches!(&r.role, Role::Follower(fs) if fs.leader == leader && fs.epoch == epoch);
        following.then_some(r)
    }

    /// A leader's record of this broker's progress on `tp` (`each_recorded_progress`), checked
    /// against what this broker holds: while it follows that leader in that epoch, in the
    /// incarnation that fetched (its broker epoch), it holds at least the log end, and has
    /// synced at least the offset, the leader counts for it. Within one leader epoch a
    /// follower's log only grows once its fetch passed the divergence check (the only fetches
    /// the leader records), so a count past what the follower holds is a follower that
    /// over-reported (records it has not synced, say) or a leader that recorded wrongly — and the
    /// high watermark rests on it. (`progress-held-by-follower`)
    pub fn check_recorded_progress(
        &self,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
    ) -> Checked {
        match self.recorded_by(leader, tp, epoch, p) {
            Some(r) => self.progress_held(r, leader, tp, epoch, p),
            None => Ok(()),
        }
    }

    fn progress_held(
        &self,
        r: &Replica,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
    ) -> Checked {
        let end = r.log.log_end_offset();
        ensure(
            p.log_end <= end && p.synced <= r.synced_offset,
            "progress-held-by-follower",
            || {
                format!(
                    "leader {leader} counts broker {} at log end {} synced {} in epoch {epoch}; \
                     it holds log end {end}, synced {}",
                    self.config.id, p.log_end, p.synced, r.synced_offset
                )
            },
        )
        .map_err(|v| v.at(tp))
    }

    /// A follower that the leader `leader` recorded, in `epoch`, at its own log end (`p`), and
    /// that still follows it there in that incarnation, holds the leader's log to the same end;
    /// so its idempotent producers' states agree with the leader's (`leader_log`'s): the same
    /// epoch, the same newest batches (`PartitionLog::producer_disagreement`). A follower whose
    /// window differs would, elected, append a retry of a batch a second time or refuse a valid
    /// one. Nothing a client sees shows it until such a retry comes, long after: a truncation
    /// or a restart that rebuilds the states wrongly. (`producers-held-by-follower`)
    pub fn check_producers_held(
        &self,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
        leader_log: &PartitionLog,
    ) -> Checked {
        match self.recorded_by(leader, tp, epoch, p) {
            Some(r) => self.producers_held(r, leader, tp, epoch, p, leader_log),
            None => Ok(()),
        }
    }

    fn producers_held(
        &self,
        r: &Replica,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
        leader_log: &PartitionLog,
    ) -> Checked {
        let end = leader_log.log_end_offset();
        if p.log_end != end || r.log.log_end_offset() != end {
            return Ok(());
        }
        match r.log.producer_disagreement(leader_log) {
            None => Ok(()),
            Some((id, mine, theirs)) => Err(Violation::new(
                "producers-held-by-follower",
                format!(
                    "broker {} at log end {end}, as its leader {leader} in epoch {epoch}, holds \
                     producer {id} as {mine:?}; the leader holds {theirs:?}",
                    self.config.id
                ),
            )
            .at(tp)),
        }
    }

    /// `check_recorded_progress` then `check_producers_held`, finding the replica once (a
    /// harness that sees every node runs both after each step of a leader, for each follower).
    pub fn check_recorded_follower(
        &self,
        leader: BrokerId,
        tp: &TopicPartition,
        epoch: LeaderEpoch,
        p: &Progress,
        leader_log: &PartitionLog,
    ) -> Checked {
        let Some(r) = self.recorded_by(leader, tp, epoch, p) else {
            return Ok(());
        };
        self.progress_held(r, leader, tp, epoch, p)?;
        self.producers_held(r, leader, tp, epoch, p, leader_log)
    }

    /// For each partition this broker leads in the leader epoch the controller committed, hands
    /// `check` its high watermark and each other member of the committed ISR with the broker
    /// epoch the controller registered it under, until one fails. A harness that sees the
    /// members checks each with `check_isr_member_holds`.
    pub fn each_committed_isr_member(
        &self,
        committed: &ClusterMetadata,
        mut check: impl FnMut(&TopicPartition, Offset, BrokerId, BrokerEpoch) -> Checked,
    ) -> Checked {
        let me = self.config.id;
        for (tp, r, _, ps) in self.led_in_committed_epoch(committed) {
            let hw = r.log.high_watermark();
            for &m in ps.isr.iter().filter(|&&m| m != me) {
                if let Some(reg) = committed.registration(m) {
                    check(tp, hw, m, reg.epoch)?;
                }
            }
        }
        Ok(())
    }

    /// A member of the committed ISR (`each_committed_isr_member`), running in the incarnation the
    /// controller registered, holds everything below its leader's high watermark `hw`: an
    /// election may pick it, and what it lacks below `hw` is lost. The leader's own checks rest on
    /// what it recorded under the registration it knows; this one reads the member's log, so it
    /// also sees a member the controller took in on a fetch of an earlier incarnation, or one that
    /// lost records without the controller hearing of it. (`isr-member-holds-hw`)
    pub fn check_isr_member_holds(
        &self,
        tp: &TopicPartition,
        hw: Offset,
        registered: BrokerEpoch,
    ) -> Checked {
        if self.broker_epoch() != Some(registered) {
            return Ok(());
        }
        let (end, synced) = self
            .replicas
            .get(tp)
            .map_or((0, 0), |r| (r.log.log_end_offset(), r.synced_offset));
        ensure(end >= hw, "isr-member-holds-hw", || {
            format!(
                "broker {} is in the committed ISR (broker epoch {registered}) with log end \
                 {end}, below its leader's high watermark {hw}",
                self.config.id
            )
        })
        .map_err(|v| v.at(tp))?;
        // With fsync durability the high watermark promises more: below it every member has
        // synced, so a power loss of all but one member loses nothing acknowledged.
        // (`isr-member-syncs-hw`)
        if self.config.durability != Durability::Fsync {
            return Ok(());
        }
        ensure(synced >= hw, "isr-member-syncs-hw", || {
            format!(
                "broker {} is in the committed ISR (broker epoch {registered}) synced to \
                 {synced}, below its leader's high watermark {hw} (fsync durability)",
                self.config.id
            )
        })
        .map_err(|v| v.at(tp))
    }

    /// What this broker's disk holds, replayed (`image`), is the logs it runs with: log start,
    /// entries, epoch cache and producer states of every partition. A harness that can read the
    /// disk checks it whenever the two should agree — at a process crash, which keeps every
    /// write, and at the end of a run; not after a power loss or a flipped bit until the broker
    /// has recovered from what is left. A state change with no journal write for it (or a
    /// journal write the replay reads differently) breaks it, at once, where otherwise only a
    /// crash at the wrong moment followed by the wrong election would show it.
    /// (`disk-matches-memory`)
    pub fn check_disk_image(&self, image: &super::BrokerImage) -> Checked {
        let empty = crate::log::PartitionLog::new();
        let tps = self.replicas.keys().chain(image.logs.keys());
        for tp in tps {
            let memory = self.replicas.get(tp).map_or(&empty, |r| &r.log);
            let disk = image.logs.get(tp).unwrap_or(&empty);
            if let Some(d) = memory.journaled_difference(disk) {
                return Err(Violation::new(
                    "disk-matches-memory",
                    format!("broker {}: {d}", self.config.id),
                )
                .at(tp));
            }
        }
        Ok(())
    }
}
