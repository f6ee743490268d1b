//! The broker: hosts replicas of many partitions, leads some and follows others as the controller
//! says, serves clients, and keeps its disk image through `Persist`/`Sync` effects.
//!
//! `mod.rs` holds registration, metadata and disk bookkeeping; `leader.rs` the leader role
//! (produce, serving fetches, high watermark, ISR changes); `follower.rs` the fetch loop and
//! divergence truncation; `producer_ids.rs` handing out producer ids.

mod controller_link;
mod follower;
mod group;
mod invariants;
mod leader;
mod producer_ids;
mod replica;
#[cfg(test)]
mod tests;

pub use controller_link::ControllerLink;
pub use replica::{FollowerState, LeaderState, Progress, Replica, Role, WaitingProduce};

use super::coordinator::Coordinator;
use super::{
    BrokerConfig, BrokerImage, Bug, Context, DiskOp, Durability, Situation, SyncToken, Timer,
};
use crate::log::{PartitionLog, Violation};
use crate::protocol::{
    BrokerEpoch, ClusterMetadata, ErrorCode, LeaderEpoch, Message, NodeId, Offset, PartitionState,
    ProducerSnapshot, QuorumEpoch, TopicPartition, OFFSETS_TOPIC,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Registration {
    /// Waiting for the controller to assign a broker epoch; nothing is served meanwhile.
    Registering,
    /// Registered with `epoch`; metadata older than `min_version` predates this incarnation.
    Registered {
        epoch: BrokerEpoch,
        min_version: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Broker {
    config: Arc<BrokerConfig>,
    registration: Registration,
    /// The controller the broker talks to, and the newest controller epoch it has followed.
    controller: ControllerLink,
    /// Shared: the metadata changes only on a push, and a broker state is cloned far more often
    /// than that (the model checker clones the stepping node for every successor).
    metadata: Arc<ClusterMetadata>,
    replicas: BTreeMap<TopicPartition, Replica>,
    /// Requested syncs, oldest first, by token: the log end of each partition each one covers.
    pending_syncs: VecDeque<(SyncToken, Vec<(TopicPartition, Offset)>)>,
    /// The token of the last sync requested (tokens grow within one incarnation).
    last_sync_token: SyncToken,
    unfence_in_flight: bool,
    /// Requests from senders whose metadata is ahead of ours (or metadata requests asking for a
    /// newer version): handled again after our next metadata update.
    parked: Vec<(NodeId, Message)>,
    /// Recovery cut records this broker had made durable; said at registration.
    lost_data: bool,
    /// This run of the process, said at registration (`RegisterBroker::incarnation`).
    incarnation: u64,
    /// Group coordinators, one per `__consumer_offsets` partition this broker leads.
    coordinators: BTreeMap<u32, Coordinator>,
    /// Producer ids to hand out, and the producers waiting for one (memory only).
    producer_ids: producer_ids::ProducerIds,
    /// The first broken invariant a handler met (an "impossible" error); reported by
    /// `check_invariants`, after which the driver stops the node.
    violation: Option<Violation>,
    /// Per leader, the connections to it dropped after a fetch went unanswered
    /// (`ReplicaId::connection`; absent: none).
    fetch_connections: BTreeMap<crate::protocol::BrokerId, u64>,
}

impl Broker {
    /// A broker booting from its disk image (empty for a new broker). It registers first, as
    /// `incarnation`: the driver gives every start of the process a number above every number an
    /// earlier start of this broker had ([`run_incarnation`] of a boot count, or the start time
    /// with random low bits), so that the controller tells a repeated registration of this run
    /// from a restarted broker's, and a late request of an earlier run from either.
    pub fn recover(config: Arc<BrokerConfig>, image: BrokerImage, incarnation: u64) -> Self {
        let replicas = image
            .logs
            .into_iter()
            .map(|(tp, log)| {
                let mut r = Replica::from_log(log);
                if config.bugs.has(Bug::RecoveryCountsUnsynced) {
                    r.synced_offset = r.log.log_end_offset();
                    r.sync_requested = r.synced_offset;
                }
                (tp, r)
            })
            .collect();
        Broker {
            controller: ControllerLink::new(&config.controllers, config.id),
            config,
            registration: Registration::Registering,
            metadata: Arc::default(),
            replicas,
            pending_syncs: VecDeque::new(),
            last_sync_token: 0,
            unfence_in_flight: false,
            parked: Vec::new(),
            lost_data: false,
            incarnation,
            coordinators: BTreeMap::new(),
            producer_ids: Default::default(),
            fetch_connections: BTreeMap::new(),
            violation: None,
        }
    }

    /// Marks a broker whose disk recovery cut durable records (a corrupt log truncated).
    pub fn with_lost_data(mut self, lost: bool) -> Self {
        self.lost_data = lost;
        self
    }

    /// A broker of a bootstrapped cluster (see `Controller::bootstrapped`): already registered,
    /// holding the initial metadata, with empty logs.
    pub fn bootstrapped(config: Arc<BrokerConfig>, metadata: ClusterMetadata) -> Self {
        let mut b = Self::recover(config, BrokerImage::default(), 0);
        if let Some(reg) = metadata.registration(b.config.id) {
            b.registration = Registration::Registered {
                epoch: reg.epoch,
                min_version: metadata.version,
            };
        }
        b.metadata = Arc::new(metadata);
        b
    }

    /// A bootstrapped broker of a cluster whose controllers form a quorum: it follows the
    /// bootstrapped active controller `controller` of controller epoch `epoch`, as if it had
    /// taken `metadata` from it.
    pub fn bootstrapped_following(
        config: Arc<BrokerConfig>,
        metadata: ClusterMetadata,
        controller: NodeId,
        epoch: QuorumEpoch,
    ) -> Self {
        let mut b = Self::bootstrapped(config, metadata);
        b.controller = ControllerLink::following(controller, epoch);
        b
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn config_arc(&self) -> Arc<BrokerConfig> {
        self.config.clone()
    }

    pub fn registration(&self) -> Registration {
        self.registration
    }

    pub fn metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    /// The controller this broker talks to (the one it believes active).
    pub fn controller(&self) -> &ControllerLink {
        &self.controller
    }

    /// The group coordinators this broker runs, by `__consumer_offsets` partition.
    pub fn coordinators(&self) -> &BTreeMap<u32, Coordinator> {
        &self.coordinators
    }

    pub fn replicas(&self) -> &BTreeMap<TopicPartition, Replica> {
        &self.replicas
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<&PartitionLog> {
        self.replicas.get(tp).map(|r| &r.log)
    }

    /// The epoch in which this broker currently acts as leader of `tp`.
    pub fn leader_epoch_of(&self, tp: &TopicPartition) -> Option<LeaderEpoch> {
        self.replicas.get(tp)?.leader().map(|l| l.epoch)
    }

    /// This broker's id.
    pub fn id(&self) -> crate::protocol::BrokerId {
        self.config.id
    }

    /// The broker epoch the controller registered this incarnation under, once registered.
    pub fn broker_epoch(&self) -> Option<BrokerEpoch> {
        match self.registration {
            Registration::Registered { epoch, .. } => Some(epoch),
            Registration::Registering => None,
        }
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        match self.registration {
            Registration::Registering => self.register(cx),
            Registration::Registered { .. } => {
                self.apply_metadata(cx);
                cx.set_timer(Timer::Heartbeat, self.config.heartbeat_interval_ms);
            }
        }
        cx.set_timer(Timer::Retention, self.config.retention_check_ms);
        // Whatever was recovered may sit only in the page cache: make it durable before counting it.
        self.request_sync(cx);
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::RegisterBrokerResponse {
                broker_epoch,
                metadata_version,
            } => self.on_registered(cx, from, broker_epoch, metadata_version),
            Message::HeartbeatResponse {
                broker_epoch,
                fenced,
            } => self.on_heartbeat_response(cx, from, broker_epoch, fenced),
            Message::UpdateMetadata {
                controller_epoch,
                metadata,
            } => self.on_update_metadata(cx, from, controller_epoch, metadata),
            Message::NotController { leader, epoch } => {
                self.on_not_controller(cx, from, leader, epoch)
            }
            Message::Metadata { min_version } if min_version > self.metadata.version => {
                self.park(cx, from, Message::Metadata { min_version })
            }
            Message::Metadata { .. } => cx.send(
                from,
                Message::MetadataResponse(ClusterMetadata::clone(&self.metadata)),
            ),
            Message::Fetch(req) => self.on_fetch(cx, from, req),
            Message::FetchResponse(resp) => self.on_fetch_response(cx, from, resp),
            Message::Produce(req) => self.on_produce(cx, from, req),
            Message::ListOffsets { tp, spec } => self.on_list_offsets(cx, from, tp, spec),
            Message::Group(m) => self.on_group(cx, from, m),
            // Topics are the controller's to create: handed on, and its answer handed back. A
            // request lost on the way (a controller that moved or died) is the client's to retry.
            Message::CreateTopic(request) => {
                let forward = Message::ForwardCreateTopic {
                    client: from,
                    request,
                };
                self.send_to_controller(cx, forward);
            }
            // From any controller, not only the one followed now: a controller that is not
            // active refuses the creation and then says so (`NotController`), but a refusal of
            // a heartbeat may have moved the broker on before the creation's answer arrives.
            // The answer is the client's either way (a controller answers a creation only once
            // committed, or refused).
            Message::ForwardCreateTopicResponse { client, response }
                if self.config.controllers.contains(&from) =>
            {
                self.answered_by_controller(from);
                cx.send(client, Message::CreateTopicResponse(response));
            }
            Message::AlterPartitionResponse {
                tp,
                request_partition_epoch,
                result,
            } => self.on_alter_partition_response(cx, from, tp, request_partition_epoch, result),
            Message::InitProducerId { correlation } => {
                self.on_init_producer_id(cx, from, correlation)
            }
            Message::AllocateProducerIdsResponse { result } => {
                self.on_producer_id_block(cx, from, result)
            }
            _ => {}
        }
        self.request_sync(cx);
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::Heartbeat => {
                if let Some(epoch) = self.broker_epoch() {
                    let hb = self.heartbeat(epoch);
                    self.send_periodic_to_controller(cx, hb);
                }
                cx.set_timer(Timer::Heartbeat, self.config.heartbeat_interval_ms);
            }
            Timer::RegisterRetry if self.registration == Registration::Registering => {
                self.register(cx);
            }
            Timer::FollowerLag { tp, replica } => self.on_follower_lag(cx, &tp, replica),
            Timer::FetchBackoff(tp) => self.on_fetch_backoff(cx, &tp),
            Timer::FetchTimeout(tp) => self.on_fetch_timeout(cx, &tp),
            Timer::FetchMaxWait { tp, from } => self.on_fetch_max_wait(cx, &tp, from),
            Timer::AlterPartitionTimeout(tp) => self.on_alter_partition_timeout(cx, &tp),
            Timer::ParkedExpiry => self.expire_parked(cx),
            Timer::Retention => {
                self.apply_retention(cx);
                cx.set_timer(Timer::Retention, self.config.retention_check_ms);
            }
            t @ (Timer::GroupRebalance(_) | Timer::MemberSession { .. }) => {
                self.on_group_timer(cx, &t)
            }
            Timer::ProducerIdsRetry => self.on_producer_ids_retry(cx),
            _ => {}
        }
        self.request_sync(cx);
    }

    /// Every sync the broker asked for up to `token` completed: their marks are now durable.
    pub fn on_persisted(&mut self, cx: &mut Context, token: SyncToken) {
        let mut any = false;
        while self.pending_syncs.front().is_some_and(|(t, _)| *t <= token) {
            let Some((_, marks)) = self.pending_syncs.pop_front() else {
                break;
            };
            any = true;
            for (tp, offset) in marks {
                if let Some(r) = self.replicas.get_mut(&tp) {
                    r.synced_offset = r.synced_offset.max(offset.min(r.log.log_end_offset()));
                }
            }
        }
        if !any {
            return;
        }
        let tps: Vec<_> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let r = &mut self.replicas.get_mut(&tp).expect("listed above");
            match &mut r.role {
                Role::Leader(_) => self.leader_progress(cx, &tp),
                Role::Follower(fs)
                    if fs.awaiting_sync && r.synced_offset >= r.log.log_end_offset() =>
                {
                    fs.awaiting_sync = false;
                    self.send_fetch(cx, &tp);
                }
                _ => {}
            }
        }
        self.request_sync(cx);
    }

    fn heartbeat(&self, broker_epoch: BrokerEpoch) -> Message {
        Message::Heartbeat {
            broker: self.config.id,
            broker_epoch,
            metadata_version: self.metadata.version,
            controller_epoch: self.controller.epoch(),
        }
    }

    fn register(&mut self, cx: &mut Context) {
        let msg = Message::RegisterBroker {
            broker: self.config.id,
            lost_data: self.lost_data,
            incarnation: self.incarnation,
        };
        self.send_periodic_to_controller(cx, msg);
        cx.set_timer(Timer::RegisterRetry, self.config.register_retry_ms);
    }

    /// Sends the request the broker is waiting on again, to a controller it has just switched to.
    fn retry_controller_request(&mut self, cx: &mut Context) {
        match self.registration {
            Registration::Registering => self.register(cx),
            Registration::Registered { epoch, .. } => {
                let hb = self.heartbeat(epoch);
                self.send_periodic_to_controller(cx, hb);
            }
        }
    }

    fn on_registered(&mut self, cx: &mut Context, from: NodeId, epoch: BrokerEpoch, version: u64) {
        if !self.answered_by_controller(from) || self.registration != Registration::Registering {
            return;
        }
        self.registration = Registration::Registered {
            epoch,
            min_version: version,
        };
        cx.cancel_timer(Timer::RegisterRetry);
        cx.set_timer(Timer::Heartbeat, self.config.heartbeat_interval_ms);
        self.apply_metadata(cx);
        self.producer_ids_on_registered(cx);
    }

    fn on_heartbeat_response(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        epoch: BrokerEpoch,
        fenced: bool,
    ) {
        // An answer to a heartbeat of an earlier registration (sent before a re-registration and
        // delivered after it) says nothing about this one; taking its `fenced` for ours made a
        // broker register again and again after a stall.
        if !self.answered_by_controller(from) || self.broker_epoch() != Some(epoch) {
            return;
        }
        self.unfence_in_flight = false;
        if fenced {
            // Our registration is gone (the controller has a newer one or none): start over,
            // as a new incarnation. The roles are dropped, so the controller must treat this as
            // a restart (out of every ISR, a new broker epoch, new leader epochs): answered as a
            // repeat of the registration it already has, the broker took its old leaderships
            // back in the same leader epochs, and a coordinator reloaded in the same epoch gave
            // out member ids it had given before.
            for tp in self.replicas.keys().cloned().collect::<Vec<_>>() {
                self.become_idle(cx, &tp, None);
            }
            self.incarnation = next_incarnation(self.incarnation);
            self.registration = Registration::Registering;
            self.register(cx);
        }
    }

    fn on_update_metadata(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        controller_epoch: QuorumEpoch,
        md: ClusterMetadata,
    ) {
        if !self.accept_metadata(from, controller_epoch, &md) {
            return;
        }
        self.metadata = Arc::new(md);
        self.apply_metadata(cx);
        for (from, message) in std::mem::take(&mut self.parked) {
            self.on_message(cx, from, message);
        }
    }

    /// Holds a request until our metadata catches up with the sender's.
    fn park(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        if self.parked.is_empty() {
            cx.set_timer(Timer::ParkedExpiry, self.config.fetch_max_wait_ms);
        }
        self.parked
            .retain(|(f, m)| !(*f == from && same_request(m, &message)));
        self.parked.push((from, message));
    }

    /// Parked requests waited long enough: answer with what we know.
    fn expire_parked(&mut self, cx: &mut Context) {
        for (from, message) in std::mem::take(&mut self.parked) {
            let reply = match message {
                Message::Metadata { .. } => {
                    Message::MetadataResponse(ClusterMetadata::clone(&self.metadata))
                }
                Message::Produce(req) if req.acks == crate::protocol::Acks::None => continue,
                Message::Produce(req) => {
                    Message::ProduceResponse(req.refuse_all(ErrorCode::NotLeaderOrFollower))
                }
                Message::Fetch(req) => {
                    let epoch = self.replicas.get(&req.tp).and_then(|r| r.leader_epoch);
                    let connection = req.connection();
                    Message::FetchResponse(crate::protocol::FetchResponse {
                        tp: req.tp,
                        fetch_offset: req.fetch_offset,
                        error: Some(ErrorCode::UnknownLeaderEpoch),
                        leader_epoch: epoch.unwrap_or(0),
                        high_watermark: 0,
                        log_start_offset: 0,
                        records: Vec::new(),
                        diverging_epoch: None,
                        producers: Vec::new(),
                        connection,
                    })
                }
                _ => continue,
            };
            cx.send(from, reply);
        }
    }

    /// Acts on the stored metadata once it belongs to this incarnation: asks to be unfenced if it
    /// was fenced, and takes the role each partition state gives it.
    fn apply_metadata(&mut self, cx: &mut Context) {
        let Registration::Registered { epoch, min_version } = self.registration else {
            return;
        };
        if self.metadata.version < min_version {
            return;
        }
        let me = self.metadata.registration(self.config.id);
        if me.is_some_and(|r| r.epoch == epoch && r.fenced) && !self.unfence_in_flight {
            self.unfence_in_flight = true;
            let hb = self.heartbeat(epoch);
            self.send_to_controller(cx, hb);
        }
        let mine: Vec<PartitionState> = self
            .metadata
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&self.config.id))
            .cloned()
            .collect();
        for ps in mine {
            self.apply_partition_state(cx, &ps);
        }
    }

    fn apply_partition_state(&mut self, cx: &mut Context, ps: &PartitionState) {
        let me = self.config.id;
        let r = self.replicas.entry(ps.tp.clone()).or_default();
        let known = r.leader_epoch;
        if known.is_some_and(|e| ps.leader_epoch < e) {
            return;
        }
        let same_epoch = known == Some(ps.leader_epoch);
        match ps.leader {
            Some(l) if l == me => {
                if same_epoch && r.leader().is_some() {
                    self.adopt_partition_state(cx, ps);
                } else {
                    self.become_leader(cx, ps);
                }
            }
            Some(l) => {
                let already = matches!(&r.role, Role::Follower(f) if f.leader == l) && same_epoch;
                if !already {
                    self.become_follower(cx, &ps.tp, l, ps.leader_epoch);
                }
            }
            None => {
                if !same_epoch || r.leader_epoch.is_none() {
                    self.become_idle(cx, &ps.tp, Some(ps.leader_epoch));
                }
            }
        }
    }

    /// Leaves whatever role the replica had: waiting clients learn the leader is gone.
    fn become_idle(&mut self, cx: &mut Context, tp: &TopicPartition, epoch: Option<LeaderEpoch>) {
        self.step_down(cx, tp);
        if let Some(r) = self.replicas.get_mut(tp) {
            r.role = Role::Idle;
            if epoch.is_some() {
                r.leader_epoch = epoch;
            }
        }
    }

    /// Truncates `tp`'s log to `offset` on disk and in memory, and forgets syncs of what is gone.
    fn truncate(&mut self, cx: &mut Context, tp: &TopicPartition, offset: Offset) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        if let Err(e) = r.log.truncate_to(offset) {
            // Every caller truncates at or above the log start.
            return self.broken(Violation::new("truncate-within-log", e.to_string()).at(tp));
        }
        r.synced_offset = r.synced_offset.min(offset);
        r.sync_requested = r.sync_requested.min(offset);
        self.forget_syncs_above(tp, offset);
        cx.persist(DiskOp::Truncate {
            tp: tp.clone(),
            offset,
        });
    }

    /// Empties `tp`'s log and restarts it at `offset` (possibly below its old start).
    fn restart_log(
        &mut self,
        cx: &mut Context,
        tp: &TopicPartition,
        offset: Offset,
        producers: Vec<ProducerSnapshot>,
    ) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        r.log.reset_to(offset);
        r.log.install_producers(&producers);
        r.synced_offset = offset;
        r.sync_requested = offset;
        self.forget_syncs_above(tp, offset);
        // One write, so that no power loss keeps the emptied log without the producer state.
        let journaled = !self.config.bugs.has(Bug::ProducersNotJournaled);
        cx.persist(if producers.is_empty() || !journaled {
            DiskOp::ResetLog {
                tp: tp.clone(),
                offset,
            }
        } else {
            DiskOp::RestartWithProducers {
                tp: tp.clone(),
                offset,
                producers,
            }
        });
    }

    /// Syncs in flight cover no more of `tp` than `offset`: what lay above it is gone.
    fn forget_syncs_above(&mut self, tp: &TopicPartition, offset: Offset) {
        for (_, marks) in &mut self.pending_syncs {
            for (t, o) in marks.iter_mut() {
                if t == tp {
                    *o = (*o).min(offset);
                }
            }
        }
    }

    /// Moves `tp`'s log start forward on disk and in memory; returns whether it moved.
    fn set_log_start(&mut self, cx: &mut Context, tp: &TopicPartition, offset: Offset) -> bool {
        let Some(r) = self.replicas.get_mut(tp) else {
            return false;
        };
        let moved = r.log.advance_log_start(offset);
        if moved {
            r.synced_offset = r.synced_offset.max(r.log.log_start_offset());
            r.sync_requested = r.sync_requested.max(r.log.log_start_offset());
            cx.persist(DiskOp::SetLogStart {
                tp: tp.clone(),
                offset,
            });
        }
        moved
    }

    /// With `fsync` durability, asks for one sync covering every partition with unsynced records.
    fn request_sync(&mut self, cx: &mut Context) {
        if self.config.durability != Durability::Fsync {
            return;
        }
        let mut marks = Vec::new();
        for (tp, r) in &mut self.replicas {
            let end = r.log.log_end_offset();
            if end > r.sync_requested.max(r.synced_offset) {
                r.sync_requested = end;
                marks.push((tp.clone(), end));
            }
        }
        if !marks.is_empty() {
            self.last_sync_token += 1;
            self.pending_syncs.push_back((self.last_sync_token, marks));
            cx.sync(self.last_sync_token);
        }
    }

    fn apply_retention(&mut self, cx: &mut Context) {
        if self.config.retention.is_unlimited() {
            return;
        }
        // The wall clock may have jumped either way since the last check: a clock set back
        // deletes nothing until it passes the records' timestamps again (their age is at most
        // zero), a clock set forward deletes early; neither can delete an uncommitted record.
        let now = cx.timestamp_ms();
        let led: Vec<(TopicPartition, Offset)> = self
            .replicas
            .iter()
            // `__consumer_offsets` is compacted, never expired (cleanup.policy=compact).
            .filter(|(tp, r)| r.leader().is_some() && tp.topic != OFFSETS_TOPIC)
            .map(|(tp, r)| {
                (
                    tp.clone(),
                    r.log.retention_target(&self.config.retention, now),
                )
            })
            .collect();
        for (tp, target) in led {
            // Retention deletes only committed records: a target past the high watermark would
            // delete records consumers have not been allowed to read, and the log would quietly
            // raise its high watermark to the new start.
            let hw = self.replicas.get(&tp).map_or(0, |r| r.log.high_watermark());
            if let Err(v) = retention_within_committed(target, hw) {
                return self.broken(v.at(&tp));
            }
            if self.set_log_start(cx, &tp, target) {
                cx.reached(Situation::RetentionDelete);
            }
        }
    }

    /// Whether a request names a leader epoch of `tp` newer than we know: we are behind.
    fn is_ahead(&self, tp: &TopicPartition, epoch: Option<LeaderEpoch>) -> bool {
        let known = self.replicas.get(tp).and_then(|r| r.leader_epoch);
        match (epoch, known) {
            (Some(e), Some(k)) => e > k,
            (Some(_), None) => self.metadata.partition(tp).is_some(),
            (None, _) => false,
        }
    }

    fn not_leader(&self, tp: &TopicPartition) -> ErrorCode {
        if self.replicas.contains_key(tp) || self.metadata.partition(tp).is_some() {
            ErrorCode::NotLeaderOrFollower
        } else {
            ErrorCode::UnknownTopicOrPartition
        }
    }
}

