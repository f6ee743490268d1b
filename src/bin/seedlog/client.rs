//! Small clients for a real cluster, each the same state machine the simulator drives, run on
//! real TCP: `produce`, `consume` (alone, or as a member of a consumer group), `metadata`. Output
//! is JSON lines, then a `RESULT` line.

use crate::layout::{wall_clock, BrokersArgs, FIRST_CLIENT_ID};
use anyhow::bail;
use seedlog::node::{
    AnyNode, ClientEvent, Consumer, ConsumerConfig, Image, OffsetReset, Producer, ProducerConfig,
    Reader, ReaderConfig, Stage,
};
use seedlog::protocol::{Acks, Assignor, Message, Record};
use seedlog::runtime::disk::{Disk, DiskError, Recovered, SyncJob};
use seedlog::runtime::driver::{Driver, Observer};
use seedlog::runtime::lock;
use seedlog::runtime::net::Net;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    layout: BrokersArgs,
    #[arg(long)]
    topic: String,
    /// Number of records; values are `<prefix><n>`.
    #[arg(long, default_value_t = 10)]
    count: usize,
    #[arg(long, default_value = "v")]
    prefix: String,
    /// Keys cycle through `k0..k<keys-1>`; 0 sends records without a key.
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// all, 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Give up on the whole run after this long.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// `max.in.flight.requests.per.connection`: produce requests outstanding per broker (1-5).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=5))]
    max_in_flight: u64,
    /// `batch.size`: a partition's batch closes at this many bytes of records.
    #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// `linger.ms`: how long a batch may wait for more records once it could be sent.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    layout: BrokersArgs,
    #[arg(long)]
    topic: String,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this long.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Consume as a member of this consumer group: read the partitions the group assigns,
    /// starting at the group's committed offsets, and commit after processing each batch.
    /// With --count, leave the group once that many records are processed and committed.
    #[arg(long)]
    group: Option<String>,
    /// Where a group member starts a partition the group has no committed offset for:
    /// earliest, latest or none (stop with an error).
    #[arg(long, default_value = "earliest", value_parser = parse_reset, requires = "group")]
    offset_reset: OffsetReset,
    /// How the group spreads partitions over members: range or roundrobin.
    #[arg(long, default_value = "range", value_parser = parse_assignor, requires = "group")]
    assignor: Assignor,
    /// The group's leader member computes the assignment (Kafka's classic protocol; the
    /// coordinator carries it) instead of the coordinator. Every member of a group must agree.
    #[arg(long, requires = "group")]
    leader_assigns: bool,
    /// Seek: start PARTITION at OFFSET (forwards or backwards) instead of the group's committed
    /// offset, when this member first gets it (repeatable).
    #[arg(long, value_name = "PARTITION:OFFSET", value_parser = parse_seek, requires = "group")]
    seek: Vec<(u32, u64)>,
}

fn parse_seek(s: &str) -> Result<(u32, u64), String> {
    let bad = || format!("bad seek '{s}'; expected PARTITION:OFFSET, e.g. 0:42");
    let (p, o) = s.split_once(':').ok_or_else(bad)?;
    Ok((p.parse().map_err(|_| bad())?, o.parse().map_err(|_| bad())?))
}

fn parse_reset(s: &str) -> Result<OffsetReset, String> {
    s.parse()
}

fn parse_assignor(s: &str) -> Result<Assignor, String> {
    s.parse()
}

