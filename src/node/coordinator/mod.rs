//! The group coordinator: the broker that leads a `__consumer_offsets` partition coordinates the
//! groups hashing to it. Membership (join, sync, heartbeat, leave, session expiry) lives in memory;
//! committed offsets and each group's generation are records appended to the partition and
//! answered only once the high watermark passes them, so they are replicated under the configured
//! durability. An offset fetch waits likewise behind a barrier record it appends (a coordinator
//! deposed without knowing it cannot commit one, so never answers from a stale cache). A new
//! leader of the partition rebuilds the groups by replaying its log, and serves
//! nothing until its high watermark reaches the start of its epoch (everything it replayed is then
//! committed). Members are not stored: after a coordinator failover they rejoin, in a generation
//! above every stored one.
//!
//! Compaction keeps the latest record per key (group and partition, or group generation). Kafka's
//! cleaner deletes superseded records in place and leaves offset gaps; our logs are dense (an
//! offset is a position), so the coordinator compacts by checkpoint instead: when the partition
//! holds mostly superseded records it re-appends the live value of every key, and once those are
//! committed the broker moves the log start past everything older. Followers follow the log
//! start, a new coordinator replays the checkpoint first, and nothing live is ever dropped.

mod assign;
mod fencing;
mod group;
mod logged;
#[cfg(test)]
mod tests;

pub use assign::assign;
pub use fencing::CommitFencing;
pub use group::{Classic, Group, GroupState, Member, Mode, Waiting};
pub use logged::LoggedOffsets;

use super::{Context, Situation, Timer};
use crate::log::{ensure, Checked, PartitionLog};
use crate::protocol::{
    AssignBy, ClusterMetadata, ErrorCode, Generation, GroupAnswer, GroupMessage, GroupRequest,
    GroupResponse, LeaderEpoch, LeaderJoin, MemberId, Message, NodeId, Offset, OffsetsKey,
    OffsetsValue, Record, TopicPartition, MAX_COMMIT_METADATA,
};
use std::collections::BTreeMap;

/// Coordinator settings, taken from the broker's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    /// A member that sends nothing for this long is removed (`session.timeout.ms`).
    pub session_timeout_ms: Option<u64>,
    /// How long a rebalance waits for known members to rejoin (`rebalance.timeout.ms`).
    pub rebalance_timeout_ms: Option<u64>,
    /// Bug switch `accept-stale-generation` (N): commits are not checked against the member
    /// list and generation.
    pub accept_stale_generation: bool,
    /// Bug switch `sync-before-assignment`: syncs are answered without the leader's assignment.
    pub sync_before_assignment: bool,
    /// Bug switch `replay-keeps-highest-offset`: a coordinator rebuilt from its log keeps each
    /// partition's highest committed offset instead of its last.
    pub replay_keeps_highest_offset: bool,
    /// Bug switch `member-session-not-renewed`: a heartbeat does not renew the member's session.
    pub member_session_not_renewed: bool,
    /// Bug switch `offset-fetch-from-cache`: an offset fetch is answered from the cache at once,
    /// without a read barrier.
    pub offset_fetch_from_cache: bool,
}

