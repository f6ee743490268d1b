//! The simulated cluster: one madsim node per seedlog node, each running the same `Driver` the
//! real broker runs, over simulated TCP, with a `SimDisk` and a `SimClock` owned here so they
//! survive kills.

use super::committed::CommittedLog;
use super::cross_checks::CrossChecks;
use super::holds::Holds;
use crate::scenario::{
    Scenario, ADMIN, FINAL_READER, FIRST_CONTROLLER, FIRST_MEMBER, FIRST_PRODUCER, FIRST_READER,
    GROUP, OFFSETS_PARTITIONS, TOPIC,
};
use seedlog::node::{
    run_incarnation, Admin, AdminConfig, AnyNode, Broker, BrokerConfig, Bug, ClientEvent, Consumer,
    ConsumerConfig, ControllerConfig, Durability, Image, OffsetReset, Producer, ProducerConfig,
    QuorumConfig, QuorumController, Reader, ReaderConfig, Rewind, Situation, Stage, TopicSpec,
    PRODUCER_ID_BLOCK_SIZE,
};
use seedlog::protocol::{
    group_partition, Acks, Assignor, ClusterMetadata, NodeId, Offset, Record, TopicPartition,
    OFFSETS_TOPIC,
};
use seedlog::runtime::disk::CorruptionPolicy;
use seedlog::runtime::driver::{
    AppCall, AppCalls, Clock, CommitSink, Committed, CoverageSink, Driver, DriverError, Observer,
};
pub use seedlog::runtime::lock;
use seedlog::runtime::net::{AddressBook, Net};
use seedlog::runtime::sim_clock::SimClock;
use seedlog::runtime::sim_disk::{SimDisk, SyncLatency};
use seedlog::runtime::trace::{with_trace, SharedTrace};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// A client operation as a node reported it.
#[derive(Clone, Debug)]
pub struct Observed {
    pub node: NodeId,
    pub time_ms: u64,
    pub event: ClientEvent,
}

/// Counts of the situations a run reached, shared by its nodes' drivers and the harness.
#[derive(Clone, Default)]
pub struct Coverage(Arc<Mutex<BTreeMap<Situation, u64>>>);

impl Coverage {
    pub fn add(&self, situation: Situation) {
        *lock(&self.0).entry(situation).or_default() += 1;
    }

    pub fn counts(&self) -> BTreeMap<Situation, u64> {
        lock(&self.0).clone()
    }
}

pub struct SimNode {
    pub id: NodeId,
    pub handle: madsim::runtime::NodeHandle,
    /// The node's state, replaced at every (re)start; read by the final checks.
    pub state: Arc<Mutex<AnyNode>>,
    pub disk: SimDisk,
    /// The node's own clock: its `now_ms` and its timers' rate. Clock faults act on it.
    pub clock: SimClock,
    /// Where its application's calls go, for a producer (replaced at every start).
    app_calls: Arc<Mutex<Option<AppCalls>>>,
}

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, SimNode>,
    pub history: Arc<Mutex<Vec<Observed>>>,
    pub trace: SharedTrace,
    /// Nodes whose driver stopped with an error, as problem lines: `node-invariant ...` for a
    /// broken invariant, `node-failure: ...` for anything else (an unrecoverable disk).
    pub failures: Arc<Mutex<Vec<String>>>,
    /// Signalled when a node breaks an invariant: the run stops there.
    pub broken: Arc<tokio::sync::Notify>,
    /// How often each protocol situation was reached in this run.
    pub coverage: Coverage,
    /// The quorum's committed entries as the first controller to apply each offset applied it,
    /// against which every applied entry and every snapshot is checked (`committed.rs`).
    pub committed: Arc<Mutex<CommittedLog>>,
    /// Every node's state by id (the same handles as `nodes`) and what the checks a node's step
    /// makes against the others keep over the run (`cross_checks`).
    cross: CrossChecks,
    /// True simulated time since `start`: traces and the history are stamped with it.
    pub clock: Clock,
    /// The scenario's seed and sync latency, for each node's disk.
    seed: u64,
    sync_latency_ms: (u64, u64),
    /// When the run started; every node's own clock counts from here.
    pub start: tokio::time::Instant,
    /// Links held by `hold` faults, and whether the scenario has any (only then do the nodes'
    /// inboxes go through the gate: `holds`).
    pub holds: Holds,
    gated: bool,
}

