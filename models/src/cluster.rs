//! The models: which nodes, configured how, with which bounds. Everything protocol-related comes
//! from `seedlog::node`; this file only chooses sizes and turns off the timers the model checker
//! replaces with nondeterminism (heartbeats, request timeouts, backoffs, long-poll waits).

use crate::actor::{recover_from_image, NodeActor};
use crate::history::{self, History};
use crate::properties;
use seedlog::node::{
    AnyNode, Broker, BrokerConfig, Bug, BugSet, Consumer, ConsumerConfig, Controller,
    ControllerConfig, ControllerImage, Durability, Image, OffsetReset, Producer, ProducerConfig,
    QuorumController, Reader, ReaderConfig, TopicSpec, BOOTSTRAP_EPOCH, PRODUCER_ID_BLOCK_SIZE,
};
use seedlog::protocol::{
    Acks, Assignor, BrokerId, Message, PartitionBatch, ProduceRequest, Record, TopicPartition,
    OFFSETS_TOPIC,
};
use stateright::actor::{ActorModel, Network};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// One partition replicated on every broker; a producer with acks=all; a reader; failover.
    Replication,
    /// Two partitions, keyed records from one producer: where each key goes, and in what order.
    Partitioning,
    /// A consumer group of two members over a pre-filled data topic, its coordinator on the
    /// leader of a replicated `__consumer_offsets` partition: commits, rebalances, coordinator
    /// failover.
    Offsets,
    /// Three controller-quorum voters and a client submitting metadata records
    /// (`crate::quorum`).
    Quorum,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Replication => "replication",
            ModelKind::Partitioning => "partitioning",
            ModelKind::Offsets => "offsets",
            ModelKind::Quorum => "quorum",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ModelOptions {
    pub kind: ModelKind,
    pub brokers: usize,
    pub records: usize,
    /// Crash-restarts allowed over the whole run (each may or may not lose unsynced data).
    pub crashes: usize,
    /// Session expiries the controller may act on (a crashed or cut-off broker is fenced).
    pub expiries: usize,
    /// Times a leader may evict a lagging follower from the ISR.
    pub evictions: usize,
    /// Bound on committed controller changes (fencings, elections, ISR changes) past bootstrap.
    pub max_changes: u64,
    pub durability: Durability,
    pub min_insync_replicas: usize,
    pub bugs: Vec<Bug>,
    /// Include the reader. Without it `consumed-stable`, `hw-monotonic` and "reaches read" are
    /// not checked; bug searches that only need `acked-not-lost` leave it out, because its
    /// fetch loop multiplies the interleavings of every deep counterexample.
    pub reader: bool,
    /// Offsets model: partitions of the data topic (each with `records` pre-filled records).
    pub partitions: u32,
    /// Offsets model: members of the consumer group.
    pub consumers: usize,
    /// Offsets model: member sessions the coordinator may expire.
    pub member_expiries: usize,
    /// Offsets model: group requests that may be refused to the members in all (each refusal
    /// is retried at once, with a new correlation id: unbounded, retries make the state space
    /// infinite while, say, no broker leads `__consumer_offsets`).
    pub refusals: usize,
    /// Offsets model: brokers may crash too (else only consumers do).
    pub broker_crashes: bool,
    /// Times a leader's retention may delete records: each deletes every committed record of
    /// the data topic (`retention.bytes=0`), at any moment (0: retention off).
    pub retentions: usize,
    /// The producer's `max.in.flight` (1: one batch at a time).
    pub max_in_flight: usize,
    /// The producer is idempotent (a producer id, sequence numbers, the leader's window of
    /// batches). Kafka requires it for order with more than one batch in flight.
    pub idempotent: bool,
    /// Quorum model: no voter may go past this epoch (bounds the elections).
    pub max_epoch: u32,
    /// Quorum model: the voters' disks at the first start (`crate::quorum::Start`).
    pub quorum_start: crate::quorum::Start,
    /// Quorum model: any message in flight may be delivered next, not only the oldest of its
    /// channel (stateright's unordered, non-duplicating network).
    pub unordered: bool,
    /// Replication model: controllers. 1 is the single standalone controller; more are a
    /// controller quorum of `QuorumController` voters (see `build`).
    pub controllers: usize,
}

