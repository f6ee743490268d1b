//! The stateright adapter: wraps any seedlog node as an `Actor`. It only translates — effects into
//! stateright commands, disk writes into `Storage` — and holds no protocol logic.
//!
//! Disk model: `written` is what the node wrote (the page cache: it survives a process crash),
//! `synced` what a completed `Sync` made durable. Stateright's `save` is durable at once, so both
//! live in `Storage`; a restart whose images differ branches into "the process crashed, the page
//! cache survived" and "the power failed, unsynced writes are gone".
//!
//! Syncs: for an actor built with `deferred_sync`, a `Sync` only starts one, and its completion
//! is a step of its own (the `ActorTimer::SyncDone` timer), so a crash, a delivery or another
//! write can fall between a write and its sync. At most one sync is outstanding: a second request
//! before the completion widens it to cover everything written so far (group commit), so the
//! model has no state where the first of two requested syncs completed alone. Without
//! `deferred_sync` a `Sync` completes within the step that asks for it.

use seedlog::node::{
    run_incarnation, AnyNode, Broker, ClientEvent, Context, Controller, Effect, Image,
    QuorumController, QuorumNode, Stage, SyncToken, Timer,
};
use seedlog::protocol::{Message, NodeId, Offset, QuorumEntry, QuorumEpoch, TopicPartition};
use stateright::actor::{model_timeout, Actor, Id, Out};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A value shared between the states that hold it, with its digest computed once when it is
/// made: what the checker hashes for it. Stateright clones the whole system state for every
/// successor and hashes it for every fingerprint; for messages (whole metadata, record batches)
/// and the clients' history, deep copies and re-hashing were a large share of the checker's
/// time, and most steps leave most of them alone. Equal digests of different values would merge
/// two states, the same risk as the checker's own 64-bit fingerprints; equality still compares
/// the values.
#[derive(Clone)]
pub struct Digested<T> {
    digest: u64,
    value: Arc<T>,
}

impl<T: Hash> Digested<T> {
    pub fn new(value: T) -> Self {
        Digested {
            digest: fingerprint(&value),
            value: Arc::new(value),
        }
    }
}

impl<T: Clone> Digested<T> {
    /// The value itself, owned (a copy unless this was its last holder).
    pub fn into_inner(self) -> T {
        Arc::unwrap_or_clone(self.value)
    }
}

impl<T: Hash + Default> Default for Digested<T> {
    fn default() -> Self {
        Digested::new(T::default())
    }
}

impl<T> Deref for Digested<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Digested<T> {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
            && (Arc::ptr_eq(&self.value, &other.value) || self.value == other.value)
    }
}

impl<T: Eq> Eq for Digested<T> {}

impl<T> Hash for Digested<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.digest.hash(state)
    }
}

impl<T: Ord> PartialOrd for Digested<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Digested<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Digested<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Digested<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// A message in the model's network, digested when it is sent.
pub type Msg = Digested<Message>;

/// A node with a disk rebuilt from its recovered image, with the configuration it was built
/// with: a broker, the controller or a quorum voter. A node of another kind, or an image of
/// another kind (nothing written yet), boots as it first did.
pub fn recover_from_image(initial: &AnyNode, image: Image, boots: u64) -> AnyNode {
    match (initial, image) {
        (AnyNode::Broker(b), Image::Broker(image)) => AnyNode::Broker(Broker::recover(
            b.config_arc(),
            image,
            run_incarnation(boots),
        )),
        (AnyNode::Controller(c), Image::Controller(image)) => {
            AnyNode::Controller(Controller::recover(c.config_arc(), image))
        }
        (AnyNode::Quorum(q), Image::Quorum(image)) => {
            AnyNode::Quorum(QuorumNode::recover(q.config_arc(), image))
        }
        (AnyNode::QuorumController(c), Image::Quorum(image)) => {
            let (controller, quorum) = c.configs();
            AnyNode::QuorumController(Box::new(QuorumController::recover(
                controller, quorum, image,
            )))
        }
        _ => initial.clone(),
    }
}

