//! Runs one sans-IO node: feeds it deliveries and timers, one at a time, and carries out the
//! effects it returns. The same driver runs under madsim and on real tokio.
//!
//! Order is deterministic: a completed sync is taken first, then messages, then timers
//! (`select!` is `biased`, since tokio's unbiased choice draws from its own random source), and
//! timers due at one instant fire in `Timer` order.
//!
//! Syncs run beside the node, one at a time (group commit): a `Sync(token)` starts one if none is
//! running, else waits for the running one to finish; the next then covers every write made
//! until it starts, and `on_persisted(n)` tells the node that every sync it asked for up to `n`
//! is done. Meanwhile deliveries, timers and further writes go on.

use super::disk::{Disk, DiskError, SyncJob};
use super::lock;
use super::net::{Inbox, Net};
use super::timers::TimerSet;
use super::trace::{with_trace, SharedTrace};
use crate::log::Violation;
use crate::node::{AnyNode, ClientEvent, Context, Effect, Situation, SyncToken};
use crate::protocol::{NodeId, Offset, QuorumEntry, QuorumSnapshot};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The runtime's time in milliseconds: what traces and client observations are stamped with, and,
/// unless the node has a clock of its own (`with_node_clock`), the node's idea of "now" (record
/// timestamps, retention by age).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A node's own clock, when it is not the runtime's: the simulator gives every node one that
/// disagrees with the others (`SimClock`).
pub trait NodeClock: Send + Sync {
    /// The node's wall-clock reading in milliseconds: `Context::now_ms`. It may go back (a clock
    /// set back by NTP or an operator).
    fn wall_ms(&self) -> u64;
    /// `wall_ms` when the runtime's time reads `now` (the driver reads the time once a step).
    fn wall_ms_at(&self, now: Instant) -> u64 {
        let _ = now;
        self.wall_ms()
    }
    /// How long, in the runtime's time, a timer of `after_ms` on the node's own (monotonic)
    /// clock takes: shorter if the clock runs fast.
    fn timer_duration(&self, after_ms: u64) -> Duration;
}
/// Receives every client operation a node reports, with the node and the time.
pub type Observer = Arc<dyn Fn(NodeId, u64, &ClientEvent) + Send + Sync>;
/// Receives every protocol situation a node reaches (coverage).
pub type CoverageSink = Arc<dyn Fn(NodeId, Situation) + Send + Sync>;
/// What a controller hands its metadata state machine: a committed quorum entry at its offset,
/// or a snapshot it took (`false`) or installed from its leader (`true`).
#[derive(Clone, Copy, Debug)]
pub enum Committed<'a> {
    Entry(Offset, &'a QuorumEntry),
    Snapshot(&'a QuorumSnapshot, bool),
}

/// Receives everything committed a controller applies (the simulator checks that every
/// controller applies the same entry at each offset, and that every snapshot is the state the
/// entries below it build).
pub type CommitSink = Arc<dyn Fn(NodeId, Committed<'_>) + Send + Sync>;

/// A check of the node against what only a harness that sees the whole cluster knows, run
/// after every step with the node's own invariants (the simulator checks a leader against the
/// ISR the controller quorum committed: `Broker::check_against_committed`).
pub type StepCheck = Arc<dyn Fn(&AnyNode) -> crate::log::Checked + Send + Sync>;

/// A call into the node from its application, between events (a client's program handing
/// over more records): the driver runs it as one step, carries out its effects and checks the
/// node after it, as for a delivery. Named `what` in the trace.
pub struct AppCall {
    pub what: &'static str,
    pub call: AppCallFn,
}

/// What an application call does to the node, with the step's context for its effects.
pub type AppCallFn = Box<dyn FnOnce(&mut AnyNode, &mut Context) + Send>;

/// Where a harness sends a node's application calls (`Driver::with_app_calls`).
pub type AppCalls = tokio::sync::mpsc::UnboundedSender<AppCall>;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("node {node}: {source}")]
    Disk {
        node: String,
        #[source]
        source: DiskError,
    },
    /// The node's state broke an invariant in the step that handled `event`: the node stops
    /// there, since anything it did next would build on a corrupt state.
    #[error("node-invariant {node} at {time_ms} ms after {event}: {violation}")]
    Invariant {
        node: String,
        time_ms: u64,
        event: String,
        violation: Violation,
    },
}