impl ModelOptions {
    /// The default bounds of each model, as documented in the README.
    pub fn defaults(kind: ModelKind) -> Self {
        let common = |kind| ModelOptions {
            kind,
            brokers: 2,
            records: 1,
            crashes: 0,
            expiries: 1,
            evictions: 0,
            max_changes: 1,
            durability: Durability::Replicated,
            min_insync_replicas: 1,
            bugs: Vec::new(),
            reader: false,
            partitions: 1,
            consumers: 0,
            member_expiries: 0,
            refusals: 0,
            broker_crashes: true,
            retentions: 0,
            max_in_flight: 1,
            idempotent: false,
            max_epoch: 0,
            quorum_start: crate::quorum::Start::Empty,
            unordered: false,
            controllers: 1,
        };
        match kind {
            ModelKind::Replication => ModelOptions {
                kind,
                brokers: 3,
                records: 1,
                crashes: 0,
                expiries: 1,
                evictions: 0,
                max_changes: 1,
                durability: Durability::Replicated,
                min_insync_replicas: 2,
                bugs: Vec::new(),
                reader: true,
                ..common(kind)
            },
            ModelKind::Partitioning => ModelOptions {
                kind,
                brokers: 2,
                // Keys a, d, a, d: two records per key, so per-key order has something to check.
                records: 4,
                crashes: 0,
                expiries: 1,
                evictions: 0,
                max_changes: 1,
                durability: Durability::Replicated,
                min_insync_replicas: 1,
                bugs: Vec::new(),
                // No property of this model looks at what a consumer read.
                reader: false,
                ..common(kind)
            },
            ModelKind::Offsets => ModelOptions {
                // Two records pre-filled in the one data partition; consumers fetch one record
                // per batch, so each member commits between two records.
                records: 2,
                partitions: 1,
                consumers: 2,
                // No crashes or broker session expiries by default: with any of them the space
                // outgrows the test suite (see the README). Bug M's test adds a consumer crash,
                // `--crashes 1 --expiries 1` a coordinator failover.
                crashes: 0,
                expiries: 0,
                max_changes: 2,
                member_expiries: 0,
                refusals: 2,
                // With `fsync` every append is synced in its step: a restarted broker has one
                // disk image, not two (page cache kept or lost) — the replication model covers
                // that, and here it only doubles the space.
                durability: Durability::Fsync,
                ..common(kind)
            },
            // `brokers` are the voters, `records` the changes the client submits.
            ModelKind::Quorum => ModelOptions {
                brokers: 3,
                records: 2,
                crashes: 1,
                // Election timeouts: the fewest that elect a leader and then replace it.
                expiries: 2,
                max_epoch: 2,
                ..common(kind)
            },
        }
    }
}

impl ModelOptions {
    /// The quorum model's `--preset target`: 3 voters, 2 records, 1 crash, as the defaults, but
    /// from a formed quorum (`crate::quorum::Start::Formed`: voter 0 elected in epoch 1, its
    /// leader change committed everywhere) with 1 election timeout and epochs up to 2. One
    /// timeout from there elects a new leader once a crash has restarted a voter (which then
    /// grants pre-votes: it has heard from no leader), so all three `sometimes` are reached; exhaustive, with
    /// `--search dfs --symmetry`, in under a minute (docs/quorum.md, *Measurements*).
    pub fn quorum_target() -> Self {
        ModelOptions {
            quorum_start: crate::quorum::Start::Formed,
            records: 2,
            crashes: 1,
            expiries: 1,
            max_epoch: 2,
            ..ModelOptions::defaults(ModelKind::Quorum)
        }
    }
}

/// What properties need to know about the model's layout.
#[derive(Clone, Debug)]
pub struct ModelCfg {
    pub kind: ModelKind,
    pub brokers: usize,
    /// The controller's actor index; with a controller quorum, the first voter's (the voters
    /// are `controller..controller + controllers`).
    pub controller: usize,
    /// Controllers: 1 for the single standalone controller, else the quorum's voters.
    pub controllers: usize,
    /// With a controller quorum: the state a new cluster's controller starts from, which the
    /// committed log's records turn into the committed metadata (`properties`).
    pub controller_base: Option<Arc<ControllerImage>>,
    /// The producer's actor index, if the model has one.
    pub producer: Option<usize>,
    /// The reader's actor index, if the model has one.
    pub reader: Option<usize>,
    /// Group members' actor indices (offsets model).
    pub consumers: Vec<usize>,
    /// Actors that never crash.
    pub never_crash: Vec<usize>,
    pub records: Vec<Record>,
    pub crashes: usize,
    pub expiries: usize,
    pub evictions: usize,
    pub member_expiries: usize,
    pub refusals: usize,
    pub retentions: usize,
    pub max_version: u64,
    /// The producer is idempotent: no record twice in a log, acknowledgements in send order.
    pub idempotent: bool,
    /// Quorum model: the epoch bound.
    pub max_epoch: u32,
}