/// What a node starts having applied: a bootstrapped controller-quorum voter's committed log, in
/// its epoch (it is handed to no `Effect::Apply`; a restarted voter applies it again).
fn initially_applied(node: &AnyNode) -> Vec<(QuorumEntry, QuorumEpoch)> {
    let q = match (node.as_quorum_controller(), node.as_quorum()) {
        (Some(c), _) => c.quorum(),
        (None, Some(q)) => q,
        (None, None) => return Vec::new(),
    };
    q.committed()
        .iter()
        .map(|e| (e.clone(), q.epoch()))
        .collect()
}

/// How to build a node on first boot and after a crash.
#[derive(Clone, Debug)]
pub struct NodeActor {
    pub name: String,
    /// The node on its very first start (a bootstrapped cluster member, or a fresh client).
    pub initial: AnyNode,
    /// Its disk at first start.
    pub initial_image: Image,
    /// Rebuilds the node from a recovered disk image, in its `boots`-th restart (a broker's
    /// incarnation: every run of a broker registers under a number no earlier run had).
    pub recover: fn(&AnyNode, Image, u64) -> AnyNode,
    /// Messages delivered right after the very first start, within the same step (how a model
    /// pre-fills a log: a produce the leader appends before the model's first step).
    pub first_boot: Vec<(NodeId, Message)>,
    /// A sync completes in a step of its own (see the module notes).
    pub deferred_sync: bool,
}

/// The actor's timers: the node's own, and the completion of an outstanding sync. A node's
/// timer is shared: stateright copies every actor's set timers for every successor state, and
/// for each timeout it offers, and many timers carry a partition (a `String`). Hashing,
/// equality, order and formatting are the timer's own, as before.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorTimer {
    Node(Arc<Timer>),
    SyncDone,
}

impl ActorTimer {
    pub fn node(timer: Timer) -> Self {
        ActorTimer::Node(Arc::new(timer))
    }

    /// The node's timer, if this is one.
    pub fn as_node(&self) -> Option<&Timer> {
        match self {
            ActorTimer::Node(t) => Some(t),
            ActorTimer::SyncDone => None,
        }
    }
}

/// A disk image shared between the disks, syncs and states that hold it, digested once when it is
/// made: a disk whose counters or applied entries change, a sync that snapshots what was
/// written, and a sync that makes it durable copy a pointer, not the image (whole logs).
pub type SharedImage = Digested<Image>;

/// A sync under way: the highest token it answers and the image it makes durable (what was
/// written when it was last asked for).
pub type SyncInFlight = Option<(SyncToken, SharedImage)>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Disk {
    /// Completed restarts (crash budget accounting).
    pub boots: u8,
    /// Session expiries (or, for a quorum voter, election timeouts) and follower-lag evictions
    /// this node's timers caused (fault budget accounting: in the model these timers fire
    /// whenever they are set, so they are bounded).
    pub expiries: u8,
    pub evictions: u8,
    /// Group member sessions the coordinator expired (fault budget, like `expiries`).
    pub member_expiries: u8,
    /// Group requests refused to this client (a bound: without backoff a refused member asks
    /// again at once, and its request counter makes every retry a new state).
    pub refusals: u8,
    /// Retention runs that deleted records (fault budget, like `expiries`).
    pub retentions: u8,
    pub written: SharedImage,
    pub synced: SharedImage,
    /// Records a group member has finished processing (its `Polled` observations), as
    /// (partition, offset): the application's output, kept outside the process so it survives a
    /// crash of the consumer.
    pub processed: BTreeSet<(TopicPartition, Offset)>,
    /// A quorum voter's applied entries (its `Apply` effects), with the voter's epoch when it
    /// first applied each: the state machine's output, kept outside the process. A restarted
    /// voter applies its log again from offset 0; each entry it applies again must be the one
    /// applied there before.
    pub applied: Vec<(QuorumEntry, QuorumEpoch)>,
    /// An application contradicted an earlier one at the same offset, or skipped an offset.
    pub apply_conflict: bool,
}