/// A record the coordinator wants appended to its partition, and what to do once it commits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    pub record: Record,
    pub then: Pending,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    Commit {
        client: NodeId,
        correlation: u64,
        group: String,
        tp: TopicPartition,
        offset: Offset,
        metadata: String,
    },
    Generation {
        group: String,
        generation: Generation,
    },
    /// A live value re-appended by compaction.
    Checkpoint,
    /// An offset fetch waiting behind its barrier record (see `OffsetsKey::Barrier`).
    Read {
        client: NodeId,
        correlation: u64,
        group: String,
        tp: TopicPartition,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator {
    /// The leader epoch of the partition this coordinator serves in; part of new member ids, so
    /// ids never repeat across coordinators.
    epoch: LeaderEpoch,
    /// The high watermark has reached the start of our epoch: the replayed state is committed.
    loaded: bool,
    groups: BTreeMap<String, Group>,
    next_member: u64,
    /// Appended writes by log offset, waiting for the high watermark.
    pending: BTreeMap<Offset, Pending>,
    /// The offsets of the compaction checkpoint in flight (first, last).
    checkpoint: Option<(Offset, Offset)>,
    /// Bug switch `sync-before-assignment`.
    sync_before_assignment: bool,
}

impl Coordinator {
    /// A coordinator for a partition this broker just became leader of, rebuilt from its log.
    pub fn replay(epoch: LeaderEpoch, log: &PartitionLog) -> Self {
        Self::rebuild(epoch, log, false)
    }

    /// `replay`, then `with_settings`: what a broker starts for a partition it now leads.
    pub fn load(epoch: LeaderEpoch, log: &PartitionLog, settings: &Settings) -> Self {
        Self::rebuild(epoch, log, settings.replay_keeps_highest_offset).with_settings(settings)
    }

    fn rebuild(epoch: LeaderEpoch, log: &PartitionLog, keep_highest: bool) -> Self {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for e in log.entries() {
            match OffsetsKey::read(&e.record) {
                (
                    Some(OffsetsKey::Offset { group, tp }),
                    Some(OffsetsValue::Offset {
                        offset, metadata, ..
                    }),
                ) => {
                    let g = groups.entry(group).or_default();
                    // The last commit is the offset, even one lower than an earlier one (a
                    // group reset back).
                    if !(keep_highest && g.offsets.get(&tp).is_some_and(|&o| o > offset)) {
                        g.set_committed(tp, offset, metadata);
                    }
                }
                (Some(OffsetsKey::Group { group }), Some(OffsetsValue::Group { generation })) => {
                    let g = groups.entry(group).or_default();
                    g.generation = g.generation.max(generation);
                }
                // Records this version does not understand are skipped, not fatal.
                _ => {}
            }
        }
        Coordinator {
            epoch,
            loaded: false,
            groups,
            next_member: 0,
            pending: BTreeMap::new(),
            checkpoint: None,
            sync_before_assignment: false,
        }
    }

    /// Turns on the bug switches that act where no settings are passed.
    pub fn with_settings(mut self, settings: &Settings) -> Self {
        self.sync_before_assignment = settings.sync_before_assignment;
        self
    }

    pub fn groups(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Writes in flight are records of the partition not yet committed (each completes as soon
    /// as the high watermark passes it), and a checkpoint in flight lies within the log.
    pub fn check_invariants(&self, log: &PartitionLog) -> Checked {
        let (start, hw, end) = (
            log.log_start_offset(),
            log.high_watermark(),
            log.log_end_offset(),
        );
        let outside = self.pending.keys().find(|&&o| o < hw || o >= end);
        ensure(outside.is_none(), "coordinator-pending-uncommitted", || {
            format!("write in flight at {outside:?}, high watermark {hw}, log end {end}")
        })?;
        ensure(
            self.checkpoint
                .is_none_or(|(first, last)| start <= first && first <= last && last < end),
            "coordinator-checkpoint-within-log",
            || format!("checkpoint {:?} in a log [{start}, {end})", self.checkpoint),
        )
    }

    /// A loaded coordinator's committed offsets are what its log's committed records say: the
    /// last offset record of each key in [log start, high watermark). A coordinator takes a
    /// commit once the high watermark passes its record, and a new one rebuilds from its log,
    /// so what it serves must be what a successor would rebuild from the committed records. A
    /// compaction that moves the log start past a key's only committed record, a retention
    /// that deletes offsets records, or a commit taken before its record is committed breaks
    /// it at once, not at the next failover. It replays the committed records, so it is not
    /// among the invariants checked after every step: the simulator runs it
    /// (`check_offsets_logged`, on the records read as they are committed) after a broker's
    /// step that changed its offsets partition (`coordinator-offsets-in-log` in the docs).
    pub fn check_offsets_in_log(&self, log: &PartitionLog) -> Checked {
        if !self.loaded {
            return Ok(());
        }
        let committed = (log.high_watermark() - log.log_start_offset()) as usize;
        let mut logged = LoggedOffsets::default();
        logged.read(&log.entries()[..committed.min(log.entries().len())]);
        self.check_offsets_logged(&logged, log)
    }

    /// `check_offsets_in_log` against `logged`, the offsets read from `log`'s committed records
    /// (a harness that checks after every step reads only the records committed since the last
    /// check, not the whole log again).
    pub fn check_offsets_logged(&self, logged: &LoggedOffsets, log: &PartitionLog) -> Checked {
        if !self.loaded {
            return Ok(());
        }
        let mut count = 0;
        for (group, g) in &self.groups {
            for (tp, &offset) in &g.offsets {
                count += 1;
                let in_log = logged.get(group, tp);
                ensure(in_log == Some(offset), "coordinator-offsets-in-log", || {
                    format!(
                        "group {group} holds {offset} for {tp}; the committed log [{}, {}) has \
                         {in_log:?}",
                        log.log_start_offset(),
                        log.high_watermark()
                    )
                })?;
            }
        }
        ensure(count == logged.len(), "coordinator-offsets-in-log", || {
            let missing: Vec<_> = logged
                .iter()
                .filter(|(g, tp, _)| {
                    !self
                        .groups
                        .get(*g)
                        .is_some_and(|x| x.offsets.contains_key(tp))
                })
                .map(|(g, tp, _)| (g, tp))
                .collect();
            format!("the committed log has offsets for {missing:?}, which the coordinator lacks")
        })?;
        // A new generation must be newer than every one a member may still hold: a coordinator
        // that rebuilt a lower generation than its log records would hand out numbers an old
        // generation's members still carry, and accept their commits and heartbeats as current.
        for (group, logged_generation) in logged.generations() {
            let held = self.groups.get(group).map_or(0, |g| g.generation);
            ensure(
                held >= logged_generation,
                "coordinator-generation-covers-log",
                || {
                    format!(
                        "group {group} is at generation {held}; its committed records name \
                         generation {logged_generation}"
                    )
                },
            )?;
        }
        // A generation taken as stored, or one whose syncs were answered (the group is
        // stable), must be in the committed log: a successor coordinator rebuilds from there,
        // and a sync answered before its record committed hands members a generation a
        // failover can lose and hand out again. The state is judged as well as the flag, so a
        // coordinator that answers without waiting for the flag is caught too.
        for (group, g) in &self.groups {
            let logged_generation = logged.generation(group);
            let answered = g.generation_stored || g.state == GroupState::Stable;
            ensure(
                !answered || logged_generation == Some(g.generation),
                "coordinator-generation-stored",
                || {
                    format!(
                        "group {group} is {:?} at generation {} (taken as stored: {}); its \
                         committed records name {logged_generation:?}",
                        g.state, g.generation, g.generation_stored
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Records that `write` was appended at `offset`.
    pub fn appended(&mut self, offset: Offset, then: Pending) {
        if then == Pending::Checkpoint {
            let (first, _) = self.checkpoint.unwrap_or((offset, offset));
            self.checkpoint = Some((first.min(offset), offset));
        }
        self.pending.insert(offset, then);
    }

    /// Number of keys with a live value: what a fully compacted partition holds.
    pub fn live_keys(&self) -> u64 {
        self.groups
            .values()
            .map(|g| g.offsets.len() as u64 + u64::from(g.generation > 0))
            .sum()
    }

    /// Compaction: the live value of every key as records to re-append, if nothing else is in
    /// flight (then the cache equals the log) and no checkpoint is.
    pub fn checkpoint(&mut self) -> Vec<Write> {
        if !self.loaded || !self.pending.is_empty() || self.checkpoint.is_some() {
            return Vec::new();
        }
        let mut writes = Vec::new();
        for (name, g) in &self.groups {
            if g.generation > 0 {
                let key = OffsetsKey::Group {
                    group: name.clone(),
                };
                let value = OffsetsValue::Group {
                    generation: g.generation,
                };
                writes.push((key, value));
            }
            for (tp, &offset) in &g.offsets {
                let key = OffsetsKey::Offset {
                    group: name.clone(),
                    tp: tp.clone(),
                };
                let value = OffsetsValue::Offset {
                    offset,
                    member: String::new(),
                    generation: g.generation,
                    metadata: g.metadata_of(tp),
                };
                writes.push((key, value));
            }
        }
        writes
            .into_iter()
            .map(|(k, v)| Write {
                record: k.record(&v),
                then: Pending::Checkpoint,
            })
            .collect()
    }

    /// The partition's high watermark moved to `hw` (and its epoch started at `epoch_start`):
    /// completes the writes below it. Returns the new log start when a compaction checkpoint
    /// just became committed.
    pub fn on_high_watermark(
        &mut self,
        cx: &mut Context,
        hw: Offset,
        epoch_start: Offset,
        isr_ok: bool,
    ) -> Option<Offset> {
        if hw >= epoch_start {
            self.loaded = true;
        }
        let rest = self.pending.split_off(&hw);
        for (_, done) in std::mem::replace(&mut self.pending, rest) {
            match done {
                Pending::Commit {
                    client,
                    correlation,
                    group,
                    tp,
                    offset,
                    metadata,
                } => {
                    let g = self.groups.entry(group.clone()).or_default();
                    g.set_committed(tp, offset, metadata);
                    // The record is committed in the log (so in the cache), but if the ISR shrank
                    // below min.insync.replicas meanwhile it is not as durable as promised: the
                    // outcome is unknown to the member, as with produce.
                    let answer = if isr_ok {
                        Ok(GroupAnswer::Committed)
                    } else {
                        Err(ErrorCode::NotEnoughReplicasAfterAppend)
                    };
                    reply(cx, client, &group, correlation, answer);
                }
                Pending::Checkpoint => {}
                Pending::Read {
                    client,
                    correlation,
                    group,
                    tp,
                } => {
                    // Answered from the cache now, which holds every commit answered so far.
                    let answer = self.offset_answer(&group, &tp);
                    reply(cx, client, &group, correlation, answer);
                }
                Pending::Generation { group, generation } => {
                    let Some(g) = self.groups.get_mut(&group) else {
                        continue;
                    };
                    if g.generation == generation && g.state == GroupState::CompletingRebalance {
                        g.generation_stored = true;
                        settle(cx, &group, g, self.sync_before_assignment);
                    }
                }
            }
        }
        match self.checkpoint {
            Some((first, last)) if hw > last => {
                self.checkpoint = None;
                Some(first)
            }
            _ => None,
        }
    }

    /// This broker stopped leading the partition: everyone waiting looks for the new coordinator.
    pub fn resign(self, cx: &mut Context) {
        for (name, g) in &self.groups {
            cx.cancel_timer(Timer::GroupRebalance(name.clone()));
            for m in g.members.keys().chain(&g.pending) {
                cx.cancel_timer(session_timer(name, m));
            }
            for w in g.waiting_joins.iter().chain(&g.waiting_syncs) {
                reply(
                    cx,
                    w.client,
                    name,
                    w.correlation,
                    Err(ErrorCode::NotCoordinator),
                );
            }
        }
        for p in self.pending.into_values() {
            if let Pending::Commit {
                client,
                correlation,
                group,
                ..
            }
            | Pending::Read {
                client,
                correlation,
                group,
                ..
            } = p
            {
                reply(
                    cx,
                    client,
                    &group,
                    correlation,
                    Err(ErrorCode::NotCoordinator),
                );
            }
        }
    }

    /// A group request for a group of this partition. Returns the records to append.
    pub fn handle(
        &mut self,
        cx: &mut Context,
        settings: &Settings,
        md: &ClusterMetadata,
        from: NodeId,
        msg: GroupMessage,
    ) -> Vec<Write> {
        let GroupMessage {
            group: name,
            correlation,
            request,
        } = msg;
        if !self.loaded {
            reply(
                cx,
                from,
                &name,
                correlation,
                Err(ErrorCode::CoordinatorLoadInProgress),
            );
            return Vec::new();
        }
        let waiting = |member: &MemberId| Waiting {
            client: from,
            correlation,
            member: member.clone(),
        };
        let mut writes = Vec::new();
        let answer = match request {
            GroupRequest::FindCoordinator => return writes,
            GroupRequest::Join {
                member,
                topics,
                assign,
                require_known_member_id,
            } => {
                let id = match member {
                    Some(id) if self.groups.get(&name).is_some_and(|g| g.knows(&id)) => id,
                    Some(_) => {
                        reply(
                            cx,
                            from,
                            &name,
                            correlation,
                            Err(ErrorCode::UnknownMemberId),
                        );
                        return writes;
                    }
                    None => {
                        self.next_member += 1;
                        let id = format!("c{from}-e{}-{}", self.epoch, self.next_member);
                        if !require_known_member_id {
                            id
                        } else {
                            // Only an id, held as pending for a session: a join repeated or
                            // delivered late leaves a pending id that expires, not a member. A
                            // join the group would refuse is refused now, as Kafka does, not
                            // after the round trip.
                            let g = self.groups.entry(name.clone()).or_default();
                            if let Err(e) = g.clone().admit(&id, &assign) {
                                reply(cx, from, &name, correlation, Err(e));
                                return writes;
                            }
                            g.pending.insert(id.clone());
                            cx.set_timer(session_timer(&name, &id), settings.session_timeout_ms);
                            let answer = Ok(GroupAnswer::MemberIdRequired { member: id });
                            reply(cx, from, &name, correlation, answer);
                            return writes;
                        }
                    }
                };
                let g = self.groups.entry(name.clone()).or_default();
                if let Err(e) = g.admit(&id, &assign) {
                    reply(cx, from, &name, correlation, Err(e));
                    return writes;
                }
                let protocols = match assign {
                    AssignBy::Leader { protocols, .. } => protocols,
                    AssignBy::Coordinator(_) => Vec::new(),
                };
                g.pending.remove(&id);
                g.members.insert(
                    id.clone(),
                    Member {
                        client: from,
                        topics,
                        protocols,
                        rejoined: true,
                    },
                );
                g.waiting_joins.retain(|w| w.member != id);
                g.waiting_joins.push(waiting(&id));
                cx.set_timer(session_timer(&name, &id), settings.session_timeout_ms);
                if g.state != GroupState::PreparingRebalance {
                    for w in g.prepare_rebalance(Some(&id)) {
                        let e = Err(ErrorCode::RebalanceInProgress);
                        reply(cx, w.client, &name, w.correlation, e);
                    }
                    cx.set_timer(
                        Timer::GroupRebalance(name.clone()),
                        settings.rebalance_timeout_ms,
                    );
                }
                writes.extend(self.try_complete(cx, md, &name, false));
                return writes;
            }
            GroupRequest::Sync {
                member,
                generation,
                assignments,
            } => {
                let sync_before_assignment = self.sync_before_assignment;
                match self.check_member(&name, &member, generation) {
                    Err(e) => Err(e),
                    Ok(g) => {
                        cx.set_timer(session_timer(&name, &member), settings.session_timeout_ms);
                        match g.state {
                            GroupState::Stable => {
                                let (partitions, data) = g.share_of(&member);
                                Ok(GroupAnswer::Assignment {
                                    generation,
                                    partitions,
                                    data,
                                })
                            }
                            GroupState::CompletingRebalance => {
                                // Only the leader's Sync carries the assignment; the first one
                                // of the generation counts (a retried Sync repeats it).
                                if let Mode::Leader(c) = &mut g.mode {
                                    if c.leader.as_ref() == Some(&member) && c.assignment.is_none()
                                    {
                                        c.assignment = Some(assignments.into_iter().collect());
                                    }
                                }
                                g.waiting_syncs.retain(|w| w.member != member);
                                g.waiting_syncs.push(waiting(&member));
                                settle(cx, &name, g, sync_before_assignment);
                                return writes;
                            }
                            _ => Err(ErrorCode::RebalanceInProgress),
                        }
                    }
                }
            }
            GroupRequest::Heartbeat { member, generation } => {
                match self.check_member(&name, &member, generation) {
                    Err(e) => Err(e),
                    Ok(g) => {
                        if !settings.member_session_not_renewed {
                            let renewed = settings.session_timeout_ms;
                            cx.set_timer(session_timer(&name, &member), renewed);
                        }
                        if g.state == GroupState::PreparingRebalance {
                            Err(ErrorCode::RebalanceInProgress)
                        } else {
                            Ok(GroupAnswer::HeartbeatOk)
                        }
                    }
                }
            }
            GroupRequest::Leave { member } => {
                // A pending id leaves too (as in Kafka), without a rebalance: it was no member.
                let known = self.groups.get(&name).is_some_and(|g| g.knows(&member));
                if known {
                    cx.cancel_timer(session_timer(&name, &member));
                    writes.extend(self.remove_member(cx, settings, md, &name, &member));
                    Ok(GroupAnswer::Left)
                } else {
                    Err(ErrorCode::UnknownMemberId)
                }
            }
            GroupRequest::Commit {
                member,
                generation,
                tp,
                offset,
                metadata,
            } => {
                let check = if settings.accept_stale_generation {
                    Ok(())
                } else if member.is_empty() {
                    // Outside any generation: only into a group nobody is a member of.
                    let group = self.groups.get(&name);
                    if group.is_none_or(|g| g.members.is_empty()) {
                        Ok(())
                    } else {
                        Err(ErrorCode::UnknownMemberId)
                    }
                } else {
                    self.check_member(&name, &member, generation).and_then(|g| {
                        if g.state == GroupState::CompletingRebalance {
                            Err(ErrorCode::RebalanceInProgress)
                        } else {
                            Ok(())
                        }
                    })
                };
                // The metadata's size only once the committer may commit at all (Kafka's order:
                // a fenced member hears that it is fenced, which it can act on).
                let check = match check {
                    Ok(()) if metadata.len() > MAX_COMMIT_METADATA => {
                        Err(ErrorCode::OffsetMetadataTooLarge)
                    }
                    other => other,
                };
                match check {
                    Err(e) => {
                        if matches!(e, ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId) {
                            cx.reached(Situation::FencedCommit);
                        }
                        Err(e)
                    }
                    Ok(()) => {
                        // An accepted commit shows the member alive, as in Kafka.
                        if self
                            .groups
                            .get(&name)
                            .is_some_and(|g| g.members.contains_key(&member))
                        {
                            cx.set_timer(
                                session_timer(&name, &member),
                                settings.session_timeout_ms,
                            );
                        }
                        let key = OffsetsKey::Offset {
                            group: name.clone(),
                            tp: tp.clone(),
                        };
                        let value = OffsetsValue::Offset {
                            offset,
                            member,
                            generation,
                            metadata: metadata.clone(),
                        };
                        writes.push(Write {
                            record: key.record(&value),
                            then: Pending::Commit {
                                client: from,
                                correlation,
                                group: name,
                                tp,
                                offset,
                                metadata,
                            },
                        });
                        return writes;
                    }
                }
            }
            GroupRequest::FetchOffset { tp } => {
                if settings.offset_fetch_from_cache {
                    self.offset_answer(&name, &tp)
                } else {
                    // Not from the cache at once: this broker may have been deposed without
                    // hearing it yet (cut off, or paused), while a newer coordinator took
                    // commits. A barrier record commits only if the partition's replicas still
                    // follow this leader after the fetch arrived; then no newer leader can have
                    // committed anything before it, and the cache is current.
                    let key = OffsetsKey::Barrier {
                        group: name.clone(),
                    };
                    writes.push(Write {
                        record: key.record(&OffsetsValue::Barrier),
                        then: Pending::Read {
                            client: from,
                            correlation,
                            group: name,
                            tp,
                        },
                    });
                    return writes;
                }
            }
        };
        reply(cx, from, &name, correlation, answer);
        writes
    }

    /// The answer to an offset fetch from what this coordinator holds now.
    fn offset_answer(&self, name: &str, tp: &TopicPartition) -> Result<GroupAnswer, ErrorCode> {
        let group = self.groups.get(name);
        Ok(GroupAnswer::Offset {
            offset: group.and_then(|g| g.offsets.get(tp).copied()),
            metadata: group.map(|g| g.metadata_of(tp)).unwrap_or_default(),
        })
    }

    /// A coordinator timer fired.
    pub fn on_timer(
        &mut self,
        cx: &mut Context,
        settings: &Settings,
        md: &ClusterMetadata,
        timer: &Timer,
    ) -> Vec<Write> {
        match timer {
            Timer::GroupRebalance(name) => self.try_complete(cx, md, name, true),
            Timer::MemberSession { group, member } => {
                self.remove_member(cx, settings, md, group, member)
            }
            _ => Vec::new(),
        }
    }

    /// Whether `timer` belongs to a group of this coordinator.
    pub fn owns_timer(&self, timer: &Timer) -> bool {
        match timer {
            Timer::GroupRebalance(g) | Timer::MemberSession { group: g, .. } => {
                self.groups.contains_key(g)
            }
            _ => false,
        }
    }

    fn check_member(
        &mut self,
        name: &str,
        member: &MemberId,
        generation: Generation,
    ) -> Result<&mut Group, ErrorCode> {
        let g = self
            .groups
            .get_mut(name)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if !g.members.contains_key(member) {
            return Err(ErrorCode::UnknownMemberId);
        }
        if g.generation != generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        Ok(g)
    }

    /// A member left or its session expired: the others must rebalance.
    fn remove_member(
        &mut self,
        cx: &mut Context,
        settings: &Settings,
        md: &ClusterMetadata,
        name: &str,
        member: &MemberId,
    ) -> Vec<Write> {
        let Some(g) = self.groups.get_mut(name) else {
            return Vec::new();
        };
        // A pending id never joined with: it goes, and nothing else changes.
        if g.pending.remove(member) || g.members.remove(member).is_none() {
            return Vec::new();
        }
        // Its parked requests are answered: it is no longer a member.
        let (gone, joins): (Vec<_>, Vec<_>) = std::mem::take(&mut g.waiting_joins)
            .into_iter()
            .partition(|w| &w.member == member);
        g.waiting_joins = joins;
        let (gone_syncs, syncs): (Vec<_>, Vec<_>) = std::mem::take(&mut g.waiting_syncs)
            .into_iter()
            .partition(|w| &w.member == member);
        g.waiting_syncs = syncs;
        for w in gone.into_iter().chain(gone_syncs) {
            reply(
                cx,
                w.client,
                name,
                w.correlation,
                Err(ErrorCode::UnknownMemberId),
            );
        }
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.assignment.clear();
            cx.cancel_timer(Timer::GroupRebalance(name.to_string()));
            return Vec::new();
        }
        if g.state != GroupState::PreparingRebalance {
            for w in g.prepare_rebalance(None) {
                let e = Err(ErrorCode::RebalanceInProgress);
                reply(cx, w.client, name, w.correlation, e);
            }
            cx.set_timer(
                Timer::GroupRebalance(name.to_string()),
                settings.rebalance_timeout_ms,
            );
        }
        self.try_complete(cx, md, name, false)
    }

    /// Completes the rebalance in progress if every member rejoined, or if `deadline` (the
    /// rebalance timeout fired), dropping those that did not: a new generation, its assignment,
    /// and the generation record to append.
    fn try_complete(
        &mut self,
        cx: &mut Context,
        md: &ClusterMetadata,
        name: &str,
        deadline: bool,
    ) -> Vec<Write> {
        let Some(g) = self.groups.get_mut(name) else {
            return Vec::new();
        };
        if g.state != GroupState::PreparingRebalance || !(deadline || g.all_rejoined()) {
            return Vec::new();
        }
        cx.cancel_timer(Timer::GroupRebalance(name.to_string()));
        let gone: Vec<MemberId> = g
            .members
            .iter()
            .filter(|(_, m)| !m.rejoined)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            g.members.remove(&id);
            cx.cancel_timer(session_timer(name, &id));
        }
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            return Vec::new();
        }
        g.generation += 1;
        g.state = GroupState::CompletingRebalance;
        g.generation_stored = false;
        cx.reached(Situation::Rebalance);
        match &mut g.mode {
            Mode::Coordinator(assignor) => {
                let subscriptions: BTreeMap<MemberId, Vec<String>> = g
                    .members
                    .iter()
                    .map(|(id, m)| (id.clone(), m.topics.clone()))
                    .collect();
                let mut counts: BTreeMap<String, u32> = BTreeMap::new();
                for topics in subscriptions.values() {
                    for t in topics {
                        counts.insert(t.clone(), md.partition_count(t));
                    }
                }
                g.assignment = assign(*assignor, &subscriptions, &counts);
            }
            Mode::Leader(c) => {
                // The leader stays while it is a member; otherwise the first member by id.
                if !c.leader.as_ref().is_some_and(|l| g.members.contains_key(l)) {
                    c.leader = g.members.keys().next().cloned();
                }
                c.protocol = Classic::choose(g.members.values());
                c.assignment = None;
            }
        }
        let generation = g.generation;
        for w in std::mem::take(&mut g.waiting_joins) {
            let answer = GroupAnswer::Joined {
                member: w.member.clone(),
                generation,
                leader: leader_join(g, &w.member),
            };
            reply(cx, w.client, name, w.correlation, Ok(answer));
        }
        let key = OffsetsKey::Group {
            group: name.to_string(),
        };
        vec![Write {
            record: key.record(&OffsetsValue::Group { generation }),
            then: Pending::Generation {
                group: name.to_string(),
                generation,
            },
        }]
    }
}

/// What a joining member learns of a group whose leader assigns: the protocol, the leader, and
/// (the leader only) every member's metadata for the protocol.
fn leader_join(g: &Group, member: &MemberId) -> Option<LeaderJoin> {
    let Mode::Leader(c) = &g.mode else {
        return None;
    };
    let protocol = c.protocol.clone().unwrap_or_default();
    let leader = c.leader.clone().unwrap_or_default();
    let members = if &leader == member {
        g.members
            .iter()
            .map(|(id, m)| {
                let offer = m.protocols.iter().find(|p| p.name == protocol);
                (
                    id.clone(),
                    offer.map(|p| p.metadata.clone()).unwrap_or_default(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(LeaderJoin {
        protocol,
        leader,
        members,
    })
}

/// Completes a generation whose record is committed and whose assignment is known: the group
/// is stable and every parked Sync gets its member's share.
fn settle(cx: &mut Context, name: &str, g: &mut Group, sync_before_assignment: bool) {
    let ready = g.ready() || (sync_before_assignment && g.generation_stored);
    if g.state != GroupState::CompletingRebalance || !ready {
        return;
    }
    g.state = GroupState::Stable;
    if matches!(g.mode, Mode::Leader(_)) {
        cx.reached(Situation::LeaderAssigned);
    }
    for w in std::mem::take(&mut g.waiting_syncs) {
        let (partitions, data) = g.share_of(&w.member);
        let answer = GroupAnswer::Assignment {
            generation: g.generation,
            partitions,
            data,
        };
        reply(cx, w.client, name, w.correlation, Ok(answer));
    }
}

fn session_timer(group: &str, member: &MemberId) -> Timer {
    Timer::MemberSession {
        group: group.to_string(),
        member: member.clone(),
    }
}

fn reply(
    cx: &mut Context,
    to: NodeId,
    group: &str,
    correlation: u64,
    result: Result<GroupAnswer, ErrorCode>,
) {
    let resp = GroupResponse {
        group: group.to_string(),
        correlation,
        result,
    };
    cx.send(to, Message::GroupResponse(resp));
}