#[derive(clap::Args, Debug)]
pub struct CreateTopicArgs {
    #[command(flatten)]
    layout: BrokersArgs,
    /// The new topic's name: 1-249 characters of letters, digits, '.', '_' and '-'.
    #[arg(long)]
    topic: String,
    /// Partitions (default: the controller's, 1).
    #[arg(long)]
    partitions: Option<u32>,
    /// Replicas of each partition (default: the controller's, 3 or every live broker if fewer).
    #[arg(long)]
    replication_factor: Option<u32>,
    /// Check the request and print the assignment it would get; create nothing.
    #[arg(long)]
    validate_only: bool,
    /// How long to wait for one broker's answer before asking the next.
    #[arg(long, default_value_t = 5_000)]
    request_timeout_ms: u64,
    /// Give up after this long.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

#[derive(clap::Args, Debug)]
pub struct MetadataArgs {
    #[command(flatten)]
    layout: BrokersArgs,
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    match s {
        "all" | "-1" => Ok(Acks::All),
        "1" => Ok(Acks::Leader),
        "0" => Ok(Acks::None),
        _ => Err(format!("unknown acks '{s}'; expected all, 1 or 0")),
    }
}

/// Clients keep nothing on disk.
struct NoDisk;

impl Disk for NoDisk {
    fn append(&mut self, _: &seedlog::node::DiskOp) -> Result<(), DiskError> {
        Ok(())
    }
    fn start_sync(&mut self) -> SyncJob {
        Box::pin(std::future::ready(Ok(())))
    }
    fn sync(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
    fn recover(&mut self) -> Result<Recovered, DiskError> {
        Ok(Recovered {
            image: Image::Empty,
            ops: 0,
            dropped_bytes: 0,
            note: None,
            lost_durable: false,
        })
    }
}

/// Ids of clients: above every broker and controller, distinct per process.
fn client_id() -> u32 {
    FIRST_CLIENT_ID + std::process::id() % 1_000_000
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `node` until `done` says so or the timeout passes; returns whether it finished.
async fn drive(
    node: AnyNode,
    layout: &BrokersArgs,
    observer: Observer,
    timeout: Duration,
    done: impl Fn(&AnyNode) -> bool,
) -> bool {
    let id = client_id();
    let (net, inbox) = Net::new(id, layout.address_book());
    let state = Arc::new(Mutex::new(node));
    let driver = Driver::new(
        id,
        "client",
        state.clone(),
        NoDisk,
        net,
        inbox,
        wall_clock(),
    )
    .with_observer(observer);
    let task = tokio::spawn(driver.run());
    let deadline = tokio::time::Instant::now() + timeout;
    let finished = loop {
        if done(&lock(&state)) {
            break true;
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    task.abort();
    finished
}

pub async fn produce(args: ProduceArgs) -> anyhow::Result<i32> {
    let records: Vec<Record> = (0..args.count)
        .map(|n| {
            let value = format!("{}{n}", args.prefix);
            match args.keys {
                0 => Record {
                    key: None,
                    value: Some(value.into()),
                    timestamp: 0,
                    headers: Vec::new(),
                },
                k => Record::keyed(format!("k{}", n % k), value),
            }
        })
        .collect();
    let config = ProducerConfig {
        id: client_id(),
        bootstrap: args.layout.broker_ids(),
        topic: args.topic.clone(),
        acks: args.acks,
        records,
        sticky_batch: 16,
        seed: u64::from(client_id()),
        request_timeout_ms: Some(3_000),
        retry_backoff_ms: Some(200),
        idempotent: true,
        // Sequence numbers restart at 0 in every session, so each session needs an id never
        // used before: a broker grants one (InitProducerId).
        producer_id: None,
        send_interval_ms: None,
        delivery_timeout_ms: Some(args.timeout_ms),
        max_in_flight: args.max_in_flight as usize,
        batch_size_bytes: args.batch_size,
        linger_ms: (args.linger_ms > 0).then_some(args.linger_ms),
        // Kafka's default.
        metadata_max_age_ms: Some(300_000),
        bugs: Default::default(),
    };
    let values: Vec<String> = config
        .records
        .iter()
        .map(|r| r.value.as_deref().map(text).unwrap_or_default())
        .collect();
    // Records acknowledged, refused for good, and of unknown outcome.
    let counts = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let observer: Observer = {
        let counts = counts.clone();
        let value = move |id: &u64| values.get(*id as usize).cloned().unwrap_or_default();
        Arc::new(move |_, _, event: &ClientEvent| match event {
            ClientEvent::SendOk {
                id,
                partition,
                offset,
            } => {
                println!(
                    "{}",
                    serde_json::json!({"value": value(id), "partition": partition, "offset": offset})
                );
                lock(&counts).0 += 1;
            }
            ClientEvent::SendFail { id, reason } => {
                eprintln!("record {} refused: {reason}", value(id));
                lock(&counts).1 += 1;
            }
            ClientEvent::SendInfo { id, reason } => {
                eprintln!("record {} not acknowledged: {reason}", value(id));
                lock(&counts).2 += 1;
            }
            _ => {}
        })
    };
    let node = AnyNode::Producer(Producer::new(Arc::new(config)));
    let finished = drive(
        node,
        &args.layout,
        observer,
        Duration::from_millis(args.timeout_ms),
        |n| matches!(n, AnyNode::Producer(p) if p.finished()),
    )
    .await;
    let (acked, failed, unknown) = *lock(&counts);
    let ok = finished && acked == args.count;
    println!(
        "RESULT {} acked={acked} failed={failed} unknown={unknown} count={}",
        if ok { "ok" } else { "incomplete" },
        args.count
    );
    Ok(if ok { 0 } else { 1 })
}

/// One JSON line per record.
fn print_records(tp: &seedlog::protocol::TopicPartition, records: &[seedlog::protocol::LogEntry]) {
    for e in records {
        println!(
            "{}",
            serde_json::json!({
                "partition": tp.partition,
                "offset": e.offset,
                "key": e.record.key.as_deref().map(text),
                "value": e.record.value.as_deref().map(text),
            })
        );
    }
}

/// A move to a partition's log start (a fetch was out of range below it: retention deleted what
/// lies below), as one JSON line: a history needs it to tell deleted records from lost ones.
fn print_reset(tp: &seedlog::protocol::TopicPartition, offset: u64) {
    println!(
        "{}",
        serde_json::json!({"reset": {"partition": tp.partition, "offset": offset}})
    );
}

/// `consume --group`: a member of a consumer group.
async fn consume_in_group(args: ConsumeArgs, group: String) -> anyhow::Result<i32> {
    let config = ConsumerConfig {
        id: client_id(),
        bootstrap: args.layout.broker_ids(),
        group,
        topic: args.topic.clone(),
        assignor: args.assignor,
        leader_assigns: args.leader_assigns,
        auto_offset_reset: args.offset_reset,
        heartbeat_interval_ms: Some(1_000),
        request_timeout_ms: Some(3_000),
        retry_backoff_ms: Some(200),
        process_ms: None,
        rewind: None,
        seek_end_every: None,
        seek_time_every: None,
        max_records: args.count.map(|c| c as u64),
        recommit_ms: Some(5_000),
        seek_to: args.seek.iter().copied().collect(),
        require_known_member_id: true,
        bugs: Default::default(),
    };
    let seen = Arc::new(Mutex::new(0usize));
    let error = Arc::new(Mutex::new(None));
    let observer: Observer = {
        let (seen, error) = (seen.clone(), error.clone());
        Arc::new(move |_, _, event: &ClientEvent| match event {
            ClientEvent::Polled { tp, records, .. } => {
                print_records(tp, records);
                *lock(&seen) += records.len();
            }
            ClientEvent::Reset { tp, offset, .. } => print_reset(tp, *offset),
            ClientEvent::Commit {
                stage: Stage::Ok,
                tp,
                offset,
                ..
            } => println!(
                "{}",
                serde_json::json!({"committed": {"partition": tp.partition, "offset": offset}})
            ),
            ClientEvent::FetchCommitted {
                stage: Stage::Ok,
                tp,
                offset,
                ..
            } => eprintln!(
                "{tp}: group's committed offset is {}",
                offset.map_or("none".to_string(), |o| o.to_string())
            ),
            ClientEvent::Assigned {
                generation,
                partitions,
                ..
            } => {
                let tps: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
                eprintln!("generation {generation}: assigned [{}]", tps.join(", "));
            }
            ClientEvent::ConsumerError { reason } => *lock(&error) = Some(reason.clone()),
            _ => {}
        })
    };
    let node = AnyNode::Consumer(Box::new(Consumer::new(Arc::new(config))));
    let finished = drive(
        node,
        &args.layout,
        observer,
        Duration::from_millis(args.timeout_ms),
        |n| matches!(n, AnyNode::Consumer(c) if c.finished()),
    )
    .await;
    if let Some(reason) = lock(&error).take() {
        bail!("{reason}");
    }
    let n = *lock(&seen);
    let ok = args.count.is_none() || finished;
    println!(
        "RESULT {} records={n}",
        if ok { "ok" } else { "incomplete" }
    );
    Ok(if ok { 0 } else { 1 })
}

pub async fn consume(args: ConsumeArgs) -> anyhow::Result<i32> {
    if let Some(group) = args.group.clone() {
        return consume_in_group(args, group).await;
    }
    let config = ReaderConfig {
        id: client_id(),
        bootstrap: args.layout.broker_ids(),
        topic: args.topic.clone(),
        request_timeout_ms: Some(3_000),
        retry_backoff_ms: Some(200),
    };
    let seen = Arc::new(Mutex::new(0usize));
    let observer: Observer = {
        let seen = seen.clone();
        Arc::new(move |_, _, event: &ClientEvent| match event {
            ClientEvent::Polled { tp, records, .. } => {
                print_records(tp, records);
                *lock(&seen) += records.len();
            }
            ClientEvent::Reset { tp, offset, .. } => print_reset(tp, *offset),
            _ => {}
        })
    };
    let node = AnyNode::Reader(Reader::new(Arc::new(config)));
    let want = args.count;
    let counter = seen.clone();
    drive(
        node,
        &args.layout,
        observer,
        Duration::from_millis(args.timeout_ms),
        move |_| want.is_some_and(|w| *lock(&counter) >= w),
    )
    .await;
    let n = *lock(&seen);
    let ok = args.count.is_none_or(|w| n >= w);
    println!(
        "RESULT {} records={n}",
        if ok { "ok" } else { "incomplete" }
    );
    Ok(if ok { 0 } else { 1 })
}

/// Creates a topic through a broker, which forwards the request to the active controller; the
/// answer comes once the quorum has committed the topic. A broker that does not answer in time
/// is left for the next, with the same request: if an unanswered attempt created the topic, the
/// retry is told it exists, and the output says that it may be this command's own.
pub async fn create_topic(args: CreateTopicArgs) -> anyhow::Result<i32> {
    use seedlog::protocol::{CreateTopicRequest, ErrorCode};
    let (net, mut inbox) = Net::new(client_id(), args.layout.address_book());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(args.timeout_ms);
    let request = CreateTopicRequest {
        correlation: 1,
        topic: args.topic.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        validate_only: args.validate_only,
    };
    let mut attempts = 0;
    for broker in args.layout.broker_ids().into_iter().cycle() {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        attempts += 1;
        net.send(broker, Message::CreateTopic(request.clone()));
        let wait = Duration::from_millis(args.request_timeout_ms).min(deadline - now);
        let answer = tokio::time::timeout(wait, async {
            loop {
                match inbox.recv().await {
                    Some((_, Message::CreateTopicResponse(r))) if r.topic == args.topic => {
                        return Some(r.result)
                    }
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await;
        match answer {
            Ok(Some(Ok(replicas))) => {
                let line = serde_json::json!({
                    "topic": args.topic,
                    "validate_only": args.validate_only,
                    "replicas": replicas,
                });
                println!("{line}");
                println!("RESULT ok partitions={}", replicas.len());
                return Ok(0);
            }
            Ok(Some(Err(e))) if e.is_retriable() => {
                eprintln!("broker {broker}: {e}; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(Some(Err(e))) => {
                if e == ErrorCode::TopicAlreadyExists && attempts > 1 {
                    eprintln!("note: an earlier attempt went unanswered and may have created it");
                }
                eprintln!("error: {} refused: {e}", args.topic);
                println!("RESULT refused error={e}");
                return Ok(1);
            }
            Ok(None) | Err(_) => {}
        }
    }
    bail!(
        "no answer about {} within {} ms (it may still be created)",
        args.topic,
        args.timeout_ms
    )
}

pub async fn metadata(args: MetadataArgs) -> anyhow::Result<i32> {
    let (net, mut inbox) = Net::new(client_id(), args.layout.address_book());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(args.timeout_ms);
    for broker in args.layout.broker_ids().into_iter().cycle() {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        net.send(broker, Message::Metadata { min_version: 1 });
        if let Ok(Some((_, Message::MetadataResponse(md)))) =
            tokio::time::timeout(Duration::from_millis(1_000), inbox.recv()).await
        {
            println!("{}", serde_json::to_string(&md)?);
            println!("RESULT ok version={}", md.version);
            return Ok(0);
        }
    }
    bail!("no broker answered within {} ms", args.timeout_ms)
}