/// What stateright keeps of a node across crashes: its disk, with the disk's hash computed once
/// when it is saved. The checker fingerprints every successor state whole, storages included;
/// hashing every node's disk image (whole logs) on every step was a large share of its time, and
/// most steps leave most disks alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    fingerprint: u64,
    disk: Arc<Disk>,
}

impl Stored {
    pub fn new(disk: Arc<Disk>) -> Self {
        Stored {
            fingerprint: fingerprint(&*disk),
            disk,
        }
    }

    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }
}

impl Deref for Stored {
    type Target = Disk;
    fn deref(&self) -> &Disk {
        &self.disk
    }
}

impl Hash for Stored {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fingerprint.hash(state)
    }
}

/// A 64-bit digest of a value, the same in every run (fixed keys): stands in for the value in
/// the checker's state fingerprint. aHash, as stateright's own fingerprints: SipHash
/// (`DefaultHasher`) was a sixth of the quorum model's time (perf).
pub fn fingerprint(value: &impl Hash) -> u64 {
    ahash::RandomState::with_seeds(0x5eed_1095, 0x9e37_79b9, 0, 0).hash_one(value)
}

#[derive(Clone, Debug, PartialEq, Eq)]
// `Booting` lasts one step; boxing `Running` would cost an allocation on every step instead.
#[allow(clippy::large_enum_variant)]
pub enum NodeState {
    /// Restarted, waiting for the choice of which disk image survived.
    Booting(Arc<Disk>),
    Running {
        node: AnyNode,
        /// Shared with `Storage`: most steps leave the disk alone, and cloning images (whole
        /// logs) on every step was a large share of the checker's time. With its digest, so a
        /// step that changes the node but not its disk does not hash the disk again.
        disk: Stored,
        /// Sticky: this node has truncated records away at some point (for `sometimes` checks).
        truncated: bool,
        /// A group member's latest commit (partition, offset) not yet followed by the processing
        /// of a batch of that partition: records below it are in this process's hands. Volatile:
        /// a crash forgets it.
        owed: Option<(TopicPartition, Offset)>,
        /// The outstanding sync, if any (volatile: a crash abandons it).
        syncing: SyncInFlight,
        /// Digest of the fields above, computed once when the state is made: it is what the
        /// checker hashes for this node (like `Stored`, so an unchanged node costs nothing in
        /// the fingerprint of every successor), and what tells a step that changed nothing.
        fingerprint: u64,
        /// The node's own `check_invariants` holds, judged once when the state is made (the
        /// `node-invariant` property reads it for every node of every state).
        sound: bool,
    },
}

impl Hash for NodeState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            NodeState::Booting(disk) => {
                0u8.hash(state);
                disk.hash(state);
            }
            NodeState::Running { fingerprint, .. } => {
                1u8.hash(state);
                fingerprint.hash(state);
            }
        }
    }
}

impl NodeState {
    fn running(
        node: AnyNode,
        disk: Stored,
        truncated: bool,
        owed: Option<(TopicPartition, Offset)>,
        syncing: SyncInFlight,
    ) -> Self {
        let fingerprint = fingerprint(&(&node, &disk, truncated, &owed, &syncing));
        let sound = node.check_invariants().is_ok();
        NodeState::Running {
            sound,
            node,
            disk,
            truncated,
            owed,
            syncing,
            fingerprint,
        }
    }

    /// Equal states, judged by their digests where they have them.
    fn same(&self, other: &NodeState) -> bool {
        match (self, other) {
            (
                NodeState::Running { fingerprint: a, .. },
                NodeState::Running { fingerprint: b, .. },
            ) => a == b,
            _ => self == other,
        }
    }

    /// A running node's digest (of its node, disk and volatile state): what the checker hashes
    /// for it. `None` while booting.
    pub fn digest(&self) -> Option<u64> {
        match self {
            NodeState::Running { fingerprint, .. } => Some(*fingerprint),
            NodeState::Booting(_) => None,
        }
    }