impl Cluster {
    /// Every controller that believes it is the active one, with its epoch, in id order (two
    /// may for a moment: a deposed one that has not heard of its successor).
    pub fn active_controllers(&self) -> Vec<(NodeId, seedlog::protocol::QuorumEpoch)> {
        self.nodes
            .iter()
            .filter_map(|(&id, n)| {
                Some((id, lock(&n.state).as_quorum_controller()?.active_epoch()?))
            })
            .collect()
    }

    /// The active controller with the newest epoch, and its committed metadata.
    pub fn active_controller(
        &self,
    ) -> Option<(NodeId, seedlog::protocol::QuorumEpoch, ClusterMetadata)> {
        let (id, epoch) = self
            .active_controllers()
            .into_iter()
            .max_by_key(|(_, e)| *e)?;
        let metadata = lock(&self.nodes[&id].state)
            .as_quorum_controller()?
            .metadata()
            .clone();
        Some((id, epoch, metadata))
    }

    /// Hands `call` to node `id`'s application (a producer's); false if it takes none now.
    pub fn app_call(&self, id: NodeId, call: AppCall) -> bool {
        let Some(n) = self.nodes.get(&id) else {
            return false;
        };
        lock(&n.app_calls)
            .as_ref()
            .is_some_and(|tx| tx.send(call).is_ok())
    }

    /// Kills every node and lets the runtime drop their tasks. A task left pending when the
    /// runtime is dropped is never freed (its future holds channels whose wakers point back at
    /// it), so without this a sweep kept about 3 MB per seed for good.
    pub async fn shut_down(&self) {
        let handle = madsim::runtime::Handle::current();
        for n in self.nodes.values() {
            handle.kill(n.handle.id());
        }
        // Killed tasks are dropped when next scheduled: before time moves on again.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn ip_of(id: NodeId) -> IpAddr {
    let [_, _, hi, lo] = id.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo.wrapping_add(1)))
}

const PORT: u16 = 9092;

/// Where the brokers and the controllers listen (clients have no address).
fn address_book(sc: &Scenario) -> Arc<AddressBook> {
    Arc::new(
        sc.broker_ids()
            .into_iter()
            .chain(sc.controller_ids())
            .map(|id| (id, SocketAddr::new(ip_of(id), PORT)))
            .collect(),
    )
}

pub fn broker_config(sc: &Scenario, id: NodeId) -> BrokerConfig {
    let mut c = BrokerConfig::new(id, sc.controller_ids());
    c.durability = sc.durability;
    c.min_insync_replicas = sc.min_insync_replicas;
    c.replica_lag_time_max_ms = Some(sc.replica_lag_time_max_ms.unwrap_or(3_000));
    if let Some(ms) = sc.fetch_max_wait_ms {
        c.fetch_max_wait_ms = Some(ms);
    }
    if let Some(ms) = sc.fetch_timeout_ms {
        c.fetch_timeout_ms = Some(ms);
    }
    c.group_session_timeout_ms = Some(3_000);
    c.group_rebalance_timeout_ms = Some(3_000);
    // Small, so that runs compact `__consumer_offsets` many times.
    c.offsets_compact_after = Some(30);
    c.retention = sc.retention.clone();
    c.retention_check_ms = sc.retention_check_ms;
    c.max_replica_fetch_records = sc.replica_fetch_records;
    c.bugs = sc.bugs.iter().copied().collect();
    c
}

/// Committed quorum entries between snapshots: small, so that a run takes several and a
/// controller that was down or cut off for a while installs its leader's.
pub const SNAPSHOT_EVERY: Offset = 8;

