//! The models: which nodes, configured how, with which bounds. Everything protocol-related comes
//! from `seedlog::node`; this file only chooses sizes and turns off the timers the model checker
//! replaces with nondeterminism (heartbeats, request timeouts, backoffs, long-poll waits).

use crate::actor::NodeActor;
use crate::history::{self, History};
use crate::properties;
use seedlog::node::{
    AnyNode, Broker, BrokerConfig, Bug, BugSet, Controller, ControllerConfig, Durability, Image,
    Producer, ProducerConfig, Reader, ReaderConfig, TopicSpec,
};
use seedlog::protocol::{Acks, Record};
use stateright::actor::{ActorModel, Network};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// One partition replicated on every broker; a producer with acks=all; a reader; failover.
    Replication,
    /// Two partitions, keyed records from one producer: where each key goes, and in what order.
    Partitioning,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Replication => "replication",
            ModelKind::Partitioning => "partitioning",
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
}

impl ModelOptions {
    /// The default bounds of each model, as documented in the README.
    pub fn defaults(kind: ModelKind) -> Self {
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
            },
        }
    }
}

/// What properties need to know about the model's layout.
#[derive(Clone, Debug)]
pub struct ModelCfg {
    pub kind: ModelKind,
    pub brokers: usize,
    pub controller: usize,
    pub producer: usize,
    /// The reader's actor index, if the model has one.
    pub reader: Option<usize>,
    pub records: Vec<Record>,
    pub crashes: usize,
    pub expiries: usize,
    pub evictions: usize,
    pub max_version: u64,
}

pub type SeedlogModel = ActorModel<NodeActor, ModelCfg, History>;

pub const TOPIC: &str = "t";

/// Keys for the partitioning model: with 2 partitions Kafka's partitioner sends "a" and "d" to
/// different partitions (checked in a test), so both partitions see traffic.
const PARTITIONING_KEYS: [&str; 2] = ["a", "d"];

fn records(opts: &ModelOptions) -> Vec<Record> {
    (0..opts.records)
        .map(|i| match opts.kind {
            ModelKind::Replication => Record::keyed("k", format!("v{i}")),
            ModelKind::Partitioning => {
                let key = PARTITIONING_KEYS[i % PARTITIONING_KEYS.len()];
                Record::keyed(key, format!("{key}{i}"))
            }
        })
        .collect()
}

pub fn build(opts: &ModelOptions) -> SeedlogModel {
    let n = opts.brokers;
    let broker_ids: Vec<u32> = (0..n as u32).collect();
    let (controller, producer) = (n, n + 1);
    let reader = opts.reader.then_some(n + 2);
    let bugs: BugSet = opts.bugs.iter().copied().collect();
    let topic = match opts.kind {
        ModelKind::Replication => TopicSpec::spread(TOPIC, 1, n, &broker_ids),
        ModelKind::Partitioning => TopicSpec::spread(TOPIC, 2, n, &broker_ids),
    };
    let controller_config = Arc::new(ControllerConfig {
        id: controller as u32,
        brokers: broker_ids.clone(),
        topics: vec![topic],
        session_timeout_ms: Some(1),
        unclean_leader_election: false,
        bugs: bugs.clone(),
    });
    let bootstrap = Controller::bootstrapped(controller_config.clone());
    let metadata = bootstrap.metadata().clone();
    let records = records(opts);

    let mut model = ActorModel::new(
        ModelCfg {
            kind: opts.kind,
            brokers: n,
            controller,
            producer,
            reader,
            records: records.clone(),
            crashes: opts.crashes,
            expiries: opts.expiries,
            evictions: opts.evictions,
            max_version: metadata.version + opts.max_changes,
        },
        History::default(),
    );
    for &id in &broker_ids {
        let mut config = BrokerConfig::new(id, controller as u32);
        config.durability = opts.durability;
        config.min_insync_replicas = opts.min_insync_replicas;
        config.heartbeat_interval_ms = None;
        config.register_retry_ms = None;
        config.fetch_max_wait_ms = None;
        config.fetch_timeout_ms = None;
        config.fetch_backoff_ms = None;
        config.alter_partition_timeout_ms = None;
        config.replica_lag_time_max_ms = Some(1);
        config.bugs = bugs.clone();
        let node = Broker::bootstrapped(Arc::new(config), metadata.clone());
        model = model.actor(NodeActor {
            name: format!("broker {id}"),
            initial: AnyNode::Broker(node),
            initial_image: Image::Broker(Default::default()),
            recover: |initial, image| {
                let AnyNode::Broker(b) = initial else {
                    unreachable!("a broker actor holds a broker")
                };
                let Image::Broker(image) = image else {
                    return initial.clone();
                };
                AnyNode::Broker(Broker::recover(b.config_arc(), image))
            },
        });
    }
    model = model.actor(NodeActor {
        name: "controller".into(),
        initial_image: Image::Controller(bootstrap.image().clone()),
        initial: AnyNode::Controller(bootstrap),
        recover: |initial, image| {
            let AnyNode::Controller(c) = initial else {
                unreachable!("the controller actor holds the controller")
            };
            let Image::Controller(image) = image else {
                return initial.clone();
            };
            AnyNode::Controller(Controller::recover(c.config_arc(), image))
        },
    });
    let producer_config = ProducerConfig {
        id: producer as u32,
        bootstrap: vec![0],
        topic: TOPIC.into(),
        acks: Acks::All,
        records,
        sticky_batch: 1,
        seed: 0,
        request_timeout_ms: None,
        retry_backoff_ms: None,
        idempotent: false,
        producer_id: producer as u64,
        send_interval_ms: None,
        delivery_timeout_ms: None,
    };
    model = model.actor(NodeActor {
        name: "producer".into(),
        initial: AnyNode::Producer(Producer::with_metadata(
            Arc::new(producer_config),
            metadata.clone(),
        )),
        initial_image: Image::Empty,
        recover: |initial, _| initial.clone(),
    });
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
            initial: AnyNode::Reader(Reader::with_metadata(Arc::new(reader_config), metadata)),
            initial_image: Image::Empty,
            recover: |initial, _| initial.clone(),
        });
    }
    let model = model
        .init_network(Network::new_ordered([]))
        .max_crashes(opts.crashes)
        .record_msg_in(history::record_in)
        .within_boundary(properties::within_boundary);
    properties::add(model, opts.kind, opts.reader)
}