    /// A running node's own invariants hold (`AnyNode::check_invariants`, judged once when
    /// the state was made); a booting one has none to break.
    pub fn sound(&self) -> bool {
        match self {
            NodeState::Running { sound, .. } => *sound,
            NodeState::Booting(_) => true,
        }
    }

    pub fn node(&self) -> Option<&AnyNode> {
        match self {
            NodeState::Running { node, .. } => Some(node),
            NodeState::Booting(_) => None,
        }
    }

    /// The disk the actor holds, running or booting.
    pub fn disk(&self) -> &Arc<Disk> {
        match self {
            NodeState::Running { disk, .. } => disk.disk(),
            NodeState::Booting(disk) => disk,
        }
    }

    /// A running actor's sync in flight.
    pub fn syncing(&self) -> &SyncInFlight {
        match self {
            NodeState::Running { syncing, .. } => syncing,
            NodeState::Booting(_) => &None,
        }
    }

    /// This state with `node`, `disk` and `syncing` in place of its own (a booting one keeps
    /// booting, with `disk`).
    pub fn replaced(&self, node: AnyNode, disk: Arc<Disk>, syncing: SyncInFlight) -> NodeState {
        match self {
            NodeState::Running {
                disk: stored,
                truncated,
                owed,
                ..
            } => {
                let disk = match Arc::ptr_eq(&disk, stored.disk()) {
                    true => stored.clone(),
                    false => Stored::new(disk),
                };
                NodeState::running(node, disk, *truncated, owed.clone(), syncing)
            }
            NodeState::Booting(_) => NodeState::Booting(disk),
        }
    }
}

/// What survived a crash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Boot {
    PageCacheKept,
    UnsyncedLost,
}

impl Actor for NodeActor {
    type Msg = Msg;
    type Timer = ActorTimer;
    type State = NodeState;
    type Storage = Stored;
    type Random = Boot;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn on_start(&self, _id: Id, storage: &Option<Stored>, o: &mut Out<Self>) -> NodeState {
        match storage {
            None => {
                let image = Digested::new(self.initial_image.clone());
                let disk = Arc::new(Disk {
                    boots: 0,
                    expiries: 0,
                    evictions: 0,
                    member_expiries: 0,
                    refusals: 0,
                    retentions: 0,
                    written: image.clone(),
                    synced: image,
                    processed: BTreeSet::new(),
                    applied: initially_applied(&self.initial),
                    apply_conflict: false,
                });
                let stored = Stored::new(disk);
                o.save(stored.clone());
                let first = &self.first_boot;
                self.run(
                    self.initial.clone(),
                    stored,
                    |n, cx| {
                        n.on_start(cx);
                        for (from, msg) in first {
                            n.on_message(cx, *from, msg.clone());
                        }
                    },
                    o,
                )
            }
            Some(stored) => {
                let mut disk = stored.disk().clone();
                let d = Arc::make_mut(&mut disk);
                d.boots = d.boots.saturating_add(1);
                let stored = Stored::new(disk.clone());
                o.save(stored.clone());
                if disk.written == disk.synced {
                    let node =
                        (self.recover)(&self.initial, (*disk.synced).clone(), disk.boots.into());
                    self.run(node, stored, |n, cx| n.on_start(cx), o)
                } else {
                    o.choose_random("boot", vec![Boot::PageCacheKept, Boot::UnsyncedLost]);
                    NodeState::Booting(disk)
                }
            }
        }
    }

