//! A controller that is a member of the controller quorum (KRaft's shape): a [`QuorumNode`]
//! replicating the metadata log, the metadata every voter builds by applying the log's committed
//! records, and — on the voter that leads, once its epoch's first entry is committed — the
//! active [`Controller`], which alone decides registrations, fencing, elections and ISR changes.
//!
//! The active controller's logic is the single controller's, unchanged: it decides on its whole
//! state and "commits" a change by writing it and waiting for the write. Here that write becomes
//! a record in the quorum's log (the difference from the state last proposed, `delta.rs`), and
//! the wait ends when the quorum commits the record: only then does the controller announce the
//! change. A deposed controller's proposals that the quorum never commits are therefore never
//! announced; those it does commit are announced by its successor, which starts from everything
//! committed. Brokers learn metadata only from the active controller, tagged with its quorum
//! epoch, and refuse an older epoch's.
//!
//! Only the quorum writes to disk (its epoch, vote and log); the metadata is rebuilt from the
//! log after a restart, as the voter relearns the high watermark.

mod delta;
#[cfg(test)]
mod tests;

use super::quorum::{QuorumConfig, QuorumNode};
use super::{Context, Controller, ControllerConfig, ControllerImage, DiskOp, Effect, QuorumImage};
use super::{SyncToken, Timer};
use crate::log::{ensure, Checked};
use crate::protocol::{
    ClusterMetadata, CreateTopicResponse, ErrorCode, Message, MetadataRecord, NodeId, Offset,
    QuorumEntry, QuorumEpoch,
};
use std::collections::VecDeque;
use std::sync::Arc;

pub use delta::{apply as apply_record, diff as metadata_diff};

/// The quorum epoch a bootstrapped quorum starts in.
pub const BOOTSTRAP_EPOCH: QuorumEpoch = 1;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuorumController {
    config: Arc<ControllerConfig>,
    quorum: QuorumNode,
    /// The metadata as the log committed it, `0..applied_offset` applied in order.
    applied: ControllerImage,
    applied_offset: Offset,
    /// Present while this voter is the active controller.
    active: Option<Active>,
}

