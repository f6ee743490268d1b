//! The controller: broker registration and liveness (broker epochs, sessions, fencing), leader
//! election from the ISR, ISR changes checked against the partition epoch, and propagation of
//! partition state to brokers, and blocks of producer ids for brokers to hand out. It syncs every
//! change before anyone hears of it, so a controller that crashes and recovers never contradicts
//! what it said (two leaders in one epoch, say, or one producer id given twice).

use super::{Bug, Context, ControllerConfig, ControllerImage, DiskOp, Situation, Timer};
use crate::log::{ensure, Checked};
use crate::protocol::{
    AlterPartitionRequest, BrokerEpoch, BrokerId, BrokerRegistration, ClusterMetadata,
    CreateTopicRequest, CreateTopicResponse, ErrorCode, Message, NodeId, PartitionState,
    ProducerIdBlock, QuorumEpoch, TopicPartition,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Partitions of a topic created without a count (Kafka's `num.partitions`).
pub const DEFAULT_PARTITIONS: u32 = 1;
/// Replication factor of a topic created without one, capped by the live brokers.
pub const DEFAULT_REPLICATION_FACTOR: u32 = 3;
/// Most partitions one CreateTopics may ask for: every partition is a record of the metadata.
pub const MAX_PARTITIONS: u32 = 1_000;

/// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn legal_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Controller {
    config: Arc<ControllerConfig>,
    image: ControllerImage,
    /// Highest metadata version known durable.
    synced_version: u64,
    /// Messages that reveal a change not yet durable, with the version they wait for.
    outbox: Vec<(u64, NodeId, Message)>,
    /// Push metadata at start: after a restart brokers may have missed pushes. A bootstrapped
    /// cluster's brokers already hold it.
    announce_on_start: bool,
    /// Situations reached by the change being made, reported when it is committed (the helpers
    /// that elect and fence have no context). Always empty between steps.
    reached: Vec<Situation>,
    /// The quorum epoch this controller is active in, sent with its metadata (0 for a controller
    /// that stands alone, as the models' does).
    controller_epoch: QuorumEpoch,
    /// Per broker, the incarnations that newer registrations replaced, latest last (at most
    /// `RETIRED_INCARNATIONS`): a registration from one is a late request of a process that is
    /// gone, and is ignored. Memory only: a controller that takes over (or restarts) starts
    /// without them, and takes such a request for a restart, as before.
    retired: BTreeMap<BrokerId, Vec<u64>>,
}

/// How many replaced incarnations the controller remembers per broker.
pub const RETIRED_INCARNATIONS: usize = 4;

impl Controller {
    /// A new cluster: no broker registered, every partition leaderless with its full assignment as
    /// ISR (all logs are empty, so all replicas are in sync).
    pub fn new(config: Arc<ControllerConfig>) -> Self {
        let partitions = config
            .topics
            .iter()
            .flat_map(|t| {
                t.assignment.iter().enumerate().map(|(p, replicas)| {
                    let mut isr = replicas.clone();
                    isr.sort_unstable();
                    PartitionState {
                        tp: TopicPartition::new(t.name.clone(), p as u32),
                        replicas: replicas.clone(),
                        leader: None,
                        leader_epoch: 0,
                        isr,
                        partition_epoch: 0,
                    }
                })
            })
            .collect();
        let image = ControllerImage {
            metadata: ClusterMetadata {
                version: 0,
                brokers: Vec::new(),
                partitions,
            },
            next_broker_epoch: 1,
            next_producer_id: 0,
        };
        Self::recover(config, image)
    }

    /// A cluster past its first boot: every configured broker registered (epochs 1..), each
    /// partition led by its first replica in epoch 0. The model checker starts here to spend its
    /// state budget on faults rather than on the order of first registrations.
    pub fn bootstrapped(config: Arc<ControllerConfig>) -> Self {
        let mut c = Self::new(config);
        for &b in &c.config.brokers.clone() {
            c.image.metadata.brokers.push(BrokerRegistration {
                broker: b,
                epoch: c.image.next_broker_epoch,
                fenced: false,
                // A bootstrapped broker's first run (`Broker::bootstrapped`).
                incarnation: 0,
            });
            c.image.next_broker_epoch += 1;
        }
        for p in &mut c.image.metadata.partitions {
            p.leader = p.replicas.first().copied();
        }
        c.image.metadata.version = 1;
        c.synced_version = 1;
        c.announce_on_start = false;
        c
    }

    /// The bootstrapped cluster's controller, active in quorum epoch `controller_epoch` (the
    /// quorum's bootstrapped leader, whose brokers already hold this metadata).
    pub fn bootstrapped_in_epoch(
        config: Arc<ControllerConfig>,
        controller_epoch: QuorumEpoch,
    ) -> Self {
        let mut c = Self::bootstrapped(config);
        c.controller_epoch = controller_epoch;
        c
    }

    pub fn recover(config: Arc<ControllerConfig>, image: ControllerImage) -> Self {
        Controller {
            config,
            synced_version: image.metadata.version,
            image,
            outbox: Vec::new(),
            announce_on_start: true,
            reached: Vec::new(),
            controller_epoch: 0,
            retired: BTreeMap::new(),
        }
    }

    /// A quorum voter becomes the active controller of `controller_epoch`: `image` is the
    /// metadata its log committed, all of it (its own epoch's first entry is committed, so
    /// every earlier one is). It restarts every live broker's session and tells every broker
    /// the metadata under its epoch; a change it makes later is announced once committed (the
    /// embedding quorum reports that through `on_persisted`).
    pub fn activate(
        config: Arc<ControllerConfig>,
        image: ControllerImage,
        controller_epoch: QuorumEpoch,
        cx: &mut Context,
    ) -> Self {
        let mut c = Self::recover(config, image);
        c.controller_epoch = controller_epoch;
        c.on_start(cx);
        c
    }

    pub fn controller_epoch(&self) -> QuorumEpoch {
        self.controller_epoch
    }

    pub fn config_arc(&self) -> Arc<ControllerConfig> {
        self.config.clone()
    }

    pub fn image(&self) -> &ControllerImage {
        &self.image
    }

    pub fn metadata(&self) -> &ClusterMetadata {
        &self.image.metadata
    }

    /// What must hold of the controller's state after every entry point: each partition's ISR
    /// is a sorted set of its replicas, its leader is a live member of it; registrations are one
    /// per broker with epochs below the next to give; nothing waits for a version already synced.
    pub fn check_invariants(&self) -> Checked {
        let md = &self.image.metadata;
        for ps in &md.partitions {
            let sorted = ps.isr.windows(2).all(|w| w[0] < w[1]);
            let stray = ps.isr.iter().find(|b| !ps.replicas.contains(b));
            ensure(sorted && stray.is_none(), "isr-within-replicas", || {
                format!("{}: ISR {:?}, replicas {:?}", ps.tp, ps.isr, ps.replicas)
            })?;
            // A fenced broker leaves every ISR it is in as it is fenced, unless it is the last
            // member (kept so that only it can lead again cleanly), and may join none until it
            // is live again: an ISR member counts towards `min.insync.replicas` and may be
            // elected, which a broker the controller no longer hears from must not.
            // (Brokers not registered yet are neither: a new topic's ISR names its replicas.)
            let fenced = ps
                .isr
                .iter()
                .find(|b| md.registration(**b).is_some_and(|r| r.fenced));
            ensure(
                ps.isr.len() < 2 || fenced.is_none(),
                "isr-members-live",
                || format!("{}: ISR {:?} holds fenced broker {fenced:?}", ps.tp, ps.isr),
            )?;
            if let Some(l) = ps.leader {
                ensure(
                    ps.isr.contains(&l) && self.live(l),
                    "leader-live-in-isr",
                    || {
                        let reg = md.registration(l);
                        format!(
                            "{}: leader {l}, ISR {:?}, registration {reg:?}",
                            ps.tp, ps.isr
                        )
                    },
                )?;
            }
        }
        for w in md.brokers.windows(2) {
            ensure(
                w[0].broker < w[1].broker,
                "one-registration-per-broker",
                || format!("registrations {:?} and {:?}", w[0], w[1]),
            )?;
        }
        let next = self.image.next_broker_epoch;
        let late = md.brokers.iter().find(|r| r.epoch >= next);
        ensure(late.is_none(), "broker-epoch-issued", || {
            format!("registration {late:?}, next broker epoch {next}")
        })?;
        ensure(
            self.reached.is_empty(),
            "controller-reached-reported",
            || format!("situations {:?} never reported", self.reached),
        )?;
        ensure(
            self.synced_version <= md.version
                && self.outbox.iter().all(|(v, _, _)| *v > self.synced_version),
            "controller-outbox-unsynced",
            || format!("synced v{}, image v{}", self.synced_version, md.version),
        )
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        for b in self.image.metadata.brokers.clone() {
            if !b.fenced {
                cx.set_timer(
                    Timer::SessionExpiry(b.broker),
                    self.config.session_timeout_ms,
                );
            }
        }
        // Brokers may have missed pushes while we were down; an equal version is ignored.
        if self.announce_on_start && self.image.metadata.version > 0 {
            cx.reached(Situation::ControllerFailover);
            self.push_metadata(cx);
        }
        // `None` (the rebalance off) sets no timer.
        cx.set_timer(Timer::LeaderRebalance, self.config.leader_rebalance_ms);
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::RegisterBroker {
                broker,
                lost_data,
                incarnation,
            } => self.on_register(cx, from, broker, lost_data, incarnation),
            Message::Heartbeat {
                broker,
                broker_epoch,
                metadata_version,
                controller_epoch,
            } => {
                self.on_heartbeat(cx, from, broker, broker_epoch);
                self.resend_missed_metadata(cx, from, controller_epoch, metadata_version);
            }
            Message::AlterPartition(req) => self.on_alter_partition(cx, from, req),
            Message::AllocateProducerIds {
                broker,
                broker_epoch,
            } => self.on_allocate_producer_ids(cx, from, broker, broker_epoch),
            Message::ForwardCreateTopic { client, request } => {
                self.on_create_topic(cx, from, client, request)
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::SessionExpiry(broker) => {
                let live = self.live(broker);
                if live {
                    self.set_fenced(broker, true);
                    self.remove_from_partitions(broker);
                    self.commit(cx);
                }
            }
            Timer::LeaderRebalance => {
                self.rebalance_leaders(cx);
                if !self.config.bugs.has(Bug::RebalanceNotRearmed) {
                    cx.set_timer(Timer::LeaderRebalance, self.config.leader_rebalance_ms);
                }
            }
            _ => {}
        }
    }

    /// Kafka's auto leader rebalance: each partition led by another broker than its preferred
    /// replica (the first of its assignment) goes back to it where that replica is live and in
    /// the ISR (so it holds every committed record: a clean election), in a new leader epoch.
    /// After a failover, leadership otherwise stays where it went, and a cluster whose brokers
    /// registered one by one keeps every partition on the first broker up. One metadata change
    /// for all of them; the old leader learns it from the push and follows, like a leader the
    /// controller fenced.
    fn rebalance_leaders(&mut self, cx: &mut Context) {
        let mut moved = false;
        for i in 0..self.image.metadata.partitions.len() {
            let ps = &self.image.metadata.partitions[i];
            let Some(&preferred) = ps.replicas.first() else {
                continue;
            };
            let in_sync =
                ps.isr.contains(&preferred) || self.config.bugs.has(Bug::PreferredOutOfIsr);
            let movable =
                ps.leader.is_some_and(|l| l != preferred) && in_sync && self.live(preferred);
            if !movable {
                continue;
            }
            let ps = &mut self.image.metadata.partitions[i];
            if !ps.isr.contains(&preferred) {
                // Only with the bug switch: the lagging replica is taken into the ISR.
                ps.isr.push(preferred);
                ps.isr.sort_unstable();
            }
            ps.leader = Some(preferred);
            ps.leader_epoch += 1;
            ps.partition_epoch += 1;
            self.reached.push(Situation::PreferredElection);
            moved = true;
        }
        if moved {
            self.commit(cx);
        }
    }

    pub fn on_persisted(&mut self, cx: &mut Context, token: u64) {
        self.synced_version = self.synced_version.max(token);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|(v, _, _)| *v <= self.synced_version);
        self.outbox = waiting;
        for (_, to, message) in ready {
            cx.send(to, message);
        }
    }

    fn on_register(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        broker: BrokerId,
        lost_data: bool,
        incarnation: u64,
    ) {
        if broker != from || !self.config.brokers.contains(&broker) {
            return;
        }
        // The run we registered asking again: its retry crossed our answer, or the network
        // delivered an old request late (seconds, after a partition heals). Its memory is intact,
        // so it is answered the registration it has. A new epoch here fenced the live broker and
        // took it out of every ISR, for nothing. (Kafka gives even a repeated registration a new
        // epoch: over one TCP connection a request cannot overtake the answer to a later one.)
        let registered = self.image.metadata.registration(broker);
        // A request of a process a newer registration replaced (a broker fenced, or restarted,
        // registers as a new incarnation), delivered late: that process is gone. Taken for a new
        // incarnation, it fenced the live broker and took it out of every ISR, and the live one
        // registered again (Kafka refuses another incarnation while the registered one's session
        // lasts, DUPLICATE_BROKER_REGISTRATION). Not answered: the answer would reach the live
        // process, which did not ask. Such a request is one of an incarnation this controller
        // saw replaced, or one below the registered incarnation (drivers number a broker's runs
        // upwards): a run whose own registration never reached this controller, or was made by
        // a deposed one, and whose request a partition held until after the live run registered
        // (seed 523007066: 19 s late, the live broker fenced in the calm).
        //
        // Only while the registered incarnation is live, though: the one a controller took for
        // the newer may be the older, when the older's registration was never committed (made
        // by a deposed controller) and its late request came after the newer's. The live
        // process was then ignored for good, and stayed out of every ISR (seed 38620797). Once
        // the registered one's session expires it protects no live broker, and an incarnation
        // it replaced registers again; so does a live run numbered below it (a real broker's
        // wall clock set back across a restart).
        let replaced = self.retired.get(&broker);
        let stale = registered.filter(|r| !r.fenced).is_some_and(|r| {
            incarnation < r.incarnation || replaced.is_some_and(|old| old.contains(&incarnation))
        });
        if stale {
            return;
        }
        let repeated = registered
            .filter(|r| r.incarnation == incarnation)
            .map(|r| r.epoch);
        if let Some(epoch) = repeated {
            let reply = Message::RegisterBrokerResponse {
                broker_epoch: epoch,
                metadata_version: self.image.metadata.version,
            };
            self.emit(cx, from, reply);
            return;
        }
        // A new incarnation: whatever the old one held in memory may be gone, so it leaves every
        // ISR (KIP-903) before the new one is registered.
        if self.image.metadata.registration(broker).is_some() {
            self.set_fenced(broker, true);
            self.remove_from_partitions(broker);
        }
        // A broker whose recovery cut durable records may lack committed ones: it leaves every
        // ISR even as the last member. Such a partition stays offline (unless unclean election
        // is allowed) rather than come back without acknowledged records (bug J).
        if lost_data && !self.config.bugs.has(Bug::LastReplicaStanding) {
            self.drop_last_member(broker);
        }
        let epoch = self.image.next_broker_epoch;
        self.image.next_broker_epoch += 1;
        let regs = &mut self.image.metadata.brokers;
        if let Some(old) = regs.iter().find(|r| r.broker == broker) {
            let retired = self.retired.entry(broker).or_default();
            // Registered again, it is no longer retired.
            retired.retain(|&i| i != incarnation);
            retired.push(old.incarnation);
            let excess = retired.len().saturating_sub(RETIRED_INCARNATIONS);
            retired.drain(..excess);
        }
        regs.retain(|r| r.broker != broker);
        regs.push(BrokerRegistration {
            broker,
            epoch,
            fenced: false,
            incarnation,
        });
        regs.sort_unstable();
        self.elect_leaderless();
        self.commit(cx);
        cx.set_timer(Timer::SessionExpiry(broker), self.config.session_timeout_ms);
        let reply = Message::RegisterBrokerResponse {
            broker_epoch: epoch,
            metadata_version: self.image.metadata.version,
        };
        self.emit(cx, from, reply);
    }

    fn on_heartbeat(&mut self, cx: &mut Context, from: NodeId, broker: BrokerId, epoch: u64) {
        let answer = |fenced| Message::HeartbeatResponse {
            broker_epoch: epoch,
            fenced,
        };
        let Some(reg) = self.image.metadata.registration(broker).cloned() else {
            self.emit(cx, from, answer(true));
            return;
        };
        if reg.epoch != epoch {
            self.emit(cx, from, answer(true));
            return;
        }
        if reg.fenced {
            self.set_fenced(broker, false);
            self.elect_leaderless();
            self.commit(cx);
        }
        cx.set_timer(Timer::SessionExpiry(broker), self.config.session_timeout_ms);
        self.emit(cx, from, answer(false));
    }

    /// Pushes are sent once; a broker whose connection broke while one was queued would keep its
    /// old metadata until the next change (a broker that saw every partition leaderless stayed
    /// so for good: seed 17726). Its heartbeat says what it holds; a stale one is sent ours. So
    /// is one that holds our version under an older controller epoch: it missed our
    /// announcement on becoming active, and would keep following a deposed controller's epoch.
    fn resend_missed_metadata(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        controller_epoch: QuorumEpoch,
        version: u64,
    ) {
        let behind = (controller_epoch, version) < (self.controller_epoch, self.synced_version);
        if self.config.brokers.contains(&from) && behind {
            let md = self.update_metadata();
            self.emit(cx, from, md);
        }
    }

    fn on_alter_partition(&mut self, cx: &mut Context, from: NodeId, req: AlterPartitionRequest) {
        let result = self.check_alter_partition(&req);
        let result = match result {
            Ok(()) => {
                let ps = self.partition_mut(&req.tp).expect("checked above");
                let mut isr: Vec<_> = req.new_isr.iter().map(|(b, _)| *b).collect();
                isr.sort_unstable();
                isr.dedup();
                let grew = isr.iter().any(|b| !ps.isr.contains(b));
                let shrank = ps.isr.iter().any(|b| !isr.contains(b));
                ps.isr = isr;
                ps.partition_epoch += 1;
                let ps = ps.clone();
                self.reached.extend(grew.then_some(Situation::IsrExpand));
                self.reached.extend(shrank.then_some(Situation::IsrShrink));
                self.commit(cx);
                Ok(ps)
            }
            Err(e) => Err(e),
        };
        let reply = Message::AlterPartitionResponse {
            tp: req.tp,
            request_partition_epoch: req.partition_epoch,
            result,
        };
        self.emit(cx, from, reply);
    }

    /// Gives the broker the next block of producer ids. The block's end is part of the committed
    /// change, so the answer waits for the sync, and a controller that restarts starts after
    /// every block it ever gave (one given but never answered, lost with a crash, is given
    /// again: nobody saw it). Only a registered incarnation is served: a request of an older
    /// one, delivered late, would waste a block.
    fn on_allocate_producer_ids(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    ) {
        let registered = self.image.metadata.registration(broker).map(|r| r.epoch);
        let result = if broker != from || registered != Some(broker_epoch) {
            Err(ErrorCode::StaleBrokerEpoch)
        } else {
            let block = ProducerIdBlock {
                first: self.image.next_producer_id,
                count: self.config.producer_id_block_size.max(1),
            };
            self.image.next_producer_id = block.first.saturating_add(block.count);
            self.reached.push(Situation::ProducerIdBlockAllocated);
            self.commit(cx);
            Ok(block)
        };
        self.emit(cx, from, Message::AllocateProducerIdsResponse { result });
    }

    /// Creates a topic a broker forwarded from `client`: checked, assigned, committed, and only
    /// then answered (through `emit`, which holds the answer until the change is committed), so
    /// a client told "created" finds the topic after any controller failover. An error answer
    /// waits too if earlier changes are not committed yet: "already exists" may be about a topic
    /// this controller is still committing.
    fn on_create_topic(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        client: NodeId,
        req: CreateTopicRequest,
    ) {
        let result = self.assign_topic(&req);
        if let (Ok(assignment), false) = (&result, req.validate_only) {
            for (p, replicas) in assignment.iter().enumerate() {
                let mut isr = replicas.clone();
                isr.sort_unstable();
                self.image.metadata.partitions.push(PartitionState {
                    tp: TopicPartition::new(req.topic.clone(), p as u32),
                    replicas: replicas.clone(),
                    leader: replicas.first().copied(),
                    leader_epoch: 0,
                    isr,
                    partition_epoch: 0,
                });
            }
            self.image
                .metadata
                .partitions
                .sort_by(|a, b| a.tp.cmp(&b.tp));
            self.reached.push(Situation::TopicCreated);
            self.commit(cx);
        }
        let response = CreateTopicResponse {
            correlation: req.correlation,
            topic: req.topic,
            result,
        };
        let reply = Message::ForwardCreateTopicResponse { client, response };
        if self.config.bugs.has(Bug::CreateTopicBeforeCommit) {
            cx.send(from, reply);
        } else {
            self.emit(cx, from, reply);
        }
    }

    /// The replicas of each partition of the topic `req` asks for, or why it cannot be created.
    /// Round robin over the live brokers as Kafka assigns (without racks): partition `p`'s
    /// replicas are the `r` live brokers from position `start + p` on, `start` the number of
    /// partitions already in the cluster, so that successive topics spread their leaders.
    fn assign_topic(&self, req: &CreateTopicRequest) -> Result<Vec<Vec<BrokerId>>, ErrorCode> {
        let md = &self.image.metadata;
        if !legal_topic_name(&req.topic) {
            return Err(ErrorCode::InvalidTopic);
        }
        if md.partitions.iter().any(|p| p.tp.topic == req.topic) {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        let live: Vec<BrokerId> = md
            .brokers
            .iter()
            .filter(|r| !r.fenced)
            .map(|r| r.broker)
            .collect();
        let partitions = req.partitions.unwrap_or(DEFAULT_PARTITIONS);
        let replication = req
            .replication_factor
            .unwrap_or_else(|| DEFAULT_REPLICATION_FACTOR.min(live.len() as u32).max(1));
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(ErrorCode::InvalidPartitions);
        }
        if replication == 0 || replication as usize > live.len() {
            return Err(ErrorCode::InvalidReplicationFactor);
        }
        let start = md.partitions.len();
        Ok((0..partitions as usize)
            .map(|p| {
                (0..replication as usize)
                    .map(|j| live[(start + p + j) % live.len()])
                    .collect()
            })
            .collect())
    }

    fn check_alter_partition(&self, req: &AlterPartitionRequest) -> Result<(), ErrorCode> {
        let md = &self.image.metadata;
        let ps = md
            .partition(&req.tp)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if ps.leader != Some(req.leader) {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if req.leader_epoch != ps.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        let leader_reg = md.registration(req.leader);
        if leader_reg.map(|r| r.epoch) != Some(req.leader_broker_epoch) {
            return Err(ErrorCode::StaleBrokerEpoch);
        }
        if req.partition_epoch != ps.partition_epoch {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        if !req.new_isr.iter().any(|(b, _)| *b == req.leader) {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        // Members joining must be live in the very incarnation the leader saw catch up (KIP-903).
        let stale_ok = self.config.bugs.has(Bug::StaleBrokerEpoch);
        for (b, epoch) in &req.new_isr {
            if ps.isr.contains(b) {
                continue;
            }
            if !ps.replicas.contains(b) {
                return Err(ErrorCode::UnknownTopicOrPartition);
            }
            match md.registration(*b) {
                Some(r) if r.epoch == *epoch && !r.fenced => {}
                // Bug I: an older incarnation's catch-up counts for the registered one.
                Some(r) if stale_ok && r.epoch > *epoch && !r.fenced => {}
                _ => return Err(ErrorCode::StaleBrokerEpoch),
            }
        }
        Ok(())
    }

    fn live(&self, broker: BrokerId) -> bool {
        self.image
            .metadata
            .registration(broker)
            .is_some_and(|r| !r.fenced)
    }

    fn set_fenced(&mut self, broker: BrokerId, fenced: bool) {
        for r in &mut self.image.metadata.brokers {
            if r.broker == broker {
                if fenced && !r.fenced {
                    self.reached.push(Situation::BrokerFenced);
                }
                r.fenced = fenced;
            }
        }
    }

    fn unclean_allowed(&self) -> bool {
        self.config.unclean_leader_election || self.config.bugs.has(Bug::UncleanElection)
    }

    /// The first live replica in assignment order that is in the ISR; failing that, with unclean
    /// election allowed, the first live replica at all (which becomes the whole ISR).
    fn elect(&self, ps: &PartitionState) -> Option<(BrokerId, Option<Vec<BrokerId>>)> {
        let clean = ps
            .replicas
            .iter()
            .find(|b| ps.isr.contains(b) && self.live(**b));
        if let Some(&b) = clean {
            return Some((b, None));
        }
        if self.unclean_allowed() {
            let any = ps.replicas.iter().find(|b| self.live(**b));
            return any.map(|&b| (b, Some(vec![b])));
        }
        None
    }

    /// The broker is no longer live: it leaves every ISR (unless it is the last member, which
    /// stays so that only it can lead again cleanly), and partitions it led get a new leader.
    fn remove_from_partitions(&mut self, broker: BrokerId) {
        for i in 0..self.image.metadata.partitions.len() {
            let mut ps = self.image.metadata.partitions[i].clone();
            let mut changed = false;
            if ps.isr.contains(&broker) && ps.isr.len() > 1 {
                ps.isr.retain(|b| *b != broker);
                self.reached.push(Situation::IsrShrink);
                changed = true;
            }
            if ps.leader == Some(broker) {
                self.set_leader(&mut ps);
                changed = true;
            }
            if changed {
                ps.partition_epoch += 1;
                self.image.metadata.partitions[i] = ps;
            }
        }
    }

    fn drop_last_member(&mut self, broker: BrokerId) {
        for ps in &mut self.image.metadata.partitions {
            if ps.isr == [broker] {
                ps.isr.clear();
                if ps.leader.take().is_some() {
                    ps.leader_epoch += 1;
                }
                ps.partition_epoch += 1;
            }
        }
    }

    fn elect_leaderless(&mut self) {
        for i in 0..self.image.metadata.partitions.len() {
            let mut ps = self.image.metadata.partitions[i].clone();
            if ps.leader.is_none() && self.elect(&ps).is_some() {
                self.set_leader(&mut ps);
                ps.partition_epoch += 1;
                self.image.metadata.partitions[i] = ps;
            }
        }
    }

    fn set_leader(&mut self, ps: &mut PartitionState) {
        let elected = self.elect(ps);
        ps.leader = elected.as_ref().map(|(b, _)| *b);
        match elected {
            Some((_, Some(isr))) => {
                ps.isr = isr;
                self.reached.push(Situation::UncleanElection);
            }
            Some((_, None)) => self.reached.push(Situation::CleanElection),
            None => {}
        }
        ps.leader_epoch += 1;
    }

    fn partition_mut(&mut self, tp: &TopicPartition) -> Option<&mut PartitionState> {
        self.image
            .metadata
            .partitions
            .iter_mut()
            .find(|p| &p.tp == tp)
    }

    /// Makes the current state the next version: persisted, synced, then pushed to every broker.
    fn commit(&mut self, cx: &mut Context) {
        for situation in self.reached.drain(..) {
            cx.reached(situation);
        }
        self.image.metadata.version += 1;
        cx.persist(DiskOp::ControllerState(self.durable_image()));
        cx.sync(self.image.metadata.version);
        self.push_metadata(cx);
    }

    /// What a commit writes: the whole state, but for the bug switch that leaves out how far
    /// producer ids went (the image then says none was given, as it did at first).
    fn durable_image(&self) -> ControllerImage {
        let mut image = self.image.clone();
        if self.config.bugs.has(Bug::ProducerIdReuse) {
            image.next_producer_id = 0;
        }
        image
    }

    fn push_metadata(&mut self, cx: &mut Context) {
        let targets: Vec<BrokerId> = self.config.brokers.clone();
        for b in targets {
            let msg = self.update_metadata();
            self.emit(cx, b, msg);
        }
    }

    fn update_metadata(&self) -> Message {
        Message::UpdateMetadata {
            controller_epoch: self.controller_epoch,
            metadata: self.image.metadata.clone(),
        }
    }

    fn emit(&mut self, cx: &mut Context, to: NodeId, message: Message) {
        let version = self.image.metadata.version;
        if version <= self.synced_version {
            cx.send(to, message);
        } else {
            self.outbox.push((version, to, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{BugSet, Effect, TopicSpec};

    fn controller(bugs: BugSet) -> Controller {
        Controller::new(Arc::new(ControllerConfig {
            id: 9,
            brokers: vec![0],
            topics: vec![TopicSpec::spread("t", 1, 1, &[0])],
            session_timeout_ms: None,
            unclean_leader_election: false,
            producer_id_block_size: 10,
            leader_rebalance_ms: None,
            bugs,
        }))
    }

    /// Registers broker 0 (again: as a restarted process, a new incarnation), completing the
    /// controller's syncs.
    fn register(c: &mut Controller, lost_data: bool) {
        let incarnation = c
            .metadata()
            .registration(0)
            .map_or(1, |r| r.incarnation + 1);
        register_as(c, lost_data, incarnation);
    }

    fn register_as(c: &mut Controller, lost_data: bool, incarnation: u64) -> Vec<Effect> {
        let mut cx = Context::new(0);
        let register = Message::RegisterBroker {
            broker: 0,
            lost_data,
            incarnation,
        };
        c.on_message(&mut cx, 0, register);
        c.on_persisted(&mut cx, c.metadata().version);
        cx.take_effects()
    }

    fn partition(c: &Controller) -> PartitionState {
        c.metadata().partitions[0].clone()
    }

    /// A registration starts the broker's session: a broker that dies before its first
    /// heartbeat is still fenced when the session runs out, and the partitions it was elected
    /// to lead move on (a session timer armed only by heartbeats would keep it live for good).
    #[test]
    fn a_registration_starts_the_brokers_session() {
        let mut c = Controller::new(Arc::new(ControllerConfig {
            session_timeout_ms: Some(2_000),
            ..(*controller(BugSet::none()).config).clone()
        }));
        let started = register_as(&mut c, false, 1).into_iter().any(|e| {
            e == Effect::SetTimer {
                timer: Timer::SessionExpiry(0),
                after_ms: 2_000,
            }
        });
        assert!(started, "no session timer at registration");
    }

    fn answered_epoch(effects: &[Effect]) -> Option<BrokerEpoch> {
        effects.iter().find_map(|e| match e {
            Effect::Send {
                message: Message::RegisterBrokerResponse { broker_epoch, .. },
                ..
            } => Some(*broker_epoch),
            _ => None,
        })
    }

    /// A registration repeated by the run that made it (its retry crossed our answer, or the
    /// network held the request for seconds) is answered the registration the broker has: no new
    /// epoch, no change. A new epoch fenced the live broker and took it out of every ISR (a
    /// request delivered 8 s after a partition healed did).
    #[test]
    fn a_registration_repeated_by_the_same_run_changes_nothing() {
        let mut c = controller(BugSet::none());
        let first = answered_epoch(&register_as(&mut c, false, 7)).expect("answered");
        let before = c.metadata().clone();
        let again = answered_epoch(&register_as(&mut c, false, 7));
        assert_eq!(again, Some(first));
        assert_eq!(
            c.metadata(),
            &before,
            "a repeated registration changed the metadata"
        );
        // A restarted process (another incarnation) is a new registration, in a new epoch.
        let restarted = answered_epoch(&register_as(&mut c, false, 8)).expect("answered");
        assert!(restarted > first);
        assert_eq!(
            c.metadata().registration(0).map(|r| r.epoch),
            Some(restarted)
        );
    }

    /// A registration from an incarnation a newer one replaced is a late request of a process
    /// that is gone (a partition held it in a stalled connection): ignored, unanswered. Taken
    /// for a restart, it fenced the live broker in the calm after a run, which then registered
    /// again (seed 1619 with brokers cut off from the cluster, 2026-12-07).
    #[test]
    fn a_late_registration_of_a_replaced_incarnation_is_ignored() {
        let mut c = controller(BugSet::none());
        register_as(&mut c, false, 7);
        register_as(&mut c, false, 8);
        let live = answered_epoch(&register_as(&mut c, false, 9)).expect("answered");
        let before = c.metadata().clone();
        assert_eq!(c.retired.get(&0), Some(&vec![7, 8]));
        // The one replaced last, and one replaced before it (two restarts ago).
        for old in [8, 7] {
            let late = register_as(&mut c, false, old);
            assert_eq!(answered_epoch(&late), None, "{old} answered: {late:?}");
            assert_eq!(
                c.metadata(),
                &before,
                "the late registration of {old} changed the metadata"
            );
            assert_eq!(registered_epoch(&c), live);
        }
        // Only the last few are remembered; an earlier run is still ignored, as it is numbered
        // below the live one.
        for incarnation in 10..10 + RETIRED_INCARNATIONS as u64 {
            register_as(&mut c, false, incarnation);
        }
        assert_eq!(c.retired[&0].len(), RETIRED_INCARNATIONS);
        assert!(!c.retired[&0].contains(&7));
        assert_eq!(answered_epoch(&register_as(&mut c, false, 7)), None);
    }

    /// A late request of an earlier run this controller never registered (its registration
    /// went to a controller that was then deposed, or never arrived): the live run registered
    /// meanwhile, with a higher number, and the late request is ignored, unanswered. Taken for
    /// a restart, it fenced the live broker in the calm after a run, 19 s after that earlier
    /// run died (seed 523007066); or, with the live run then taken for the replaced one, the
    /// live broker was ignored for good (seed 38620797).
    #[test]
    fn a_late_registration_of_an_earlier_run_is_ignored_though_never_registered() {
        let mut c = controller(BugSet::none());
        let live = answered_epoch(&register_as(&mut c, false, 4)).expect("registered");
        let before = c.metadata().clone();
        assert_eq!(c.retired.get(&0), None);
        let late = register_as(&mut c, false, 3);
        assert_eq!(answered_epoch(&late), None, "answered: {late:?}");
        assert_eq!(c.metadata(), &before, "the late registration changed it");
        assert_eq!(registered_epoch(&c), live);
        // A newer run (a restart, or the live run starting over) is registered at once.
        let newer = answered_epoch(&register_as(&mut c, false, 5)).expect("registered");
        assert!(newer > live);
    }

    /// A run numbered below the registered one (a real broker's wall clock set back across a
    /// restart) is ignored while the registered one's session lasts, and registers once it
    /// expires; then the one it replaced is retired, and its late requests are ignored. Ignored
    /// for good, the live broker stayed out of every ISR (seed 38620797, where the registered
    /// run was a late request of an earlier run).
    #[test]
    fn a_live_run_numbered_below_the_registered_one_registers_once_that_one_expires() {
        let mut c = controller(BugSet::none());
        let dead = answered_epoch(&register_as(&mut c, false, 4)).expect("registered");
        assert_eq!(answered_epoch(&register_as(&mut c, false, 3)), None);
        assert_eq!(registered_epoch(&c), dead);
        // The registered process sends no heartbeat: its session expires and it is fenced.
        c.on_timer(&mut Context::new(0), Timer::SessionExpiry(0));
        let live = answered_epoch(&register_as(&mut c, false, 3)).expect("registered");
        assert!(live > dead);
        assert_eq!(registered_epoch(&c), live);
        assert_eq!(c.retired.get(&0), Some(&vec![4]));
        // Its retries are repeats now, answered the registration it has; the replaced run's
        // late request is ignored.
        assert_eq!(answered_epoch(&register_as(&mut c, false, 3)), Some(live));
        assert_eq!(answered_epoch(&register_as(&mut c, false, 4)), None);
    }

    #[test]
    fn a_last_replica_that_lost_data_is_not_elected_again() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        assert_eq!(
            (partition(&c).leader, partition(&c).isr),
            (Some(0), vec![0])
        );
        // A clean restart: the last ISR member leads again.
        register(&mut c, false);
        assert_eq!(partition(&c).leader, Some(0));
        // A restart whose recovery cut durable records: offline rather than lossy.
        register(&mut c, true);
        assert_eq!((partition(&c).leader, partition(&c).isr), (None, vec![]));
    }

    /// A broker whose session expires is fenced, not only taken out of the ISRs it shares: as
    /// the last member of an ISR it stays there (nothing else holds every committed record) but
    /// must not be elected again while it is silent — the partition goes offline instead of
    /// naming a dead leader in a new epoch, and no new topic's election may pick it either.
    #[test]
    fn an_expired_session_fences_the_broker_and_a_last_member_is_not_reelected() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        let epoch = partition(&c).leader_epoch;
        c.on_timer(&mut Context::new(0), Timer::SessionExpiry(0));
        let reg = c.metadata().registration(0).expect("registered").clone();
        assert!(reg.fenced, "{reg:?}");
        let p = partition(&c);
        assert_eq!((p.leader, p.isr), (None, vec![0]));
        assert!(p.leader_epoch > epoch, "the old leader's epoch is over");
    }

    #[test]
    fn a_broker_whose_heartbeat_shows_old_metadata_is_sent_the_current() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        let epoch = c.metadata().registration(0).expect("registered").epoch;
        let beat = |c: &mut Controller, metadata_version| {
            let mut cx = Context::new(0);
            let hb = Message::Heartbeat {
                broker: 0,
                broker_epoch: epoch,
                metadata_version,
                controller_epoch: c.controller_epoch,
            };
            c.on_message(&mut cx, 0, hb);
            cx.take_effects()
                .into_iter()
                .filter(|e| {
                    matches!(
                        e,
                        crate::node::Effect::Send {
                            message: Message::UpdateMetadata { .. },
                            ..
                        }
                    )
                })
                .count()
        };
        let current = c.metadata().version;
        // It missed the push of the current version (its connection broke, say): resent.
        assert_eq!(beat(&mut c, current - 1), 1);
        // Up to date: only the heartbeat's answer.
        assert_eq!(beat(&mut c, current), 0);
        // The same version, but under an older controller epoch: the broker missed this
        // controller's announcement on becoming active, and is sent it.
        c.controller_epoch = 3;
        let mut cx = Context::new(0);
        let hb = Message::Heartbeat {
            broker: 0,
            broker_epoch: epoch,
            metadata_version: current,
            controller_epoch: 2,
        };
        c.on_message(&mut cx, 0, hb);
        let resent = cx.take_effects().into_iter().any(|e| {
            matches!(
                e,
                crate::node::Effect::Send {
                    message: Message::UpdateMetadata {
                        controller_epoch: 3,
                        ..
                    },
                    ..
                }
            )
        });
        assert!(resent);
    }

    /// Each of the controller's invariants, broken by hand, is reported under its name.
    #[test]
    fn every_controller_invariant_trips_on_a_broken_state() {
        let fresh = || {
            let mut c = controller(BugSet::none());
            register(&mut c, false);
            c
        };
        assert_eq!(fresh().check_invariants(), Ok(()));
        type Corrupt = Box<dyn Fn(&mut Controller)>;
        let cases: Vec<(&str, Corrupt)> = vec![
            (
                "isr-within-replicas",
                Box::new(|c| c.image.metadata.partitions[0].isr = vec![0, 4]),
            ),
            (
                "isr-within-replicas",
                Box::new(|c| c.image.metadata.partitions[0].isr = vec![0, 0]),
            ),
            (
                "leader-live-in-isr",
                Box::new(|c| c.image.metadata.partitions[0].isr.clear()),
            ),
            ("leader-live-in-isr", Box::new(|c| c.set_fenced(0, true))),
            (
                "isr-members-live",
                Box::new(|c| {
                    // A second replica of partition 0, fenced while still in its ISR.
                    let md = &mut c.image.metadata;
                    md.brokers.push(BrokerRegistration {
                        broker: 1,
                        epoch: 0,
                        fenced: true,
                        incarnation: 0,
                    });
                    md.partitions[0].replicas = vec![0, 1];
                    md.partitions[0].isr = vec![0, 1];
                }),
            ),
            (
                "one-registration-per-broker",
                Box::new(|c| {
                    let r = c.image.metadata.brokers[0].clone();
                    c.image.metadata.brokers.push(r);
                }),
            ),
            (
                "broker-epoch-issued",
                Box::new(|c| c.image.next_broker_epoch = 1),
            ),
            (
                "controller-outbox-unsynced",
                Box::new(|c| c.synced_version += 5),
            ),
            (
                "controller-outbox-unsynced",
                Box::new(|c| c.outbox.push((0, 0, Message::Metadata { min_version: 0 }))),
            ),
        ];
        for (rule, corrupt) in cases {
            let mut c = fresh();
            corrupt(&mut c);
            assert_eq!(c.check_invariants().map_err(|v| v.rule), Err(rule));
        }
    }

    type Block = Result<ProducerIdBlock, ErrorCode>;

    fn block_answer(effects: &[crate::node::Effect]) -> Option<Block> {
        effects.iter().find_map(|e| match e {
            crate::node::Effect::Send {
                message: Message::AllocateProducerIdsResponse { result },
                ..
            } => Some(*result),
            _ => None,
        })
    }

    /// Broker 0 asks for a block in `epoch`; returns the answer (sent only once the sync the
    /// controller asked for completes) and the image it wrote, if any.
    fn allocate(c: &mut Controller, epoch: u64) -> (Option<Block>, Option<ControllerImage>) {
        let mut cx = Context::new(0);
        let ask = Message::AllocateProducerIds {
            broker: 0,
            broker_epoch: epoch,
        };
        c.on_message(&mut cx, 0, ask);
        let before = cx.take_effects();
        let written = before.iter().find_map(|e| match e {
            crate::node::Effect::Persist(DiskOp::ControllerState(image)) => Some(image.clone()),
            _ => None,
        });
        if written.is_some() {
            assert_eq!(block_answer(&before), None, "answered before its sync");
        }
        c.on_persisted(&mut cx, c.metadata().version);
        let answer = block_answer(&before).or(block_answer(&cx.take_effects()));
        (answer, written)
    }

    fn registered_epoch(c: &Controller) -> u64 {
        c.metadata().registration(0).expect("registered").epoch
    }

    #[test]
    fn producer_id_blocks_are_never_given_twice_even_across_a_restart() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        let epoch = registered_epoch(&c);
        let (a, _) = allocate(&mut c, epoch);
        let (b, image) = allocate(&mut c, epoch);
        let a = a.expect("answered").expect("a block");
        let b = b.expect("answered").expect("a block");
        assert_eq!((a.first, a.count, b.first, b.count), (0, 10, 10, 10));
        // The controller restarts from what it wrote: the next block starts after both.
        let image = image.expect("the block was written");
        assert_eq!(image.next_producer_id, 20);
        let mut c = Controller::recover(c.config_arc(), image);
        let (after, _) = allocate(&mut c, epoch);
        assert_eq!(
            after,
            Some(Ok(ProducerIdBlock {
                first: 20,
                count: 10
            }))
        );
    }

    #[test]
    fn a_stale_incarnation_gets_no_producer_ids() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        let old = registered_epoch(&c);
        register(&mut c, false);
        let (answer, written) = allocate(&mut c, old);
        assert_eq!(answer, Some(Err(ErrorCode::StaleBrokerEpoch)));
        assert!(written.is_none(), "nothing to write");
        assert_eq!(c.image().next_producer_id, 0);
    }

    #[test]
    fn the_producer_id_reuse_switch_gives_the_same_block_after_a_restart() {
        let mut c = controller(BugSet::none().with(Bug::ProducerIdReuse));
        register(&mut c, false);
        let epoch = registered_epoch(&c);
        let (first, image) = allocate(&mut c, epoch);
        // Within one incarnation blocks still differ: only the disk forgets.
        let (second, _) = allocate(&mut c, epoch);
        assert_ne!(first, second);
        let mut c = Controller::recover(c.config_arc(), image.expect("written"));
        let (again, _) = allocate(&mut c, epoch);
        assert_eq!(again, first);
    }

    type Created = Result<Vec<Vec<BrokerId>>, ErrorCode>;

    fn create_answer(effects: &[crate::node::Effect]) -> Option<Created> {
        effects.iter().find_map(|e| match e {
            crate::node::Effect::Send {
                message:
                    Message::ForwardCreateTopicResponse {
                        client: 7,
                        response,
                    },
                ..
            } => Some(response.result.clone()),
            _ => None,
        })
    }

    /// Broker 0 forwards client 7's request to create `topic`: the answer before the commit's
    /// sync completes, and after.
    fn create(
        c: &mut Controller,
        topic: &str,
        partitions: Option<u32>,
        rf: Option<u32>,
    ) -> (Option<Created>, Option<Created>) {
        let mut cx = Context::new(0);
        let request = CreateTopicRequest {
            correlation: 1,
            topic: topic.into(),
            partitions,
            replication_factor: rf,
            validate_only: false,
        };
        c.on_message(
            &mut cx,
            0,
            Message::ForwardCreateTopic { client: 7, request },
        );
        let before = create_answer(&cx.take_effects());
        c.on_persisted(&mut cx, c.metadata().version);
        (before, create_answer(&cx.take_effects()))
    }

    #[test]
    fn a_topic_is_created_once_and_answered_only_when_committed() {
        let mut c = controller(BugSet::none());
        register(&mut c, false);
        let version = c.metadata().version;
        let (before, after) = create(&mut c, "new", Some(2), None);
        assert_eq!(before, None, "answered before the change was synced");
        assert_eq!(after, Some(Ok(vec![vec![0], vec![0]])));
        assert_eq!(c.metadata().version, version + 1);
        let created: Vec<_> = c
            .metadata()
            .partitions
            .iter()
            .filter(|p| p.tp.topic == "new")
            .map(|p| (p.tp.partition, p.leader, p.leader_epoch, p.isr.clone()))
            .collect();
        assert_eq!(
            created,
            vec![(0, Some(0), 0, vec![0]), (1, Some(0), 0, vec![0])]
        );
        assert_eq!(c.check_invariants(), Ok(()));
        let refused = |c: &mut Controller, topic: &str, p, rf| create(c, topic, p, rf).0;
        let exists = Some(Err(ErrorCode::TopicAlreadyExists));
        assert_eq!(refused(&mut c, "new", Some(1), Some(1)), exists);
        assert_eq!(refused(&mut c, "t", None, None), exists);
        let rf = Some(Err(ErrorCode::InvalidReplicationFactor));
        assert_eq!(refused(&mut c, "x", Some(1), Some(2)), rf);
        assert_eq!(refused(&mut c, "x", Some(1), Some(0)), rf);
        let parts = Some(Err(ErrorCode::InvalidPartitions));
        assert_eq!(refused(&mut c, "x", Some(0), None), parts);
        for bad in ["", ".", "..", "a/b", "sp ace", &"x".repeat(250)] {
            let invalid = Some(Err(ErrorCode::InvalidTopic));
            assert_eq!(refused(&mut c, bad, None, None), invalid, "{bad:?}");
        }
        assert_eq!(
            c.metadata().version,
            version + 1,
            "no refusal changed anything"
        );
    }

    /// A controller of brokers 0..3 and topic `t`, partition p preferring broker p, whose
    /// brokers registered in the order 2, 1, 0: broker 2 came first and leads every partition.
    fn registered_backwards(leader_rebalance_ms: Option<u64>) -> Controller {
        let mut c = Controller::new(Arc::new(ControllerConfig {
            id: 9,
            brokers: vec![0, 1, 2],
            topics: vec![TopicSpec::spread("t", 3, 3, &[0, 1, 2])],
            session_timeout_ms: None,
            unclean_leader_election: false,
            producer_id_block_size: 10,
            leader_rebalance_ms,
            bugs: BugSet::none(),
        }));
        for broker in [2, 1, 0] {
            let mut cx = Context::new(0);
            let register = Message::RegisterBroker {
                broker,
                lost_data: false,
                incarnation: 1,
            };
            c.on_message(&mut cx, broker, register);
            c.on_persisted(&mut cx, c.metadata().version);
        }
        c
    }

    fn leaders(c: &Controller) -> Vec<(Option<BrokerId>, u32)> {
        let parts = &c.metadata().partitions;
        parts.iter().map(|p| (p.leader, p.leader_epoch)).collect()
    }

    #[test]
    fn the_rebalance_moves_leadership_back_to_live_in_sync_preferred_replicas() {
        let mut c = registered_backwards(Some(5_000));
        assert_eq!(
            leaders(&c),
            vec![(Some(2), 1); 3],
            "the first broker up leads all"
        );
        let mut cx = Context::new(0);
        c.on_start(&mut cx);
        let armed = Effect::SetTimer {
            timer: Timer::LeaderRebalance,
            after_ms: 5_000,
        };
        assert!(cx.take_effects().contains(&armed), "armed at start");
        // Broker 0 dropped out of partition 0's ISR; broker 1 is fenced: neither may lead.
        c.image.metadata.partitions[0].isr = vec![1, 2];
        c.set_fenced(1, true);
        let version = c.metadata().version;
        c.on_timer(&mut cx, Timer::LeaderRebalance);
        assert_eq!(leaders(&c), vec![(Some(2), 1); 3], "nothing movable");
        assert_eq!(c.metadata().version, version, "no change without a move");
        assert!(cx.take_effects().contains(&armed), "armed again");
        // Both back: partitions 0 and 1 go to their preferred replicas in a new epoch, in one
        // change, announced once synced.
        c.image.metadata.partitions[0].isr = vec![0, 1, 2];
        c.set_fenced(1, false);
        c.on_timer(&mut cx, Timer::LeaderRebalance);
        assert_eq!(leaders(&c), vec![(Some(0), 2), (Some(1), 2), (Some(2), 1)]);
        assert_eq!(c.metadata().version, version + 1);
        let fx = cx.take_effects();
        assert!(
            fx.contains(&Effect::Reached(Situation::PreferredElection)),
            "{fx:?}"
        );
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Send { .. })),
            "not before the sync"
        );
        c.on_persisted(&mut cx, c.metadata().version);
        let pushed = cx.take_effects().into_iter().filter(|e| {
            matches!(e, Effect::Send { message: Message::UpdateMetadata { metadata, .. }, .. }
                if metadata.partitions[0].leader == Some(0))
        });
        assert_eq!(pushed.count(), 3, "every broker told");
    }

    #[test]
    fn without_an_interval_there_is_no_rebalance() {
        let mut c = registered_backwards(None);
        let mut cx = Context::new(0);
        c.on_start(&mut cx);
        let fx = cx.take_effects();
        assert!(
            !fx.iter().any(|e| matches!(
                e,
                Effect::SetTimer {
                    timer: Timer::LeaderRebalance,
                    ..
                }
            )),
            "{fx:?}"
        );
    }

    #[test]
    fn replicas_are_assigned_round_robin_over_live_brokers() {
        let config = ControllerConfig {
            id: 9,
            brokers: vec![0, 1, 2],
            topics: vec![TopicSpec::spread("t", 1, 1, &[0])],
            session_timeout_ms: None,
            unclean_leader_election: false,
            producer_id_block_size: 10,
            leader_rebalance_ms: None,
            bugs: BugSet::none(),
        };
        let mut c = Controller::bootstrapped(Arc::new(config));
        // One partition exists: the new topic's first partition starts at the second broker.
        let (_, after) = create(&mut c, "n", Some(3), Some(2));
        assert_eq!(after, Some(Ok(vec![vec![1, 2], vec![2, 0], vec![0, 1]])));
        // Broker 2 fenced: only 0 and 1 are eligible.
        c.set_fenced(2, true);
        let (_, after) = create(&mut c, "m", Some(1), None);
        assert_eq!(after, Some(Ok(vec![vec![0, 1]])));
    }

    #[test]
    fn the_create_before_commit_switch_answers_before_the_sync() {
        let mut c = controller(BugSet::none().with(Bug::CreateTopicBeforeCommit));
        register(&mut c, false);
        let (before, _) = create(&mut c, "new", Some(1), Some(1));
        assert_eq!(before, Some(Ok(vec![vec![0]])));
    }

    #[test]
    fn the_bug_switch_elects_it_anyway() {
        let mut c = controller(BugSet::none().with(Bug::LastReplicaStanding));
        register(&mut c, false);
        register(&mut c, true);
        assert_eq!(
            (partition(&c).leader, partition(&c).isr),
            (Some(0), vec![0])
        );
    }
}