    fn on_random(&self, _id: Id, state: &mut Cow<NodeState>, random: &Boot, o: &mut Out<Self>) {
        let NodeState::Booting(disk) = state.as_ref() else {
            return;
        };
        let mut disk = disk.clone();
        if *random == Boot::UnsyncedLost {
            let d = Arc::make_mut(&mut disk);
            d.written = d.synced.clone();
        }
        let stored = Stored::new(disk.clone());
        if *random == Boot::UnsyncedLost {
            o.save(stored.clone());
        }
        let node = (self.recover)(&self.initial, (*disk.written).clone(), disk.boots.into());
        *state = Cow::Owned(self.run(node, stored, |n, cx| n.on_start(cx), o));
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let from = usize::from(src) as NodeId;
        let refused = matches!(&*msg, Message::GroupResponse(r) if r.result.is_err());
        self.step(state, o, |n, cx| n.on_message(cx, from, msg.into_inner()));
        if refused {
            count_fault(state, o, |d| d.refusals = d.refusals.saturating_add(1));
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<NodeState>,
        timer: &ActorTimer,
        o: &mut Out<Self>,
    ) {
        let timer = match timer {
            ActorTimer::SyncDone => return self.complete_sync(state, o),
            ActorTimer::Node(timer) => timer,
        };
        self.step(state, o, |n, cx| n.on_timer(cx, Timer::clone(timer)));
        // Count the fault-like timers that changed something, against the model's budget.
        let Some(fault) = Fault::of(timer) else {
            return;
        };
        if Fault::counts_unchanged(timer) {
            if let Cow::Borrowed(running) = state {
                *state = Cow::Owned(running.clone());
            }
        }
        count_fault(state, o, |d| fault.add_one(d))
    }
}

/// The fault budgets the model's timers count against. The model fires a node's timers whenever
/// they are set, so the ones that stand for a fault (a session ending, a follower lagging,
/// retention deleting records) are bounded: each firing that changes the node is counted in the
/// node's disk (so it survives a crash), and `properties::within_boundary` bounds the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Broker session expiries (and quorum voters' election timeouts).
    Expiry,
    /// Followers evicted from the ISR for lagging.
    Eviction,
    /// Group member sessions the coordinator expired.
    MemberExpiry,
    /// Retention runs that deleted records.
    Retention,
}

impl Fault {
    /// The budget a firing of `timer` counts against, if any.
    pub fn of(timer: &Timer) -> Option<Fault> {
        match timer {
            Timer::SessionExpiry(_) | Timer::QuorumElection => Some(Fault::Expiry),
            Timer::FollowerLag { .. } => Some(Fault::Eviction),
            Timer::MemberSession { .. } => Some(Fault::MemberExpiry),
            Timer::Retention => Some(Fault::Retention),
            _ => None,
        }
    }

    /// Whether a firing of `timer` counts even when it leaves the node as it was: a quorum
    /// voter's election timeout (a second pre-vote round sends its requests again).
    pub fn counts_unchanged(timer: &Timer) -> bool {
        matches!(timer, Timer::QuorumElection)
    }

    /// Faults of this kind counted in `disk`.
    pub fn counted(self, disk: &Disk) -> usize {
        usize::from(match self {
            Fault::Expiry => disk.expiries,
            Fault::Eviction => disk.evictions,
            Fault::MemberExpiry => disk.member_expiries,
            Fault::Retention => disk.retentions,
        })
    }

    fn add_one(self, disk: &mut Disk) {
        let n = match self {
            Fault::Expiry => &mut disk.expiries,
            Fault::Eviction => &mut disk.evictions,
            Fault::MemberExpiry => &mut disk.member_expiries,
            Fault::Retention => &mut disk.retentions,
        };
        *n = n.saturating_add(1);
    }
}

impl NodeActor {
    /// Whether firing `timer` in `state` would count a fault (`Fault::of`), that is, change the
    /// node's state; a running quorum voter's election timeout counts always. The node's handler
    /// is run on a copy of the node: if it changed the node, the step does (carrying out its
    /// effects only adds to a change: disk writes, sends, and the bookkeeping of completed
    /// syncs). Only if the handler changed nothing but asked for effects is the whole step run,
    /// on a borrowed state, to see whether they change it. That spares building the new state
    /// (its digest, its invariants) for the firings that change the node, most of them.
    pub fn firing_counts_a_fault(&self, state: &NodeState, timer: &Timer) -> bool {
        if Fault::of(timer).is_none() {
            return false;
        }
        let NodeState::Running { node, .. } = state else {
            return false; // a booting node's step does nothing
        };
        if Fault::counts_unchanged(timer) {
            return true;
        }
        let mut fired = node.clone();
        let mut cx = Context::new(0);
        fired.on_timer(&mut cx, timer.clone());
        if fired != *node {
            return true;
        }
        if cx.take_effects().is_empty() {
            return false;
        }
        let mut state = Cow::Borrowed(state);
        let mut out = Out::new();
        self.step(&mut state, &mut out, |n, cx| n.on_timer(cx, timer.clone()));
        matches!(state, Cow::Owned(_))
    }