/// What the voter handed its state machine in one step, in order.
enum Committed {
    Entry(Offset, MetadataRecord),
    /// A leader's snapshot installed: its end offset and records.
    Snapshot(Offset, Vec<MetadataRecord>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Active {
    controller: Controller,
    /// The state the last proposed record makes: the next record is the difference from it.
    proposed: ControllerImage,
    /// Records proposed and not yet committed: their log offsets and the metadata versions they
    /// make, in log order.
    pending: VecDeque<(Offset, u64)>,
}

impl QuorumController {
    /// A voter of a new cluster: an empty log, the configured topics with no leaders.
    pub fn new(config: Arc<ControllerConfig>, quorum: Arc<QuorumConfig>) -> Self {
        Self::recover(config, quorum, QuorumImage::default())
    }

    /// A voter rebuilt from its disk: epoch, vote, snapshot and log as written; the metadata
    /// starts from the snapshot's (a new cluster's without one), and the entries after it are
    /// applied again as the committed offset is relearned.
    pub fn recover(
        config: Arc<ControllerConfig>,
        quorum: Arc<QuorumConfig>,
        image: QuorumImage,
    ) -> Self {
        let records = image.snapshot.as_ref().map_or(&[][..], |s| &s.records[..]);
        let applied = Self::snapshot_state(&config, records);
        QuorumController {
            applied,
            applied_offset: image.start_offset(),
            config,
            quorum: QuorumNode::recover(quorum, image),
            active: None,
        }
    }

    /// The records a snapshot of `image` holds: the change from a new cluster's state to it,
    /// which every voter starts from (nothing is ever removed from the metadata, so the change
    /// rebuilds the whole state).
    pub fn snapshot_records(
        config: &Arc<ControllerConfig>,
        image: &ControllerImage,
    ) -> Vec<MetadataRecord> {
        let empty = Controller::new(config.clone());
        vec![MetadataRecord::Change(delta::diff(empty.image(), image))]
    }

    /// The state a snapshot's records rebuild from a new cluster's.
    pub fn snapshot_state(
        config: &Arc<ControllerConfig>,
        records: &[MetadataRecord],
    ) -> ControllerImage {
        let mut image = Controller::new(config.clone()).image().clone();
        for record in records {
            delta::apply(&mut image, record);
        }
        image
    }

    /// The log every voter of a bootstrapped quorum starts with, committed: `leader`'s leader
    /// change of epoch 1, then the change from a new cluster to `Controller::bootstrapped`'s
    /// (every broker registered, each partition led by its first replica).
    pub fn bootstrap_log(config: &Arc<ControllerConfig>, leader: NodeId) -> Vec<QuorumEntry> {
        let empty = Controller::new(config.clone());
        let bootstrapped = Controller::bootstrapped(config.clone());
        let change = delta::diff(empty.image(), bootstrapped.image());
        vec![
            QuorumEntry {
                epoch: BOOTSTRAP_EPOCH,
                record: MetadataRecord::LeaderChange {
                    leader,
                    epoch: BOOTSTRAP_EPOCH,
                },
            },
            QuorumEntry {
                epoch: BOOTSTRAP_EPOCH,
                record: MetadataRecord::Change(change),
            },
        ]
    }

    /// What a bootstrapped voter has on disk: `bootstrap_log`, in epoch 1, voted for `leader`.
    pub fn bootstrap_image(config: &Arc<ControllerConfig>, leader: NodeId) -> QuorumImage {
        QuorumImage {
            epoch: BOOTSTRAP_EPOCH,
            voted_for: Some(leader),
            log: Self::bootstrap_log(config, leader),
            snapshot: None,
        }
    }

    /// A voter of a quorum that starts formed, like `Controller::bootstrapped` for a single
    /// controller: every voter holds `bootstrap_log`, committed and applied; `leader` leads
    /// epoch 1 and is its active controller (its brokers already hold the metadata: nothing is
    /// announced at start), the others follow it.
    pub fn bootstrapped(
        config: Arc<ControllerConfig>,
        quorum: Arc<QuorumConfig>,
        leader: NodeId,
    ) -> Self {
        let log = Self::bootstrap_log(&config, leader);
        let applied_offset = log.len() as Offset;
        let quorum = QuorumNode::bootstrapped(quorum, log, leader);
        let controller = Controller::bootstrapped_in_epoch(config.clone(), BOOTSTRAP_EPOCH);
        let applied = controller.image().clone();
        let active = quorum.is_leader().then(|| Active {
            controller,
            proposed: applied.clone(),
            pending: VecDeque::new(),
        });
        QuorumController {
            config,
            quorum,
            applied,
            applied_offset,
            active,
        }
    }

    /// Both configurations, to rebuild the voter after a crash.
    pub fn configs(&self) -> (Arc<ControllerConfig>, Arc<QuorumConfig>) {
        (self.config.clone(), self.quorum.config_arc())
    }

    pub fn id(&self) -> NodeId {
        self.quorum.id()
    }

    pub fn quorum(&self) -> &QuorumNode {
        &self.quorum
    }

    /// The committed metadata this voter has applied.
    pub fn metadata(&self) -> &ClusterMetadata {
        &self.applied.metadata
    }

    pub fn image(&self) -> &ControllerImage {
        &self.applied
    }

    /// The active controller's metadata with its proposals not yet committed (`None` unless
    /// this voter is the active controller): where the metadata is heading.
    pub fn proposed_metadata(&self) -> Option<&ClusterMetadata> {
        self.active.as_ref().map(|a| a.controller.metadata())
    }

    /// The quorum epoch this voter is the active controller in, if it is.
    pub fn active_epoch(&self) -> Option<QuorumEpoch> {
        self.active
            .as_ref()
            .map(|a| a.controller.controller_epoch())
    }

    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// What must hold after every entry point: the voter's own invariants; the active
    /// controller's while there is one, which leads the quorum in the epoch it is active in;
    /// proposals in log order above what is applied; and with nothing pending, the active
    /// controller's state is exactly what the log committed.
    pub fn check_invariants(&self) -> Checked {
        self.quorum.check_invariants()?;
        ensure(
            self.applied_offset == self.quorum.applied(),
            "controller-applied-in-step",
            || {
                format!(
                    "metadata applied to {}, voter applied {}",
                    self.applied_offset,
                    self.quorum.applied()
                )
            },
        )?;
        let Some(a) = &self.active else {
            return Ok(());
        };
        a.controller.check_invariants()?;
        ensure(
            self.quorum.is_leader() && a.controller.controller_epoch() == self.quorum.epoch(),
            "active-controller-leads",
            || {
                format!(
                    "active in epoch {}, voter in epoch {} as {:?}",
                    a.controller.controller_epoch(),
                    self.quorum.epoch(),
                    self.quorum.role()
                )
            },
        )?;
        let ordered = a
            .pending
            .iter()
            .zip(a.pending.iter().skip(1))
            .all(|(x, y)| x < y);
        let above = a
            .pending
            .front()
            .is_none_or(|(o, _)| *o >= self.applied_offset);
        ensure(ordered && above, "controller-pending-ordered", || {
            format!(
                "pending {:?}, applied to {}",
                a.pending, self.applied_offset
            )
        })?;
        ensure(
            !a.pending.is_empty() || a.proposed == self.applied,
            "active-state-committed",
            || {
                format!(
                    "nothing pending, yet the active state (v{}) is not the committed one (v{})",
                    a.proposed.metadata.version, self.applied.metadata.version
                )
            },
        )
    }

    /// Only a bootstrapped voter is active at start: its controller starts its brokers'
    /// sessions.
    pub fn on_start(&mut self, cx: &mut Context) {
        let active_at_start = self.active.is_some();
        self.with_quorum(cx, |q, cx| q.on_start(cx));
        if active_at_start {
            self.with_controller(cx, |c, cx| c.on_start(cx));
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::RegisterBroker { .. }
            | Message::Heartbeat { .. }
            | Message::AlterPartition(_)
            | Message::AllocateProducerIds { .. }
            | Message::ForwardCreateTopic { .. } => {
                if self.active.is_some() {
                    self.with_controller(cx, |c, cx| c.on_message(cx, from, message));
                } else {
                    // A topic creation is a client's request: it is answered, refused, so the
                    // client retries at once instead of waiting out its timeout (right after a
                    // cluster starts, while the quorum elects, every creation would). The answer
                    // goes first: after `NotController` the broker may follow another controller
                    // and no longer take answers from this one.
                    if let Message::ForwardCreateTopic { client, request } = message {
                        let response = CreateTopicResponse {
                            correlation: request.correlation,
                            topic: request.topic,
                            result: Err(ErrorCode::NotController),
                        };
                        cx.send(
                            from,
                            Message::ForwardCreateTopicResponse { client, response },
                        );
                    }
                    let leader = self.quorum.leader();
                    let epoch = self.quorum.epoch();
                    cx.send(from, Message::NotController { leader, epoch });
                }
            }
            m => self.with_quorum(cx, |q, cx| q.on_message(cx, from, m)),
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            // A session or rebalance timer of an earlier term as active controller fires to no
            // effect (and the rebalance timer is not set again until the next term).
            Timer::SessionExpiry(_) | Timer::LeaderRebalance => {
                self.with_controller(cx, |c, cx| c.on_timer(cx, timer))
            }
            t => self.with_quorum(cx, |q, cx| q.on_timer(cx, t)),
        }
    }

    /// Only the quorum's writes reach the disk, so every sync is the voter's.
    pub fn on_persisted(&mut self, cx: &mut Context, token: SyncToken) {
        self.with_quorum(cx, |q, cx| q.on_persisted(cx, token));
    }

    /// Runs the voter, then applies what it committed (or the leader's snapshot it installed),
    /// snapshots the state where one is due, tells the active controller which of its changes
    /// are now committed, and starts or ends the active controller as leadership requires.
    fn with_quorum(&mut self, cx: &mut Context, f: impl FnOnce(&mut QuorumNode, &mut Context)) {
        let mark = cx.effects.len();
        f(&mut self.quorum, cx);
        let committed: Vec<Committed> = cx.effects[mark..]
            .iter()
            .filter_map(|e| match e {
                Effect::Apply { offset, entry, .. } => {
                    Some(Committed::Entry(*offset, entry.record.clone()))
                }
                Effect::Snapshot {
                    snapshot,
                    installed: true,
                } => Some(Committed::Snapshot(
                    snapshot.end_offset,
                    snapshot.records.clone(),
                )),
                _ => None,
            })
            .collect();
        for c in committed {
            match c {
                Committed::Entry(offset, record) => {
                    delta::apply(&mut self.applied, &record);
                    self.applied_offset = offset + 1;
                    if self.quorum.snapshot_due(self.applied_offset) {
                        let records = Self::snapshot_records(&self.config, &self.applied);
                        self.quorum.take_snapshot(cx, self.applied_offset, records);
                    }
                }
                Committed::Snapshot(end, records) => {
                    self.applied = Self::snapshot_state(&self.config, &records);
                    self.applied_offset = end;
                }
            }
            self.announce_committed(cx);
        }
        self.follow_leadership(cx);
    }

    /// The active controller's changes at offsets now applied are committed: it may announce
    /// them.
    fn announce_committed(&mut self, cx: &mut Context) {
        let Some(a) = &mut self.active else {
            return;
        };
        let mut version = None;
        while a
            .pending
            .front()
            .is_some_and(|(o, _)| *o < self.applied_offset)
        {
            version = a.pending.pop_front().map(|(_, v)| v);
        }
        if let Some(v) = version {
            self.with_controller(cx, |c, cx| c.on_persisted(cx, v));
        }
    }

    /// Becomes the active controller once leading with its epoch's first entry applied (so all
    /// of the log before it is applied too); stops being it on losing the lead. A deposed
    /// controller's uncommitted changes were never announced and are dropped with it.
    fn follow_leadership(&mut self, cx: &mut Context) {
        match (self.quorum.epoch_start(), &self.active) {
            (Some(start), None) if self.applied_offset > start => {
                let controller = Controller::activate(
                    self.config.clone(),
                    self.applied.clone(),
                    self.quorum.epoch(),
                    cx,
                );
                self.active = Some(Active {
                    controller,
                    proposed: self.applied.clone(),
                    pending: VecDeque::new(),
                });
            }
            (None, Some(_)) => self.active = None,
            _ => {}
        }
    }

    /// Runs the active controller (if any). Its writes — a whole new state per change, and a
    /// sync to wait for — do not reach the disk: each state becomes a record proposed to the
    /// quorum, and the wait ends when the record is committed (`announce_committed`).
    fn with_controller(&mut self, cx: &mut Context, f: impl FnOnce(&mut Controller, &mut Context)) {
        let Some(a) = &mut self.active else {
            return;
        };
        let mark = cx.effects.len();
        f(&mut a.controller, cx);
        let mut states = Vec::new();
        let mut i = mark;
        while i < cx.effects.len() {
            match &cx.effects[i] {
                Effect::Persist(DiskOp::ControllerState(_)) => {
                    if let Effect::Persist(DiskOp::ControllerState(s)) = cx.effects.remove(i) {
                        states.push(s);
                    }
                }
                Effect::Sync(_) => {
                    cx.effects.remove(i);
                }
                _ => i += 1,
            }
        }
        for state in states {
            let record = MetadataRecord::Change(delta::diff(&a.proposed, &state));
            let version = state.metadata.version;
            a.proposed = state;
            // Active implies leading: the controller's steps never change the voter's role.
            if let Some(offset) = self.quorum.propose(cx, record) {
                a.pending.push_back((offset, version));
            }
        }
    }
}
