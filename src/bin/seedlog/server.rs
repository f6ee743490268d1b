//! `seedlog controller` and `seedlog broker`: one node per process, recovered from its data
//! directory, listening on TCP until interrupted.

use crate::layout::{wall_clock, LayoutArgs, TopicArg, FIRST_CONTROLLER_ID};
use anyhow::{bail, Context as _};
use seedlog::log::RetentionPolicy;
use seedlog::node::{
    AnyNode, Broker, BrokerConfig, Bug, ControllerConfig, Durability, Image, QuorumConfig,
    QuorumController, TopicSpec, PRODUCER_ID_BLOCK_SIZE,
};
use seedlog::protocol::OFFSETS_TOPIC;
use seedlog::runtime::disk::{CorruptionPolicy, Disk};
use seedlog::runtime::driver::Driver;
use seedlog::runtime::file_disk::FileDisk;
use seedlog::runtime::kafka::KafkaLayout;
use seedlog::runtime::lock;
use seedlog::runtime::net::Net;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// This controller's id: 100 + its position in --controllers (100 for the first, 101 for
    /// the second, ...).
    #[arg(long)]
    id: u32,
    #[command(flatten)]
    layout: LayoutArgs,
    /// Topics to create at the first start, as name:partitions:replication (repeatable). Give
    /// every controller the same topics: each starts its metadata from them.
    #[arg(long = "topic")]
    topics: Vec<TopicArg>,
    /// Where the controller keeps its part of the quorum: epoch, vote and metadata log.
    #[arg(long)]
    data_dir: PathBuf,
    /// Seeds the randomized election timeouts. Each controller mixes its id into it, so
    /// controllers with the same seed still time out at different moments.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A broker that sends no heartbeat for this long is fenced.
    #[arg(long, default_value_t = 3_000)]
    session_timeout_ms: u64,
    /// Elect an out-of-sync replica when no in-sync one is alive (loses data).
    #[arg(long)]
    unclean_leader_election: bool,
    /// Every this many milliseconds the active controller moves each partition's leadership
    /// back to its preferred replica (the first of its assignment) where that replica is live
    /// and in the ISR, as Kafka's auto.leader.rebalance.enable does every
    /// leader.imbalance.check.interval.seconds (300). 0: never.
    #[arg(long, default_value_t = 300_000)]
    leader_rebalance_interval_ms: u64,
    /// Partitions of the internal `__consumer_offsets` topic (created at the first start,
    /// replicated on up to 3 brokers) that holds consumer groups' committed offsets.
    #[arg(long, default_value_t = 3)]
    offsets_partitions: u32,
    /// Snapshot the metadata every this many committed log entries and drop the entries below
    /// (0: never; the log then grows with every change). A controller that was away while the
    /// others dropped entries it lacks installs the active controller's snapshot.
    #[arg(long, default_value_t = 1_024)]
    snapshot_every: u64,
    /// Reintroduce a historical bug (repeatable; names and effects in docs/bugs.md), so that a
    /// test or `seedlog chaos` can show it is caught. Off unless given; never for real use.
    #[arg(long = "bug")]
    bugs: Vec<Bug>,
}

#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// This broker's id: its position in --brokers.
    #[arg(long)]
    id: u32,
    #[command(flatten)]
    layout: LayoutArgs,
    /// Where the broker keeps its logs.
    #[arg(long)]
    data_dir: PathBuf,
    /// replicated: acknowledge once the ISR has a record; fsync: once the ISR has synced it.
    #[arg(long, default_value = "replicated", value_parser = parse_durability)]
    durability: Durability,
    /// min.insync.replicas for acks=all.
    #[arg(long, default_value_t = 1)]
    min_insync_replicas: usize,
    /// Delete records older than this (retention.ms).
    #[arg(long)]
    retention_ms: Option<i64>,
    /// Keep each partition's log under this many bytes (retention.bytes).
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Start even if the log is corrupt in the middle: cut it at the damage, re-fetch the rest
    /// from the leaders, and tell the controller this broker lost data (it then cannot be the
    /// last in-sync replica). Without it, a corrupt log stops the broker with the position.
    #[arg(long)]
    repair_corruption: bool,
    /// Group coordinator: a consumer silent for this long leaves its group (session.timeout.ms).
    #[arg(long, default_value_t = 6_000)]
    group_session_timeout_ms: u64,
    /// At most this many records in one fetch answer, to followers and to consumers. Larger
    /// answers mean fewer round trips per record replicated: with acks=all a produce waits for
    /// the followers' fetches, so this bounds produce throughput. (The simulator keeps 500.)
    #[arg(long, default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_fetch_records: u64,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Reintroduce a historical bug (repeatable; names and effects in docs/bugs.md), so that a
    /// test or `seedlog chaos` can show it is caught. Off unless given; never for real use.
    #[arg(long = "bug")]
    bugs: Vec<Bug>,
}