    /// Runs one entry point on a running node; a booting node drops what arrives.
    fn step(
        &self,
        state: &mut Cow<NodeState>,
        o: &mut Out<Self>,
        f: impl FnOnce(&mut AnyNode, &mut Context),
    ) {
        let NodeState::Running {
            node,
            disk,
            truncated,
            owed,
            syncing,
            ..
        } = state.as_ref()
        else {
            return;
        };
        let mut node = node.clone();
        let mut cx = Context::new(0);
        f(&mut node, &mut cx);
        let effects = cx.take_effects();
        let running = (disk.clone(), *truncated, owed.clone(), syncing.clone());
        let next = self.apply(node, running, effects, o);
        // Leave the state borrowed when nothing changed, so stateright sees a no-op. Replace it
        // outright otherwise (`to_mut` would first clone the old state only to overwrite it).
        if !next.same(state.as_ref()) {
            *state = Cow::Owned(next);
        }
    }

    fn run(
        &self,
        mut node: AnyNode,
        disk: Stored,
        f: impl FnOnce(&mut AnyNode, &mut Context),
        o: &mut Out<Self>,
    ) -> NodeState {
        let mut cx = Context::new(0);
        f(&mut node, &mut cx);
        let effects = cx.take_effects();
        self.apply(node, (disk, false, None, None), effects, o)
    }

    /// The outstanding sync completes: its image becomes durable and the node hears of it.
    fn complete_sync(&self, state: &mut Cow<NodeState>, o: &mut Out<Self>) {
        let NodeState::Running {
            node,
            disk,
            truncated,
            owed,
            syncing: Some((token, image)),
            ..
        } = state.as_ref()
        else {
            return;
        };
        let (token, mut disk) = (*token, disk.clone());
        if disk.synced != *image {
            let mut d = disk.disk().clone();
            Arc::make_mut(&mut d).synced = image.clone();
            disk = Stored::new(d);
            o.save(disk.clone());
        }
        let mut node = node.clone();
        let mut cx = Context::new(0);
        node.on_persisted(&mut cx, token);
        let effects = cx.take_effects();
        let next = self.apply(node, (disk, *truncated, owed.clone(), None), effects, o);
        *state = Cow::Owned(next);
    }