pub type SeedlogModel = ActorModel<NodeActor, ModelCfg, History>;

pub const TOPIC: &str = "t";
/// The offsets model's consumer group.
pub const GROUP: &str = "g";

/// Keys for the partitioning model: with 2 partitions Kafka's partitioner sends "a" and "d" to
/// different partitions (checked in a test), so both partitions see traffic.
const PARTITIONING_KEYS: [&str; 2] = ["a", "d"];

fn records(opts: &ModelOptions) -> Vec<Record> {
    (0..opts.records)
        .map(|i| match opts.kind {
            ModelKind::Replication | ModelKind::Offsets | ModelKind::Quorum => {
                Record::keyed("k", format!("v{i}"))
            }
            ModelKind::Partitioning => {
                let key = PARTITIONING_KEYS[i % PARTITIONING_KEYS.len()];
                Record::keyed(key, format!("{key}{i}"))
            }
        })
        .collect()
}

/// Where the offsets model puts things: `__consumer_offsets` (one partition) on every broker,
/// led by broker 0 (the group's coordinator); data partition `p` on the single broker
/// `n - 1 - p` (no replication: the data topic is not what this model checks), so the data of
/// partition 0 stays available while the coordinator's broker is down.
fn offsets_topics(n: usize, partitions: u32, broker_ids: &[BrokerId]) -> Vec<TopicSpec> {
    let data = TopicSpec {
        name: TOPIC.into(),
        assignment: (0..partitions as usize)
            .map(|p| vec![broker_ids[n - 1 - p % n]])
            .collect(),
    };
    vec![TopicSpec::spread(OFFSETS_TOPIC, 1, n, broker_ids), data]
}

