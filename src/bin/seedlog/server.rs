//! `seedlog controller` and `seedlog broker`: one node per process, recovered from its data
//! directory, listening on TCP until interrupted.

use crate::layout::{wall_clock, LayoutArgs, TopicArg, CONTROLLER_ID};
use anyhow::Context as _;
use seedlog::log::RetentionPolicy;
use seedlog::node::{
    AnyNode, Broker, BrokerConfig, Controller, ControllerConfig, Durability, Image, TopicSpec,
    PRODUCER_ID_BLOCK_SIZE,
};
use seedlog::protocol::OFFSETS_TOPIC;
use seedlog::runtime::disk::{CorruptionPolicy, Disk};
use seedlog::runtime::driver::Driver;
use seedlog::runtime::file_disk::FileDisk;
use seedlog::runtime::net::Net;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    #[command(flatten)]
    layout: LayoutArgs,
    /// Topics to create at the first start, as name:partitions:replication (repeatable).
    #[arg(long = "topic")]
    topics: Vec<TopicArg>,
    /// Where the controller keeps its state.
    #[arg(long)]
    data_dir: PathBuf,
    /// A broker that sends no heartbeat for this long is fenced.
    #[arg(long, default_value_t = 3_000)]
    session_timeout_ms: u64,
    /// Elect an out-of-sync replica when no in-sync one is alive (loses data).
    #[arg(long)]
    unclean_leader_election: bool,
    /// Partitions of the internal `__consumer_offsets` topic (created at the first start,
    /// replicated on up to 3 brokers) that holds consumer groups' committed offsets.
    #[arg(long, default_value_t = 3)]
    offsets_partitions: u32,
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
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

pub async fn controller(args: ControllerArgs) -> anyhow::Result<i32> {
    let listen = args.layout.controller_addr()?;
    let mut disk = open_disk(&args.data_dir)?;
    let image = recover(&mut disk, "controller")?;
    let config = Arc::new(ControllerConfig {
        id: CONTROLLER_ID,
        brokers: args.layout.broker_ids(),
        topics: args
            .topics
            .iter()
            .map(|t| {
                TopicSpec::spread(
                    &t.name,
                    t.partitions,
                    t.replication,
                    &args.layout.broker_ids(),
                )
            })
            .chain(
                (args.offsets_partitions > 0
                    && !args.topics.iter().any(|t| t.name == OFFSETS_TOPIC))
                .then(|| {
                    let brokers = args.layout.broker_ids();
                    TopicSpec::spread(OFFSETS_TOPIC, args.offsets_partitions, 3, &brokers)
                }),
            )
            .collect(),
        session_timeout_ms: Some(args.session_timeout_ms),
        unclean_leader_election: args.unclean_leader_election,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        bugs: Default::default(),
    });
    let node = match image {
        Image::Controller(img) => Controller::recover(config, img),
        _ => Controller::new(config),
    };
    serve(
        CONTROLLER_ID,
        "controller",
        AnyNode::Controller(node),
        disk,
        &args.layout,
        listen,
    )
    .await
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<i32> {
    let listen = *args
        .layout
        .brokers
        .get(args.id as usize)
        .with_context(|| format!("--id {} is not a position in --brokers", args.id))?;
    args.layout.controller_addr()?;
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
    let mut config = BrokerConfig::new(args.id, vec![CONTROLLER_ID]);
    config.durability = args.durability;
    config.min_insync_replicas = args.min_insync_replicas;
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
    let node = Broker::recover(Arc::new(config), image).with_lost_data(lost_data);
    serve(
        args.id,
        &name,
        AnyNode::Broker(node),
        disk,
        &args.layout,
        listen,
    )
    .await
}

fn open_disk(dir: &std::path::Path) -> anyhow::Result<FileDisk> {
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
) -> anyhow::Result<i32> {
    let (net, inbox) = Net::new(id, layout.address_book());
    let local = net
        .listen(listen)
        .await
        .with_context(|| format!("{name}: cannot listen on {listen}"))?;
    // Scripts and tests wait for this line.
    println!("READY {name} listening on {local}");
    let driver = Driver::new(
        id,
        name.to_string(),
        Arc::new(Mutex::new(node)),
        disk,
        net,
        inbox,
        wall_clock(),
    );
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