    /// Carries out effects; a `Sync` completes at once and calls back `on_persisted`, whose
    /// effects are carried out in turn. Of the observations, only a group member's are kept:
    /// what it processed (durable, in `Disk::processed`) and the commit it has in flight
    /// (volatile, `owed`).
    fn apply(
        &self,
        mut node: AnyNode,
        (stored, mut truncated, mut owed, mut syncing): Volatile,
        effects: Vec<Effect>,
        o: &mut Out<Self>,
    ) -> NodeState {
        let mut disk = stored.disk().clone();
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        let mut disk_changed = false;
        // The written image being changed by this step's persists, digested once they are done
        // (or when a sync needs it).
        let mut writing: Option<Image> = None;
        let flush = |disk: &mut Arc<Disk>, writing: &mut Option<Image>| {
            if let Some(image) = writing.take() {
                Arc::make_mut(disk).written = Digested::new(image);
            }
        };
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send { to, message } => o.send(Id::from(to as usize), Msg::new(message)),
                Effect::SetTimer { timer, .. } => {
                    o.set_timer(ActorTimer::node(timer), model_timeout())
                }
                Effect::CancelTimer(timer) => o.cancel_timer(ActorTimer::node(timer)),
                Effect::Persist(op) => {
                    let image = writing.get_or_insert_with(|| (*disk.written).clone());
                    truncated |= removes_records(image, &op);
                    // An op the image rejects would be a node bug; the image stays as it was,
                    // and properties over the recovered node will show the damage.
                    let _ = image.apply(&op);
                    disk_changed = true;
                }
                Effect::Observe(ClientEvent::Polled {
                    tp,
                    records,
                    group: Some(_),
                }) => {
                    let d = Arc::make_mut(&mut disk);
                    d.processed
                        .extend(records.iter().map(|e| (tp.clone(), e.offset)));
                    disk_changed = true;
                    if owed.as_ref().is_some_and(|(t, _)| *t == tp) {
                        owed = None;
                    }
                }
                Effect::Observe(ClientEvent::Commit {
                    stage: Stage::Invoke,
                    tp,
                    offset,
                    ..
                }) => owed = Some((tp, offset)),
                Effect::Apply {
                    offset,
                    entry,
                    epoch,
                } => {
                    let d = Arc::make_mut(&mut disk);
                    match d.applied.get(offset as usize) {
                        Some((e, _)) => d.apply_conflict |= *e != entry,
                        None if offset as usize == d.applied.len() => {
                            d.applied.push((entry, epoch))
                        }
                        None => d.apply_conflict = true,
                    }
                    disk_changed = true;
                }
                // The model's network is one ordered channel per pair of actors, with no
                // connections to close: the old and the new connection stay one channel.
                Effect::Observe(_) | Effect::Reached(_) | Effect::Disconnect(_) => {}
                // No model commits the 1,024 entries a controller snapshots after, so none
                // snapshots: the applied history above stays whole.
                Effect::Snapshot { .. } => {}
                Effect::Sync(token) if self.deferred_sync => {
                    if syncing.is_none() {
                        o.set_timer(ActorTimer::SyncDone, model_timeout());
                    }
                    flush(&mut disk, &mut writing);
                    syncing = Some((token, disk.written.clone()));
                }
                Effect::Sync(token) => {
                    flush(&mut disk, &mut writing);
                    if disk.synced != disk.written {
                        let d = Arc::make_mut(&mut disk);
                        d.synced = d.written.clone();
                        disk_changed = true;
                    }
                    let mut cx = Context::new(0);
                    node.on_persisted(&mut cx, token);
                    queue.extend(cx.take_effects());
                }
            }
        }
        flush(&mut disk, &mut writing);
        let disk = match disk_changed {
            true => {
                let changed = Stored::new(disk);
                o.save(changed.clone());
                changed
            }
            false => stored,
        };
        NodeState::running(node, disk, truncated, owed, syncing)
    }
}

/// What `apply` carries of a running node besides the node: its disk, whether it truncated,
/// the commit it owes, and its outstanding sync.
type Volatile = (Stored, bool, Option<(TopicPartition, Offset)>, SyncInFlight);

/// Counts a fault-like event against the model's budget, in the disk (so it survives a crash),
/// if the step that caught it changed the node.
fn count_fault(state: &mut Cow<NodeState>, o: &mut Out<NodeActor>, count: impl FnOnce(&mut Disk)) {
    let Cow::Owned(NodeState::Running {
        node,
        disk,
        truncated,
        owed,
        syncing,
        ..
    }) = &*state
    else {
        return;
    };
    let mut d = disk.disk().clone();
    count(Arc::make_mut(&mut d));
    let disk = Stored::new(d);
    o.save(disk.clone());
    let next = NodeState::running(
        node.clone(),
        disk,
        *truncated,
        owed.clone(),
        syncing.clone(),
    );
    *state = Cow::Owned(next);
}

fn removes_records(image: &Image, op: &seedlog::node::DiskOp) -> bool {
    match (image, op) {
        (Image::Quorum(q), seedlog::node::DiskOp::QuorumTruncate { offset }) => {
            q.log.len() as Offset > *offset
        }
        (Image::Broker(b), seedlog::node::DiskOp::Truncate { tp, offset }) => b
            .logs
            .get(tp)
            .is_some_and(|log| log.log_end_offset() > *offset),
        _ => false,
    }
}