/// Controller `id`'s voter: KRaft's timings halved (the brokers' session is 2 s here), its
/// election timeouts drawn from the scenario's seed.
pub fn quorum_config(sc: &Scenario, id: NodeId) -> QuorumConfig {
    QuorumConfig {
        election_timeout_ms: Some(500),
        election_jitter_ms: 500,
        fetch_timeout_ms: Some(1_000),
        fetch_max_wait_ms: Some(250),
        check_quorum_ms: Some(1_500),
        snapshot_every: Some(SNAPSHOT_EVERY),
        max_fetch_entries: sc.quorum_fetch_entries,
        bugs: sc.bugs.iter().copied().collect(),
        ..QuorumConfig::new(id, sc.controller_ids(), sc.seed)
    }
}

pub fn controller_config(sc: &Scenario) -> ControllerConfig {
    ControllerConfig {
        id: FIRST_CONTROLLER,
        brokers: sc.broker_ids(),
        topics: vec![
            TopicSpec::spread(TOPIC, sc.partitions, sc.replication, &sc.broker_ids()),
            TopicSpec::spread(
                OFFSETS_TOPIC,
                OFFSETS_PARTITIONS,
                sc.replication,
                &sc.broker_ids(),
            ),
        ],
        session_timeout_ms: Some(2_000),
        unclean_leader_election: sc.unclean_leader_election,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        leader_rebalance_ms: sc.leader_rebalance_ms,
        bugs: sc.bugs.iter().copied().collect(),
    }
}

pub fn producer_config(sc: &Scenario, index: usize) -> ProducerConfig {
    let plan = &sc.producers[index];
    let id = FIRST_PRODUCER + index as u32;
    // Beyond the send phase's records, those the probe after convergence hands over.
    let records = (0..plan.records + super::probe::records(plan.keys))
        .map(|n| {
            let key = format!("k{}", (n as u32 * 7 + index as u32) % plan.keys);
            Record::keyed(key, format!("p{index}-{n}"))
        })
        .collect();
    ProducerConfig {
        id,
        bootstrap: sc.broker_ids(),
        topic: TOPIC.into(),
        acks: plan.acks,
        records,
        sticky_batch: 4,
        seed: sc.seed ^ u64::from(id),
        request_timeout_ms: Some(plan.request_timeout_ms.unwrap_or(2_000)),
        retry_backoff_ms: Some(100),
        idempotent: true,
        // Granted by a broker (InitProducerId), as in Kafka.
        producer_id: None,
        send_interval_ms: Some(plan.interval_ms),
        delivery_timeout_ms: Some(plan.delivery_timeout_ms),
        max_in_flight: plan.max_in_flight,
        batch_size_bytes: plan.batch_size_bytes,
        linger_ms: plan.linger_ms,
        metadata_max_age_ms: plan.metadata_max_age_ms,
        bugs: sc.bugs.iter().copied().collect(),
    }
}

pub fn admin_config(sc: &Scenario) -> AdminConfig {
    AdminConfig {
        id: ADMIN,
        bootstrap: sc.broker_ids(),
        topics: sc.created_topics.clone(),
        request_timeout_ms: Some(2_000),
    }
}

pub fn reader_config(sc: &Scenario, id: NodeId) -> ReaderConfig {
    ReaderConfig {
        id,
        bootstrap: sc.broker_ids(),
        topic: TOPIC.into(),
        request_timeout_ms: Some(2_000),
        retry_backoff_ms: Some(100),
    }
}