/// The Kafka listener (docs/kafka-listener.md).
#[derive(clap::Args, Debug)]
pub struct KafkaArgs {
    /// Serve the Kafka wire protocol on this address. Unless --kafka-listeners says otherwise,
    /// every other broker is advertised at the same port offset from its --brokers address (so
    /// a cluster on 19000-19002 with --kafka-listener on 9092-9094 needs nothing more).
    #[arg(long)]
    kafka_listener: Option<SocketAddr>,
    /// Every broker's Kafka address, in --brokers order (the same list for every broker), as
    /// Metadata advertises them; broker i listens on the i-th unless --kafka-listener is given.
    #[arg(long, value_delimiter = ',')]
    kafka_listeners: Vec<SocketAddr>,
}

impl KafkaArgs {
    /// Where this broker listens for Kafka clients and where every broker is advertised;
    /// `None` without a Kafka listener.
    fn layout(&self, me: u32, brokers: &[SocketAddr]) -> anyhow::Result<Option<KafkaLayout>> {
        if !self.kafka_listeners.is_empty() {
            if self.kafka_listeners.len() != brokers.len() {
                bail!(
                    "--kafka-listeners lists {} addresses and --brokers {}: give one per broker",
                    self.kafka_listeners.len(),
                    brokers.len()
                );
            }
            let advertised = (0u32..).zip(self.kafka_listeners.iter().copied()).collect();
            let listen = self
                .kafka_listener
                .unwrap_or(self.kafka_listeners[me as usize]);
            return Ok(Some(KafkaLayout { listen, advertised }));
        }
        let Some(listen) = self.kafka_listener else {
            return Ok(None);
        };
        let own = brokers[me as usize];
        let offset = i32::from(listen.port()) - i32::from(own.port());
        let mut advertised = std::collections::BTreeMap::new();
        for (id, addr) in (0u32..).zip(brokers) {
            let port = i32::from(addr.port()) + offset;
            let Ok(port) = u16::try_from(port) else {
                bail!(
                    "broker {id}'s Kafka port would be {port} (its --brokers port plus {offset}); \
                     give --kafka-listeners"
                );
            };
            let ip = if id == me { listen.ip() } else { addr.ip() };
            advertised.insert(id, SocketAddr::new(ip, port));
        }
        Ok(Some(KafkaLayout { listen, advertised }))
    }
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

pub async fn controller(args: ControllerArgs) -> anyhow::Result<i32> {
    args.layout.check()?;
    let voters = args.layout.controller_ids();
    let Some(position) = voters.iter().position(|v| *v == args.id) else {
        bail!(
            "--id {} is not a controller id: controller i of --controllers has id {} + i, so \
             here {}",
            args.id,
            FIRST_CONTROLLER_ID,
            ids_text(&voters)
        );
    };
    let listen = args.layout.controllers[position];
    let name = format!("controller {}", args.id);
    let mut disk = open_disk(&args.data_dir)?;
    let image = match recover(&mut disk, &name)? {
        Image::Quorum(image) => image,
        Image::Empty => Default::default(),
        Image::Controller(_) => bail!(
            "{name}: the data directory {} holds the state of a single controller (the format \
             from before the controller quorum), which a quorum member cannot start from and \
             this version cannot convert; the quorum's controllers start from empty data \
             directories",
            args.data_dir.display()
        ),
        Image::Broker(_) => bail!(
            "{name}: the data directory {} holds a broker's logs, not a controller's",
            args.data_dir.display()
        ),
    };
    let brokers = args.layout.broker_ids();
    let config = Arc::new(ControllerConfig {
        id: args.id,
        brokers: brokers.clone(),
        topics: args
            .topics
            .iter()
            .map(|t| TopicSpec::spread(&t.name, t.partitions, t.replication, &brokers))
            .chain(
                (args.offsets_partitions > 0
                    && !args.topics.iter().any(|t| t.name == OFFSETS_TOPIC))
                .then(|| TopicSpec::spread(OFFSETS_TOPIC, args.offsets_partitions, 3, &brokers)),
            )
            .collect(),
        session_timeout_ms: Some(args.session_timeout_ms),
        unclean_leader_election: args.unclean_leader_election,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        leader_rebalance_ms: (args.leader_rebalance_interval_ms > 0)
            .then_some(args.leader_rebalance_interval_ms),
        bugs: args.bugs.iter().copied().collect(),
    });
    let quorum = Arc::new(QuorumConfig {
        snapshot_every: (args.snapshot_every > 0).then_some(args.snapshot_every),
        ..QuorumConfig::new(args.id, voters, args.seed)
    });
    let node = QuorumController::recover(config, quorum, image);
    let node = AnyNode::QuorumController(Box::new(node));
    serve(args.id, &name, node, disk, &args.layout, listen, None).await
}

/// `100, 101 or 102`.
fn ids_text(ids: &[u32]) -> String {
    let text: Vec<String> = ids.iter().map(u32::to_string).collect();
    match text.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<i32> {
    let listen = *args
        .layout
        .brokers
        .brokers
        .get(args.id as usize)
        .with_context(|| format!("--id {} is not a position in --brokers", args.id))?;
    args.layout.check()?;
    let policy = if args.repair_corruption {
        CorruptionPolicy::Truncate
    } else {
        CorruptionPolicy::Refuse
    };
    let mut disk = FileDisk::open(&args.data_dir, policy)
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    let name = format!("broker {}", args.id);
    let recovered = disk
        .recover()
        .with_context(|| format!("{name}: cannot recover its data directory"))?;
    if let Some(note) = &recovered.note {
        eprintln!("{name}: recovery: {note}");
    }
    let (image, lost_data) = (recovered.image, recovered.lost_durable);
    let mut config = BrokerConfig::new(args.id, args.layout.controller_ids());
    config.durability = args.durability;
    config.min_insync_replicas = args.min_insync_replicas;
    config.max_fetch_records = args.max_fetch_records as usize;
    config.bugs = args.bugs.iter().copied().collect();
    config.group_session_timeout_ms = Some(args.group_session_timeout_ms);
    config.group_rebalance_timeout_ms = Some(args.group_session_timeout_ms);
    config.retention = RetentionPolicy {
        max_age_ms: args.retention_ms,
        max_bytes: args.retention_bytes,
    };
    if !config.retention.is_unlimited() {
        config.retention_check_ms = Some(1_000);
    }
    let image = match image {
        Image::Broker(b) => b,
        _ => Default::default(),
    };
    let node = Broker::recover(Arc::new(config), image, incarnation()).with_lost_data(lost_data);
    let kafka = args.kafka.layout(args.id, &args.layout.brokers.brokers)?;
    serve(
        args.id,
        &name,
        AnyNode::Broker(node),
        disk,
        &args.layout,
        listen,
        kafka,
    )
    .await
}

fn open_disk(dir: &Path) -> anyhow::Result<FileDisk> {
    FileDisk::open(dir, Default::default())
        .with_context(|| format!("cannot open the data directory {}", dir.display()))
}

fn recover(disk: &mut FileDisk, name: &str) -> anyhow::Result<Image> {
    let recovered = disk
        .recover()
        .with_context(|| format!("{name}: cannot recover its data directory"))?;
    if let Some(note) = &recovered.note {
        tracing::warn!("{name}: {note}");
        eprintln!("{name}: recovery: {note}");
    }
    Ok(recovered.image)
}

async fn serve(
    id: u32,
    name: &str,
    node: AnyNode,
    disk: FileDisk,
    layout: &LayoutArgs,
    listen: SocketAddr,
    kafka: Option<KafkaLayout>,
) -> anyhow::Result<i32> {
    let (net, inbox) = Net::new(id, layout.address_book());
    let local = net
        .listen(listen)
        .await
        .with_context(|| format!("{name}: cannot listen on {listen}"))?;
    if let Some(kafka) = kafka {
        let at = kafka.listen;
        let bound = seedlog::runtime::kafka::serve(net.clone(), id, kafka)
            .await
            .with_context(|| format!("{name}: cannot listen for Kafka clients on {at}"))?;
        println!("KAFKA {name} listening on {bound}");
    }
    // Scripts and tests wait for this line.
    println!("READY {name} listening on {local}");
    let node = Arc::new(Mutex::new(node));
    if matches!(*lock(&node), AnyNode::QuorumController(_)) {
        tokio::spawn(report_activity(name.to_string(), node.clone()));
    }
    let driver = Driver::new(id, name.to_string(), node, disk, net, inbox, wall_clock());
    tokio::select! {
        result = driver.run() => {
            result?;
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("{name}: interrupted, stopping");
        }
    }
    println!("RESULT ok node={}", name.replace(' ', "-"));
    Ok(0)
}

/// Prints a line whenever this controller becomes the active one or stops being it: no request
/// of the protocol names the active controller, and operators and tests need to find it.
async fn report_activity(name: String, node: Arc<Mutex<AnyNode>>) {
    let mut reported = None;
    loop {
        let active = lock(&node)
            .as_quorum_controller()
            .and_then(|c| c.active_epoch());
        if active != reported {
            match (active, reported) {
                (Some(epoch), _) => println!("ACTIVE {name} in quorum epoch {epoch}"),
                (None, Some(epoch)) => println!("STANDBY {name} (was active in epoch {epoch})"),
                (None, None) => {}
            }
            reported = active;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A number naming this run of the broker process, for its registration: above every earlier
/// run's, so that the controller tells a late request of an earlier run (delivered after this
/// one registered) from a restart, and ignores it. The start time in milliseconds, with 20
/// random low bits so that two runs started within a millisecond still differ (the standard
/// library's hasher keys are drawn from the operating system's randomness). A wall clock set
/// back across a restart only makes the new run wait until the earlier run's session expires.
fn incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    (millis << 20) | (h.finish() & 0xf_ffff)
}