/// Retention may move a log start up to the high watermark, never past it.
fn retention_within_committed(target: Offset, hw: Offset) -> crate::log::Checked {
    crate::log::ensure(target <= hw, "retention-below-hw", || {
        format!("retention would start the log at {target}, above the high watermark {hw}")
    })
}

/// Two parked requests are the same if a newer one supersedes the older.
fn same_request(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Metadata { .. }, Message::Metadata { .. }) => true,
        (Message::Fetch(x), Message::Fetch(y)) => x.tp == y.tp,
        (Message::Produce(x), Message::Produce(y)) => x.correlation == y.correlation,
        _ => false,
    }
}

/// The incarnation of a broker's `run`-th start, for drivers that count starts: runs are spaced
/// `2^32` apart, so the incarnations a run goes through when it starts over without restarting
/// ([`next_incarnation`]) stay below the next run's.
pub const fn run_incarnation(run: u64) -> u64 {
    run << 32
}

/// The incarnation a broker registers as when it starts over without restarting: the next
/// number up, so a run's later incarnations are newer than its earlier ones, as a restart's
/// are. The controller ignores a registration from an incarnation below the live registered
/// one (a late request of a run that is gone).
fn next_incarnation(incarnation: u64) -> u64 {
    incarnation.saturating_add(1)
}