pub fn build(opts: &ModelOptions) -> SeedlogModel {
    if opts.kind == ModelKind::Quorum {
        return crate::quorum::build(opts);
    }
    let n = opts.brokers;
    let broker_ids: Vec<u32> = (0..n as u32).collect();
    let controller = n;
    // A controller quorum (replication model only): voters `n..n + c`, the first one leading.
    let c = opts.controllers.max(1);
    let quorum = c > 1;
    let controller_ids: Vec<u32> = (n..n + c).map(|i| i as u32).collect();
    let offsets = opts.kind == ModelKind::Offsets;
    let (producer, reader, consumers) = if offsets {
        (None, None, (n + 1..n + 1 + opts.consumers).collect())
    } else {
        (Some(n + c), opts.reader.then_some(n + c + 1), Vec::new())
    };
    let bugs: BugSet = opts.bugs.iter().copied().collect();
    let topics = match opts.kind {
        ModelKind::Replication => vec![TopicSpec::spread(TOPIC, 1, n, &broker_ids)],
        ModelKind::Partitioning => vec![TopicSpec::spread(TOPIC, 2, n, &broker_ids)],
        ModelKind::Offsets => offsets_topics(n, opts.partitions, &broker_ids),
        ModelKind::Quorum => unreachable!("built by crate::quorum"),
    };
    assert!(
        !quorum || opts.kind == ModelKind::Replication,
        "a controller quorum runs in the replication model only"
    );
    let controller_config = Arc::new(ControllerConfig {
        id: controller as u32,
        brokers: broker_ids.clone(),
        topics: topics.clone(),
        session_timeout_ms: Some(1),
        unclean_leader_election: false,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        leader_rebalance_ms: None,
        bugs: bugs.clone(),
    });
    let bootstrap = Controller::bootstrapped(controller_config.clone());
    let metadata = bootstrap.metadata().clone();
    let records = records(opts);
    let mut never_crash: Vec<usize> = producer.into_iter().chain(reader).collect();
    if offsets {
        never_crash.push(controller);
        if !opts.broker_crashes {
            never_crash.extend(0..n);
        }
    }

    let mut model = ActorModel::new(
        ModelCfg {
            kind: opts.kind,
            brokers: n,
            controller,
            producer,
            reader,
            consumers: consumers.clone(),
            never_crash,
            records: records.clone(),
            crashes: opts.crashes,
            expiries: opts.expiries,
            evictions: opts.evictions,
            member_expiries: opts.member_expiries,
            refusals: opts.refusals,
            retentions: opts.retentions,
            max_version: metadata.version + opts.max_changes,
            idempotent: producer.is_some() && opts.idempotent,
            max_epoch: 0,
            controllers: c,
            controller_base: quorum
                .then(|| Arc::new(Controller::new(controller_config.clone()).image().clone())),
        },
        History::default(),
    );
    for &id in &broker_ids {
        let mut config = BrokerConfig::new(id, controller_ids.clone());
        config.durability = opts.durability;
        config.min_insync_replicas = opts.min_insync_replicas;
        config.heartbeat_interval_ms = None;
        config.register_retry_ms = None;
        config.fetch_max_wait_ms = None;
        config.fetch_timeout_ms = None;
        config.fetch_backoff_ms = None;
        config.alter_partition_timeout_ms = None;
        config.replica_lag_time_max_ms = Some(1);
        // Group timers fire at any time in the model: a member's session ends (bounded by
        // `member_expiries`), a rebalance stops waiting for members that did not rejoin.
        config.group_session_timeout_ms = Some(1);
        config.group_rebalance_timeout_ms = Some(1);
        if opts.retentions > 0 {
            // The retention step: whenever its timer fires, a leader deletes every committed
            // record of the data topic (never `__consumer_offsets`, which is compacted).
            config.retention = seedlog::log::RetentionPolicy {
                max_age_ms: None,
                max_bytes: Some(0),
            };
            config.retention_check_ms = Some(1);
        }
        if offsets {
            // One record per batch: a member commits between two records.
            config.max_fetch_records = 1;
        }
        config.bugs = bugs.clone();
        let node = if quorum {
            // It took the bootstrapped metadata from the active controller, the first voter.
            Broker::bootstrapped_following(
                Arc::new(config),
                metadata.clone(),
                controller as u32,
                BOOTSTRAP_EPOCH,
            )
        } else {
            Broker::bootstrapped(Arc::new(config), metadata.clone())
        };
        // Offsets model: the leader of each data partition appends its records before the
        // model starts (a produce with acks=0 from no one; the partition has no other replica,
        // so they are committed at once).
        let first_boot = if offsets {
            topics[1]
                .assignment
                .iter()
                .enumerate()
                .filter(|(_, replicas)| replicas.first() == Some(&id))
                .map(|(p, _)| {
                    let req = ProduceRequest {
                        acks: Acks::None,
                        correlation: 0,
                        batches: vec![PartitionBatch {
                            tp: TopicPartition::new(TOPIC, p as u32),
                            leader_epoch: Some(0),
                            batch: 0,
                            records: records.clone(),
                            producer: None,
                        }],
                    };
                    (controller as u32, Message::Produce(req))
                })
                .collect()
        } else {
            Vec::new()
        };
        model = model.actor(NodeActor {
            name: format!("broker {id}"),
            initial: AnyNode::Broker(node),
            initial_image: Image::Broker(Default::default()),
            recover: recover_from_image,
            first_boot,
            // Offsets model: one disk image per broker (see its defaults), so syncs complete
            // in the step that asks.
            deferred_sync: !offsets,
        });
    }
    if quorum {
        let leader = controller as u32;
        for &id in &controller_ids {
            // As in the quorum model: each firing of the election timer counts against
            // `--expiries`.
            let quorum_config = crate::quorum::voter_config(id, &controller_ids, &bugs);
            let node = QuorumController::bootstrapped(
                controller_config.clone(),
                Arc::new(quorum_config),
                leader,
            );
            model = model.actor(NodeActor {
                name: format!("controller {id}"),
                initial: AnyNode::QuorumController(Box::new(node)),
                initial_image: Image::Quorum(QuorumController::bootstrap_image(
                    &controller_config,
                    leader,
                )),
                recover: recover_from_image,
                first_boot: Vec::new(),
                // Syncs complete at once, as the single controller's: the quorum model covers a
                // crash between a voter's write and its sync.
                deferred_sync: false,
            });
        }
    } else {
        model = model.actor(NodeActor {
            name: "controller".into(),
            initial_image: Image::Controller(bootstrap.image().clone()),
            initial: AnyNode::Controller(bootstrap),
            recover: recover_from_image,
            first_boot: Vec::new(),
            // The controller stands in for a metadata quorum: its syncs complete at once
            // (deferring them would multiply every model's states for no broker-side
            // interleaving).
            deferred_sync: false,
        });
    }
    if let Some(producer) = producer {
        // The idempotent producer of the partitioning model times out its requests (at any
        // moment, as every model timer fires) and then asks any broker for metadata: it can
        // learn of one partition's new leader through another partition's timeout, and send
        // there while its earlier batch is still on its way to the old leader — the path on
        // which the new leader's sequence check is all that keeps order. (In the replication
        // model, one partition, timeouts add no such path, and with two batches in flight
        // they make the state space too large to finish in minutes: its retries follow
        // refusals only.)
        let timeouts = opts.idempotent && opts.kind == ModelKind::Partitioning;
        let bootstrap = if timeouts {
            // Broker 1 first: the producer then asks for metadata a broker other than partition
            // 0's first leader, so it can learn that leader's successor while its batch is still
            // on the way to it. Asking broker 0 first, that path needs a timeout of broker 0's
            // metadata request, which closes the connection the batch is on and fails the batch.
            let mut ids = broker_ids.clone();
            ids.rotate_left(1);
            ids
        } else {
            vec![0]
        };
        let producer_config = ProducerConfig {
            id: producer as u32,
            bootstrap,
            topic: TOPIC.into(),
            acks: Acks::All,
            records,
            sticky_batch: 1,
            seed: 0,
            request_timeout_ms: timeouts.then_some(1),
            retry_backoff_ms: None,
            idempotent: opts.idempotent,
            // Preset: asking a broker for an id (InitProducerId, and the broker's request for a
            // block to the controller) would only multiply states; the simulator and unit tests
            // cover that path.
            producer_id: Some(producer as u64),
            send_interval_ms: None,
            delivery_timeout_ms: None,
            max_in_flight: opts.max_in_flight,
            // One record per batch: the model's records are its batches.
            batch_size_bytes: 1,
            linger_ms: None,
            // Refreshes follow errors only: the model has no clock to age metadata by.
            metadata_max_age_ms: None,
            bugs: bugs.clone(),
        };
        model = model.actor(NodeActor {
            name: "producer".into(),
            initial: AnyNode::Producer(Producer::with_metadata(
                Arc::new(producer_config),
                metadata.clone(),
            )),
            initial_image: Image::Empty,
            recover: |initial, _, _| initial.clone(),
            first_boot: Vec::new(),
            deferred_sync: false,
        });
    }
    if let Some(reader) = reader {
        let reader_config = ReaderConfig {
            id: reader as u32,
            bootstrap: vec![0],
            topic: TOPIC.into(),
            request_timeout_ms: None,
            retry_backoff_ms: None,
        };
        model = model.actor(NodeActor {
            name: "reader".into(),
            initial: AnyNode::Reader(Reader::with_metadata(
                Arc::new(reader_config),
                metadata.clone(),
            )),
            initial_image: Image::Empty,
            recover: |initial, _, _| initial.clone(),
            first_boot: Vec::new(),
            deferred_sync: false,
        });
    }
    for (i, &c) in consumers.iter().enumerate() {
        let config = ConsumerConfig {
            id: c as u32,
            // The last broker, which does not start as coordinator: discovery and metadata stay
            // available while the coordinator's broker is down.
            bootstrap: vec![broker_ids[n - 1]],
            group: GROUP.into(),
            topic: TOPIC.into(),
            assignor: Assignor::Range,
            leader_assigns: false,
            auto_offset_reset: OffsetReset::Earliest,
            // The model replaces heartbeats, timeouts and backoffs with nondeterminism: lost
            // heartbeats are member-session expiries, slow members are rebalance timeouts.
            heartbeat_interval_ms: None,
            request_timeout_ms: None,
            retry_backoff_ms: None,
            // Processing ends when the `Process` timer fires: a member can crash, or be fenced,
            // with a batch in hand.
            process_ms: Some(1),
            rewind: None,
            seek_end_every: None,
            seek_time_every: None,
            max_records: None,
            recommit_ms: None,
            seek_to: Default::default(),
            // The model's consumers never time a request out, so none repeats a join: the extra
            // round trip would only deepen every counterexample by two steps.
            require_known_member_id: false,
            bugs: bugs.clone(),
        };
        model = model.actor(NodeActor {
            name: format!("consumer {}", (b'a' + i as u8) as char),
            initial: AnyNode::Consumer(Box::new(Consumer::new(Arc::new(config)))),
            initial_image: Image::Empty,
            // A restarted consumer is a new process: a new member, from the committed offsets.
            recover: |initial, _, _| initial.clone(),
            first_boot: Vec::new(),
            deferred_sync: false,
        });
    }
    let model = model
        .init_network(Network::new_ordered([]))
        .max_crashes(opts.crashes)
        .record_msg_in(history::record_in)
        .record_msg_out(history::record_out)
        .within_boundary(properties::within_boundary);
    properties::add(model)
}