pub fn member_config(sc: &Scenario, index: u32) -> ConsumerConfig {
    ConsumerConfig {
        id: FIRST_MEMBER + index,
        bootstrap: sc.broker_ids(),
        group: GROUP.into(),
        topic: TOPIC.into(),
        // The two assignors take turns by seed.
        assignor: if sc.seed.is_multiple_of(2) {
            Assignor::Range
        } else {
            Assignor::RoundRobin
        },
        // And who assigns, in pairs of seeds: the coordinator, or the group's leader member
        // (Kafka's classic protocol, where the coordinator only carries the assignment).
        // (Hunting `sync-before-assignment`, always the leader.)
        leader_assigns: (sc.seed / 2) % 2 == 1 || sc.bugs.contains(&Bug::SyncBeforeAssignment),
        auto_offset_reset: OffsetReset::Earliest,
        heartbeat_interval_ms: Some(500),
        request_timeout_ms: Some(2_000),
        retry_backoff_ms: Some(100),
        process_ms: Some(sc.process_ms.max(1)),
        // Every seventh batch the member re-reads: two records back, or (two seeds in five, and
        // the hunt for `replay-keeps-highest-offset`) twenty-five, committing the lower offsets
        // as it goes, so the group's offset stays below an earlier commit for a while (a
        // coordinator that fails over then must give the last commit, not the highest).
        rewind: Some(Rewind {
            every: 7,
            back: if sc.seed % 5 < 2 || sc.bugs.contains(&Bug::ReplayKeepsHighestOffset) {
                25
            } else {
                2
            },
        }),
        // Two seeds in three also jump to the partition's end now and then, asking its leader for
        // the latest offset (ListOffsets) while faults go on; the hunt for
        // `keep-stale-list-offsets` after every batch that does not rewind, so a request is often
        // in flight.
        seek_end_every: if sc.bugs.contains(&Bug::KeepStaleListOffsets) {
            Some(1)
        } else {
            (sc.seed % 3 != 2).then_some(5)
        },
        // Two seeds in three (not the same two) re-read from a record's time now and then,
        // asking the leader for the first offset at or after it (ListOffsets by time).
        // The hunts for the lookup's switches, after every batch that neither rewinds nor
        // seeks to the end.
        seek_time_every: if sc.bugs.iter().any(|b| {
            matches!(
                b,
                Bug::TimeLookupStrict | Bug::TimeLookupPastHw | Bug::MaxTimestampLastTie
            )
        }) {
            Some(1)
        } else {
            (sc.seed % 3 != 1).then_some(3)
        },
        max_records: None,
        // Kafka's auto-commit interval: re-commits after a commit of unknown outcome.
        recommit_ms: Some(5_000),
        seek_to: Default::default(),
        require_known_member_id: true,
        bugs: sc.bugs.iter().copied().collect(),
    }
}