pub struct Driver<D> {
    id: NodeId,
    name: String,
    /// Shared so a harness can inspect the node between events (the simulator's final checks).
    node: Arc<Mutex<AnyNode>>,
    disk: D,
    net: Net,
    inbox: Inbox,
    clock: Clock,
    node_clock: Option<Arc<dyn NodeClock>>,
    observer: Option<Observer>,
    coverage: Option<CoverageSink>,
    commits: Option<CommitSink>,
    step_check: Option<StepCheck>,
    trace: Option<SharedTrace>,
    timers: TimerSet<Instant>,
    /// The sync under way and the highest token it covers.
    sync_running: Option<(SyncToken, SyncJob)>,
    /// The highest token asked for since the running sync started (it needs another).
    sync_wanted: Option<SyncToken>,
    /// Calls from the node's application (`None`: it makes none, or stopped making them).
    app_calls: Option<tokio::sync::mpsc::UnboundedReceiver<AppCall>>,
}

enum Next {
    Synced(Result<(), DiskError>),
    Message(Option<(NodeId, crate::protocol::Message)>),
    App(Option<AppCall>),
    Timer,
}

impl<D: Disk> Driver<D> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NodeId,
        name: impl Into<String>,
        node: Arc<Mutex<AnyNode>>,
        disk: D,
        net: Net,
        inbox: Inbox,
        clock: Clock,
    ) -> Self {
        Driver {
            id,
            name: name.into(),
            node,
            disk,
            net,
            inbox,
            clock,
            node_clock: None,
            observer: None,
            coverage: None,
            commits: None,
            step_check: None,
            trace: None,
            timers: TimerSet::default(),
            sync_running: None,
            sync_wanted: None,
            app_calls: None,
        }
    }

    /// Takes calls from the node's application: what a harness sends on the returned sender
    /// runs as a step of its own. Calls are taken after messages and before timers.
    pub fn with_app_calls(mut self) -> (Self, AppCalls) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.app_calls = Some(rx);
        (self, tx)
    }

    /// Gives the node a clock of its own: its `now_ms` and the rate of its timers. Traces and
    /// observations stay on the runtime's clock, the one timeline a history is checked on.
    pub fn with_node_clock(mut self, clock: Arc<dyn NodeClock>) -> Self {
        self.node_clock = Some(clock);
        self
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn with_commit_sink(mut self, sink: CommitSink) -> Self {
        self.commits = Some(sink);
        self
    }

    pub fn with_step_check(mut self, check: StepCheck) -> Self {
        self.step_check = Some(check);
        self
    }

    pub fn with_coverage(mut self, coverage: CoverageSink) -> Self {
        self.coverage = Some(coverage);
        self
    }

    pub fn with_trace(mut self, trace: SharedTrace) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Runs until the inbox closes (never, for a live node) or the disk fails.
    pub async fn run(mut self) -> Result<(), DriverError> {
        let now = (self.clock)();
        self.trace_event(now, "start", &(), String::new);
        self.step(now, |n, cx| n.on_start(cx))?;
        self.check(now, || "start".into())?;
        let mut alarm = Alarm::default();
        loop {
            let wait_until = self.timers.next_deadline();
            let next = tokio::select! {
                biased;
                r = sync_done(&mut self.sync_running) => Next::Synced(r),
                m = self.inbox.recv() => Next::Message(m),
                c = next_app_call(&mut self.app_calls) => Next::App(c),
                _ = alarm.wait(wait_until) => Next::Timer,
            };
            match next {
                Next::Synced(result) => {
                    let Some((token, _)) = self.sync_running.take() else {
                        continue;
                    };
                    result.map_err(|source| self.disk_error(source))?;
                    let now = (self.clock)();
                    self.trace_event(now, "synced", &token, || format!("through {token}"));
                    if let Some(wanted) = self.sync_wanted.take() {
                        self.start_sync(wanted);
                    }
                    self.step(now, |n, cx| n.on_persisted(cx, token))?;
                    self.check(now, || format!("sync through {token}"))?;
                }
                Next::Message(None) => return Ok(()),
                Next::Message(Some((from, message))) => {
                    let now = (self.clock)();
                    self.trace_event(now, "deliver", &(from, &message), || {
                        format!("from {from}: {message}")
                    });
                    let kind = message.kind();
                    self.step(now, |n, cx| n.on_message(cx, from, message))?;
                    self.check(now, || format!("delivery of {kind} from {from}"))?;
                }
                // The application went away: it calls no more, and the node runs on.
                Next::App(None) => self.app_calls = None,
                Next::App(Some(AppCall { what, call })) => {
                    let now = (self.clock)();
                    self.trace_event(now, "app", &what, || what.to_string());
                    self.step(now, call)?;
                    self.check(now, || format!("application call {what}"))?;
                }
                Next::Timer => {
                    let Some(timer) = self.timers.pop_first() else {
                        continue;
                    };
                    let now = (self.clock)();
                    self.trace_event(now, "timer", &timer, || format!("{timer:?}"));
                    let fired = timer.clone();
                    self.step(now, |n, cx| n.on_timer(cx, timer))?;
                    self.check(now, || format!("timer {fired:?}"))?;
                }
            }
        }
    }

    /// Folds an event into the trace: its kind and encoded value feed the hash; `describe`
    /// runs only when descriptions are kept. Encodes into a reused buffer.
    fn trace_event<T: serde::Serialize>(
        &mut self,
        now: u64,
        kind: &str,
        value: &T,
        describe: impl FnOnce() -> String,
    ) {
        let Some(trace) = &self.trace else {
            return;
        };
        with_trace(trace, |t| {
            t.record_value(now, &self.name, kind, value, describe)
        });
    }

    /// The node's wall clock when the runtime's reads `now` (`instant`).
    fn node_now(&self, now: u64, instant: Instant) -> u64 {
        match &self.node_clock {
            Some(c) => c.wall_ms_at(instant),
            None => now,
        }
    }

    /// One entry point, then its effects (and those of any `on_persisted` they lead to). `now`
    /// is the runtime's time (traces, observations); the node sees its own clock's.
    fn step(
        &mut self,
        now: u64,
        f: impl FnOnce(&mut AnyNode, &mut Context),
    ) -> Result<(), DriverError> {
        // One reading of the time for the node's clock and every timer the step sets: simulated
        // time stands still within a step (real time moves by microseconds, which no timer here
        // resolves).
        let instant_now = Instant::now();
        let node_now = self.node_now(now, instant_now);
        let mut cx = Context::new(node_now);
        // The node stays locked until its effects are carried out: whoever reads it between
        // events (a client command waiting for `finished`, the simulator's final checks) must
        // not see a state whose observations have not been reported yet.
        let node = self.node.clone();
        let mut node = lock(&node);
        f(&mut node, &mut cx);
        let mut queue: VecDeque<Effect> = cx.take_effects().into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send { to, message } => self.net.send(to, message),
                Effect::Disconnect(peer) => {
                    self.trace_event(now, "disconnect", &peer, || format!("from node {peer}"));
                    self.net.disconnect(peer);
                }
                Effect::SetTimer { timer, after_ms } => {
                    // A timer runs on the node's monotonic clock, at its rate as it is now.
                    let after = match &self.node_clock {
                        Some(c) => c.timer_duration(after_ms),
                        None => Duration::from_millis(after_ms),
                    };
                    let at = instant_now + after;
                    self.timers.set(timer, at);
                }
                Effect::CancelTimer(timer) => {
                    self.timers.cancel(&timer);
                }
                Effect::Persist(op) => {
                    self.trace_event(now, "persist", &op, || op.to_string());
                    self.disk
                        .append(&op)
                        .map_err(|source| self.disk_error(source))?;
                }
                Effect::Sync(token) => {
                    if self.sync_running.is_some() {
                        self.sync_wanted = self.sync_wanted.max(Some(token));
                    } else {
                        self.start_sync(token);
                    }
                }
                // Not traced: coverage describes a run, it does not change it.
                Effect::Reached(situation) => {
                    if let Some(sink) = &self.coverage {
                        sink(self.id, situation);
                    }
                }
                // The controller applied it already (it reads its own effects); a harness may
                // check it against the other controllers'.
                Effect::Apply { offset, entry, .. } => {
                    if let Some(sink) = &self.commits {
                        sink(self.id, Committed::Entry(offset, &entry));
                    }
                }
                Effect::Snapshot {
                    snapshot,
                    installed,
                } => {
                    if let Some(sink) = &self.commits {
                        sink(self.id, Committed::Snapshot(&snapshot, installed));
                    }
                }
                Effect::Observe(event) => {
                    self.trace_event(now, "client", &event, || event.to_string());
                    if let Some(observer) = &self.observer {
                        observer(self.id, now, &event);
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts a sync of every write so far; its completion reports `token`.
    fn start_sync(&mut self, token: SyncToken) {
        let job = self.disk.start_sync();
        self.sync_running = Some((token, job));
    }

    /// Checks the node's invariants after the step that handled `event` (described only on a
    /// violation).
    fn check(&self, now: u64, event: impl FnOnce() -> String) -> Result<(), DriverError> {
        let checked = {
            let node = lock(&self.node);
            node.check_invariants()
                .and_then(|()| self.step_check.as_ref().map_or(Ok(()), |c| c(&node)))
        };
        checked.map_err(|violation| {
            let event = event();
            self.trace_event_shared(now, &violation, &event);
            DriverError::Invariant {
                node: self.name.clone(),
                time_ms: now,
                event,
                violation,
            }
        })
    }

    /// Puts the violation in the trace, so a replay's timeline ends with it.
    fn trace_event_shared(&self, now: u64, violation: &Violation, event: &str) {
        if let Some(trace) = &self.trace {
            let what = format!("{violation} (after {event})");
            with_trace(trace, |t| {
                t.record(now, &self.name, "invariant", what.as_bytes(), || {
                    what.clone()
                })
            });
        }
    }

    fn disk_error(&self, source: DiskError) -> DriverError {
        DriverError::Disk {
            node: self.name.clone(),
            source,
        }
    }
}

/// Waits for the running sync, if any (else forever). Leaves the job in place: the caller takes
/// it out with the token once this resolves.
async fn sync_done(running: &mut Option<(SyncToken, SyncJob)>) -> Result<(), DiskError> {
    match running {
        Some((_, job)) => job.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The next call from the node's application; never, if it takes none.
async fn next_app_call(
    calls: &mut Option<tokio::sync::mpsc::UnboundedReceiver<AppCall>>,
) -> Option<AppCall> {
    match calls {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The driver's one timer, re-armed as the first due node timer changes, instead of a new
/// `sleep` for every turn of the loop.
///
/// Under madsim a timer cannot be cancelled, and every poll of a pending `sleep` registers
/// another one: a loop that made a `sleep` per turn registered a timer per event, and each one
/// left behind woke the task again later for nothing. The alarm registers a wakeup only when no
/// registered one is due by the deadline (`armed`), so a node waiting on the same timer across
/// many deliveries registers it once.
#[cfg(madsim)]
#[derive(Default)]
struct Alarm {
    /// The last wakeup registered: its deadline and the waker it wakes. While it is still in the
    /// future and no later than the deadline waited for, it will wake the task in time.
    armed: Option<(Instant, std::task::Waker)>,
}

#[cfg(madsim)]
impl Alarm {
    /// Resolves once `at` has passed (never, for `None`).
    fn wait(&mut self, at: Option<Instant>) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            use std::future::Future;
            let Some(at) = at else {
                return std::task::Poll::Pending;
            };
            let now = Instant::now();
            if now >= at {
                return std::task::Poll::Ready(());
            }
            let in_time = matches!(&self.armed,
                Some((armed, waker)) if now < *armed && *armed <= at && waker.will_wake(cx.waker()));
            if !in_time {
                // Polling a madsim `sleep` registers its wakeup; dropping it cancels nothing.
                let sleep = std::pin::pin!(tokio::time::sleep_until(at));
                let _ = sleep.poll(cx);
                self.armed = Some((at, cx.waker().clone()));
            }
            std::task::Poll::Pending
        })
    }
}

/// The driver's one timer, reset as the first due node timer changes (tokio's `Sleep` is
/// cancelled when dropped, and reset in place).
#[cfg(not(madsim))]
#[derive(Default)]
struct Alarm {
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

#[cfg(not(madsim))]
impl Alarm {
    /// Resolves once `at` has passed (never, for `None`).
    async fn wait(&mut self, at: Option<Instant>) {
        let Some(at) = at else {
            return std::future::pending().await;
        };
        match &mut self.sleep {
            Some(sleep) if sleep.deadline() == at => {}
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        if let Some(sleep) = &mut self.sleep {
            sleep.as_mut().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::PartitionLog;
    use crate::node::{Broker, BrokerConfig, BrokerImage};
    use crate::protocol::TopicPartition;
    use crate::runtime::disk::CorruptionPolicy;
    use crate::runtime::sim_disk::SimDisk;

    /// A broker recovered from an image whose log claims a high watermark past its end (well
    /// formed on disk, impossible in meaning) is stopped by the driver at its first step, with
    /// the rule, the node and the event named.
    #[tokio::test]
    async fn the_driver_stops_a_node_whose_state_breaks_an_invariant() {
        let log: PartitionLog = serde_json::from_str(
            r#"{"log_start":0,"high_watermark":5,"entries":[],"epochs":{"entries":[]}}"#,
        )
        .expect("a log image");
        let mut image = BrokerImage::default();
        image.logs.insert(TopicPartition::new("t", 0), log);
        let broker = Broker::recover(Arc::new(BrokerConfig::new(0, vec![9])), image, 0);
        let (net, inbox) = Net::new(0, Default::default());
        let clock: Clock = Arc::new(|| 7);
        let disk = SimDisk::new("b0", CorruptionPolicy::Refuse);
        let node = Arc::new(Mutex::new(AnyNode::Broker(broker)));
        let driver = Driver::new(0, "b0", node, disk, net, inbox, clock);
        let err = driver.run().await.expect_err("stopped");
        let DriverError::Invariant { violation, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(violation.rule, "hw-within-log");
        assert_eq!(
            err.to_string(),
            "node-invariant b0 at 7 ms after start: hw-within-log: \
             t-0: log start 0, high watermark 5, log end 0"
        );
    }

    /// A harness's step check (what only the whole cluster knows) stops the node like its own
    /// invariants: the node, the step and the harness's rule are named.
    #[tokio::test]
    async fn a_failing_step_check_stops_the_node() {
        let broker = Broker::recover(
            Arc::new(BrokerConfig::new(0, vec![9])),
            BrokerImage::default(),
            0,
        );
        let (net, inbox) = Net::new(0, Default::default());
        let clock: Clock = Arc::new(|| 3);
        let disk = SimDisk::new("b0", CorruptionPolicy::Refuse);
        let node = Arc::new(Mutex::new(AnyNode::Broker(broker)));
        let check: StepCheck = Arc::new(|n| match n.as_broker() {
            Some(_) => Err(Violation::new("isr-known-to-leader", "t-0: broker 1")),
            None => Ok(()),
        });
        let driver = Driver::new(0, "b0", node, disk, net, inbox, clock).with_step_check(check);
        let err = driver.run().await.expect_err("stopped");
        assert_eq!(
            err.to_string(),
            "node-invariant b0 at 3 ms after start: isr-known-to-leader: t-0: broker 1"
        );
    }

    /// An application call runs as a step of its own, checked like any other: a call that
    /// leaves the node broken stops it, named as the event.
    #[tokio::test]
    async fn an_application_call_is_a_checked_step() {
        let fresh = || {
            Broker::recover(
                Arc::new(BrokerConfig::new(0, vec![9])),
                BrokerImage::default(),
                0,
            )
        };
        let log: PartitionLog = serde_json::from_str(
            r#"{"log_start":0,"high_watermark":2,"entries":[],"epochs":{"entries":[]}}"#,
        )
        .expect("a log image");
        let mut image = BrokerImage::default();
        image.logs.insert(TopicPartition::new("t", 0), log);
        let broken = Broker::recover(Arc::new(BrokerConfig::new(0, vec![9])), image, 0);
        let (net, inbox) = Net::new(0, Default::default());
        let clock: Clock = Arc::new(|| 5);
        let disk = SimDisk::new("b0", CorruptionPolicy::Refuse);
        let node = Arc::new(Mutex::new(AnyNode::Broker(fresh())));
        let (driver, calls) = Driver::new(0, "b0", node, disk, net, inbox, clock).with_app_calls();
        calls
            .send(AppCall {
                what: "swap",
                call: Box::new(move |n, _| *n = AnyNode::Broker(broken)),
            })
            .unwrap_or_else(|_| panic!("the driver takes calls"));
        let err = driver.run().await.expect_err("stopped");
        assert_eq!(
            err.to_string(),
            "node-invariant b0 at 5 ms after application call swap: hw-within-log: \
             t-0: log start 0, high watermark 2, log end 0"
        );
    }
}