impl Cluster {
    /// Creates every node of the scenario except the final reader, which `add_final_reader`
    /// starts after the faults heal.
    pub fn build(sc: &Scenario, trace: SharedTrace, start: tokio::time::Instant) -> Cluster {
        let clock: Clock = Arc::new(move || start.elapsed().as_millis() as u64);
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            history: Arc::new(Mutex::new(Vec::new())),
            trace,
            failures: Arc::new(Mutex::new(Vec::new())),
            broken: Arc::new(tokio::sync::Notify::new()),
            coverage: Coverage::default(),
            committed: Arc::new(Mutex::new(CommittedLog::new(
                Arc::new(controller_config(sc)),
                quorum_config(sc, FIRST_CONTROLLER).snapshot_every,
            ))),
            cross: {
                let cross = CrossChecks::new(sc.unclean_leader_election, sc.min_insync_replicas);
                match sc.durability {
                    Durability::Fsync => cross.with_fsync(),
                    Durability::Replicated => cross,
                }
            },
            clock,
            seed: sc.seed,
            sync_latency_ms: sc.sync_latency_ms,
            start,
            holds: Holds::default(),
            gated: sc
                .schedule
                .events
                .iter()
                .any(|e| matches!(e.fault, crate::faults::Fault::Hold { .. })),
        };
        let addrs = address_book(sc);
        let controller = Arc::new(controller_config(sc));
        for id in sc.controller_ids() {
            let (controller, quorum) = (controller.clone(), Arc::new(quorum_config(sc, id)));
            cluster.add_node(id, &addrs, true, sc, move |image, _| {
                let image = match image {
                    Image::Quorum(q) => q,
                    _ => Default::default(),
                };
                let node = QuorumController::recover(controller.clone(), quorum.clone(), image);
                AnyNode::QuorumController(Box::new(node))
            });
        }
        for id in sc.broker_ids() {
            let config = Arc::new(broker_config(sc, id));
            // Each start of the broker is a new run of its process: its boot count names it.
            let boots = std::sync::atomic::AtomicU64::new(0);
            cluster.add_node(id, &addrs, true, sc, move |image, lost_data| {
                let image = match image {
                    Image::Broker(b) => b,
                    _ => Default::default(),
                };
                let run = boots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let broker = Broker::recover(config.clone(), image, run_incarnation(run));
                AnyNode::Broker(broker.with_lost_data(lost_data))
            });
        }
        for index in 0..sc.producers.len() {
            let config = Arc::new(producer_config(sc, index));
            cluster.add_node(config.id, &addrs, false, sc, move |_, _| {
                AnyNode::Producer(Producer::new(config.clone()))
            });
        }
        for r in 0..sc.readers {
            let config = Arc::new(reader_config(sc, FIRST_READER + r));
            cluster.add_node(config.id, &addrs, false, sc, move |_, _| {
                AnyNode::Reader(Reader::new(config.clone()))
            });
        }
        if !sc.created_topics.is_empty() {
            let config = Arc::new(admin_config(sc));
            cluster.add_node(ADMIN, &addrs, false, sc, move |_, _| {
                AnyNode::Admin(Admin::new(config.clone()))
            });
        }
        for m in 0..sc.members {
            // A restarted member keeps nothing: it resumes from the group's committed offsets.
            let config = Arc::new(member_config(sc, m));
            cluster.add_node(config.id, &addrs, false, sc, move |_, _| {
                AnyNode::Consumer(Box::new(Consumer::new(config.clone())))
            });
        }
        cluster
    }

    pub fn add_final_reader(&mut self, sc: &Scenario) {
        let config = Arc::new(reader_config(sc, FINAL_READER));
        self.add_node(FINAL_READER, &address_book(sc), false, sc, move |_, _| {
            AnyNode::Reader(Reader::new(config.clone()))
        });
    }

    /// One madsim node whose init task recovers the seedlog node from its disk and runs it.
    fn add_node(
        &mut self,
        id: NodeId,
        addrs: &Arc<AddressBook>,
        listens: bool,
        sc: &Scenario,
        recover: impl Fn(Image, bool) -> AnyNode + Send + Sync + 'static,
    ) {
        let name = Scenario::node_name(id);
        let spec = sc.clock(id);
        let node_clock = SimClock::new(self.start, spec.offset_ms, spec.drift_ppm);
        let state = Arc::new(Mutex::new(recover(Image::Empty, false)));
        lock(&self.cross.peers).insert(id, state.clone());
        let app_calls: Arc<Mutex<Option<AppCalls>>> = Arc::default();
        // A broker cut by a corrupt frame re-fetches from its leader. A controller refuses a
        // corrupt log (the quorum has no repair of a voter's cut log yet), and its disk gets no
        // bit flips (see faults/generate.rs).
        let disk_policy = if id < FIRST_CONTROLLER {
            CorruptionPolicy::Truncate
        } else {
            CorruptionPolicy::Refuse
        };
        let (min_ms, max_ms) = self.sync_latency_ms;
        let disk = SimDisk::new(name.clone(), disk_policy).with_latency(SyncLatency {
            min_ms,
            max_ms,
            seed: self.seed ^ (u64::from(id) << 32),
        });
        // Producers' acks=all answers are held to the high watermarks (`acked-above-hw`), and
        // acks=1 answers to what brokers synced (`leader-acked-unsynced`, fsync only).
        let acks = id
            .checked_sub(FIRST_PRODUCER)
            .and_then(|i| sc.producers.get(i as usize))
            .map(|p| p.acks);
        let observer: Observer = {
            let history = self.history.clone();
            let coverage = self.coverage.clone();
            let (cross, failures) = (self.cross.clone(), self.failures.clone());
            Arc::new(move |node, time_ms, event: &ClientEvent| {
                match event {
                    ClientEvent::SendOk {
                        partition, offset, ..
                    } => {
                        let tp = TopicPartition::new(TOPIC, *partition);
                        let checked = match acks {
                            Some(Acks::All) => cross.acked_answer(&tp, *offset),
                            Some(Acks::Leader) => cross.leader_acked_answer(&tp, *offset),
                            _ => Ok(()),
                        };
                        if let Err(e) = checked {
                            lock(&failures).push(e);
                        }
                    }
                    ClientEvent::Reset { tp, offset, .. } => {
                        coverage.add(Situation::ConsumerResetToLogStart);
                        if let Err(e) = cross.log_start_reset(tp, *offset) {
                            lock(&failures).push(e);
                        }
                    }
                    ClientEvent::Commit {
                        stage: Stage::Ok,
                        group,
                        tp,
                        offset,
                    } => {
                        let p = group_partition(group, OFFSETS_PARTITIONS);
                        let offsets = TopicPartition::new(OFFSETS_TOPIC, p);
                        if let Err(e) = cross.commit_answer(node, &offsets, group, tp, *offset) {
                            lock(&failures).push(e);
                        }
                    }
                    ClientEvent::Polled { tp, records, .. } => {
                        if let Some(last) = records.last() {
                            if let Err(e) = cross.read_answer(tp, last.offset) {
                                lock(&failures).push(e);
                            }
                        }
                    }
                    ClientEvent::LatestOffset {
                        tp,
                        offset: Some(o),
                        leader_epoch,
                        ..
                    } => {
                        if let Err(e) = cross.latest_answer(tp, *o, *leader_epoch) {
                            lock(&failures).push(e);
                        }
                    }
                    ClientEvent::OffsetForTime {
                        tp,
                        offset: Some(o),
                        record_timestamp,
                        leader_epoch,
                        ..
                    }
                    | ClientEvent::OffsetForMaxTimestamp {
                        tp,
                        offset: Some(o),
                        record_timestamp,
                        leader_epoch,
                        ..
                    } => {
                        // By a time or by the largest timestamp, the leader looks at committed
                        // records only: a record found lies below some leader's high watermark,
                        // and with none found the answer is the high watermark, a latest offset
                        // held to what older epochs reached as well.
                        let found = record_timestamp.is_some();
                        let checked = cross.time_answer(tp, *o, found).and_then(|_| match found {
                            true => Ok(()),
                            false => cross.latest_answer(tp, *o, *leader_epoch),
                        });
                        if let Err(e) = checked {
                            lock(&failures).push(e);
                        }
                    }
                    _ => {}
                }
                lock(&history).push(Observed {
                    node,
                    time_ms,
                    event: event.clone(),
                })
            })
        };
        let init = {
            let node_clock = node_clock.clone();
            let (state, disk, addrs, name) =
                (state.clone(), disk.clone(), addrs.clone(), name.clone());
            let (trace, clock, failures, broken, coverage) = (
                self.trace.clone(),
                self.clock.clone(),
                self.failures.clone(),
                self.broken.clone(),
                self.coverage.clone(),
            );
            let commits = commit_check(&self.committed, &failures, &broken, &name);
            let cross_check = self.cross.step_check(&self.committed);
            let holds = self.gated.then(|| self.holds.clone());
            let app_calls = app_calls.clone();
            move || {
                let holds = holds.clone();
                let app_calls = app_calls.clone();
                let node_clock = node_clock.clone();
                let (state, mut disk, addrs, name) =
                    (state.clone(), disk.clone(), addrs.clone(), name.clone());
                let (trace, clock, failures, observer, broken, coverage, commits) = (
                    trace.clone(),
                    clock.clone(),
                    failures.clone(),
                    observer.clone(),
                    broken.clone(),
                    coverage.clone(),
                    commits.clone(),
                );
                let cross_check = cross_check.clone();
                let node = match seedlog::runtime::disk::Disk::recover(&mut disk) {
                    Ok(r) => {
                        if r.lost_durable {
                            coverage.add(Situation::CrcCut);
                        } else if r.note.is_some() {
                            coverage.add(Situation::TornWriteRecovered);
                        }
                        if let Some(note) = &r.note {
                            let now = clock();
                            with_trace(&trace, |t| {
                                t.record(now, &name, "recovery", note.as_bytes(), || note.clone())
                            });
                        }
                        Some(recover(r.image, r.lost_durable))
                    }
                    Err(e) => {
                        lock(&failures).push(format!(
                            "node-failure: {name}: cannot recover its disk: {e}"
                        ));
                        None
                    }
                };
                async move {
                    let Some(node) = node else { return };
                    disk.node_installed();
                    let synced = super::disk_check::synced_on_disk(
                        &node,
                        &disk,
                        &name,
                        clock(),
                        "as it starts from what it recovered",
                    );
                    if let Some(problem) = synced {
                        lock(&failures).push(problem);
                        broken.notify_one();
                        return;
                    }
                    let is_producer = matches!(node, AnyNode::Producer(_));
                    *lock(&state) = node;
                    let (net, inbox) = Net::new(id, (*addrs).clone());
                    // A restarted node keeps its id: its connections are numbered past every
                    // number its earlier incarnations can have used (fewer than a million per
                    // millisecond), so brokers answer a client on its newest.
                    net.number_connections_from(clock().saturating_mul(1_000_000));
                    let inbox = match &holds {
                        Some(h) => h.gate(id, inbox),
                        None => inbox,
                    };
                    if listens {
                        if let Some(&addr) = addrs.get(&id) {
                            if let Err(e) = net.listen(addr).await {
                                lock(&failures)
                                    .push(format!("node-failure: {name}: cannot listen: {e}"));
                                return;
                            }
                        }
                    }
                    let sink: CoverageSink = {
                        let coverage = coverage.clone();
                        Arc::new(move |_, situation| coverage.add(situation))
                    };
                    let driver = Driver::new(id, name.clone(), state, disk, net, inbox, clock)
                        .with_node_clock(Arc::new(node_clock))
                        .with_trace(trace)
                        .with_observer(observer)
                        .with_coverage(sink)
                        .with_commit_sink(commits)
                        .with_step_check(cross_check);
                    let driver = if is_producer {
                        let (driver, calls) = driver.with_app_calls();
                        *lock(&app_calls) = Some(calls);
                        driver
                    } else {
                        driver
                    };
                    match driver.run().await {
                        Ok(()) => {}
                        Err(e @ DriverError::Invariant { .. }) => {
                            lock(&failures).push(e.to_string());
                            broken.notify_one();
                        }
                        Err(e) => lock(&failures).push(format!("node-failure: {e}")),
                    }
                }
            }
        };
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(name)
            .ip(ip_of(id))
            .init(init)
            .build();
        self.nodes.insert(
            id,
            SimNode {
                id,
                handle,
                state,
                disk,
                clock: node_clock,
                app_calls,
            },
        );
    }
}

/// Checks everything a controller hands its metadata (each entry, each snapshot) against the
/// committed history (`CommittedLog`): a difference stops the run like a broken invariant.
fn commit_check(
    committed: &Arc<Mutex<CommittedLog>>,
    failures: &Arc<Mutex<Vec<String>>>,
    broken: &Arc<tokio::sync::Notify>,
    name: &str,
) -> CommitSink {
    let (committed, failures, broken, name) = (
        committed.clone(),
        failures.clone(),
        broken.clone(),
        name.to_string(),
    );
    Arc::new(move |_, what: Committed<'_>| {
        let mut log = lock(&committed);
        let verdict = match what {
            Committed::Entry(offset, entry) => log.entry(&name, offset, entry),
            Committed::Snapshot(snapshot, installed) => log.snapshot(&name, snapshot, installed),
        };
        if let Err(problem) = verdict {
            lock(&failures).push(problem);
            broken.notify_one();
        }
    })
}
