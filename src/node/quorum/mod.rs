//! A controller-quorum voter: a sans-IO Raft node in KRaft's shape (KIP-595, with KIP-996's
//! pre-vote), replicating a log of [`MetadataRecord`]s among 3–5 voters. See `docs/quorum.md`.
//!
//! - `log.rs`: the log and its epoch lookups;
//! - `election.rs`: pre-vote, vote, becoming leader or follower;
//! - `replication.rs`: followers fetch, the leader answers (entries or a divergence), the high
//!   watermark, committed entries handed to `Effect::Apply`, client submissions;
//! - `snapshot.rs`: snapshots of the hosting state machine bounding the log, and followers too
//!   far behind installing the leader's;
//! - `client.rs`: a client that submits records to whoever leads;
//! - `invariants.rs`: cross-node checks, of what a voter's role rests on against the others.
//!
//! Durability: every write (epoch, vote, entries, truncation) is followed by a sync, and no
//! message leaves the node while a write is unsynced (the outbox): an answer never reveals a
//! state the voter could forget in a power loss. Its epoch and vote, in particular, are durable
//! before any vote is answered — that is what keeps one vote per epoch across restarts.

mod client;
mod election;
mod invariants;
mod log;
mod relabel;
mod replication;
mod snapshot;
#[cfg(test)]
mod tests;

pub use client::{QuorumClient, QuorumClientConfig};
pub use log::QuorumLog;

use super::producer::next_random;
use super::{BugSet, Context, DiskOp, QuorumImage, Situation, SyncToken, Timer};
use crate::log::{ensure, Checked};
use crate::protocol::{
    Message, MetadataRecord, NodeId, Offset, QuorumEntry, QuorumEpoch, QuorumFetchRequest,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumConfig {
    pub id: NodeId,
    /// Every voter, this one included.
    pub voters: Vec<NodeId>,
    /// Shortest election timeout (`None`: never set; the model checker fires it at will).
    pub election_timeout_ms: Option<u64>,
    /// Each election timeout adds a draw in `0..election_jitter_ms` from the node's generator
    /// (0: no draw, the generator never moves — what the model checker wants).
    pub election_jitter_ms: u64,
    /// A follower's fetch unanswered this long is sent again.
    pub fetch_timeout_ms: Option<u64>,
    /// The leader answers a fetch with nothing new after this long (a long poll shorter than
    /// the election timeout, so that followers keep hearing from it).
    pub fetch_max_wait_ms: Option<u64>,
    /// Check-quorum: the leader resigns if fewer than a majority fetched within this period.
    pub check_quorum_ms: Option<u64>,
    /// Entries per fetch response.
    pub max_fetch_entries: usize,
    /// The hosting state machine snapshots its state every this many committed entries (at
    /// offsets that are multiples of it, so that every voter snapshots at the same offsets), and
    /// the voter drops the entries the snapshot covers (`None`: never; the log grows without
    /// bound).
    #[serde(default)]
    pub snapshot_every: Option<Offset>,
    /// Seeds the election-timeout generator.
    pub seed: u64,
    pub bugs: BugSet,
}

impl QuorumConfig {
    /// Real-time defaults (KRaft's: election 1 s plus up to 1 s, fetch timeout 2 s, long poll
    /// 500 ms, check-quorum 3 s) for voter `id` of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Self {
        QuorumConfig {
            id,
            voters,
            election_timeout_ms: Some(1_000),
            election_jitter_ms: 1_000,
            fetch_timeout_ms: Some(2_000),
            fetch_max_wait_ms: Some(500),
            check_quorum_ms: Some(3_000),
            max_fetch_entries: 64,
            snapshot_every: Some(1_024),
            seed,
            bugs: BugSet::none(),
        }
    }

    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What a voter is doing in its current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuorumRole {
    /// Following `leader`, or waiting to learn one (KRaft's Unattached and Voted states).
    Follower {
        leader: Option<NodeId>,
    },
    /// Asking for pre-votes for the next epoch without having moved to it (KIP-996).
    Prospective {
        granted: BTreeSet<NodeId>,
        refused: BTreeSet<NodeId>,
    },
    /// Running in the current epoch, having voted for itself.
    Candidate {
        granted: BTreeSet<NodeId>,
    },
    Leader(LeaderState),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaderState {
    /// Where this epoch starts: the offset of the leader's leader-change entry. Only an offset
    /// above it, held by a majority, moves the high watermark.
    pub epoch_start: Offset,
    /// Each follower's fetch offset: what it holds, synced.
    pub progress: BTreeMap<NodeId, Offset>,
    /// The high watermark established in this epoch (`None` until a majority holds an entry of
    /// it): followers are sent nothing else.
    pub high_watermark: Option<Offset>,
    /// Fetches with nothing to answer yet (long poll).
    pub parked: BTreeMap<NodeId, QuorumFetchRequest>,
    /// Voters that fetched since the last check-quorum.
    pub fetched: BTreeSet<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuorumNode {
    config: Arc<QuorumConfig>,
    /// Durable: the current epoch and the vote cast in it.
    epoch: QuorumEpoch,
    voted_for: Option<NodeId>,
    log: QuorumLog,
    role: QuorumRole,
    /// Volatile: relearned after a restart. Never moves back, except when a truncation cuts
    /// below it (which a correct quorum never does, and the model checks).
    high_watermark: Offset,
    /// Entries handed to `Effect::Apply` in this incarnation: `0..applied`.
    applied: Offset,
    /// Heard from a leader since the election timer last fired: pre-votes are refused meanwhile.
    leader_contact: bool,
    /// A fetch is outstanding (one at a time).
    fetching: bool,
    /// Highest sync requested, and highest completed.
    requested: SyncToken,
    synced: SyncToken,
    /// The log end each outstanding sync makes durable.
    unsynced_ends: Vec<(SyncToken, Offset)>,
    /// How far the log is known durable (the leader counts only this for itself).
    synced_end: Offset,
    /// The end of a log recovered from disk (not empty), until the sync owed for it completes.
    /// It decides no step: the checks read it (`durable_end`), as everything the voter had
    /// synced before the restart is on its disk though none of it counts as synced yet.
    recovered_end: Option<Offset>,
    /// Messages held until a sync completes: each reveals a write of that sync or an earlier one.
    outbox: Vec<(SyncToken, NodeId, Message)>,
    /// The sync that makes the last write of the epoch and vote durable, until it completes. It
    /// decides no step: the checks read it (`election_durable`), as a vote counted before it
    /// is durable can be cast again after a power loss. A recovered epoch and vote count as
    /// durable: this voter synced them before anything revealed them, or the check saw it not do
    /// so before it went down.
    election_unsynced: Option<SyncToken>,
    /// splitmix64 state for election timeouts.
    rng: u64,
}

impl QuorumNode {
    /// A voter of a new quorum: epoch 0, empty log.
    pub fn new(config: Arc<QuorumConfig>) -> Self {
        Self::recover(config, QuorumImage::default())
    }

    /// Rebuilds a voter from its disk: epoch, vote, snapshot and log as written. The snapshot
    /// holds only committed entries, and the hosting state machine starts from it: the high
    /// watermark and what is applied start at its end, and the rest is learned again. What
    /// recovery read may have been only in the page cache (a process crash keeps unsynced
    /// writes, which a later power loss still takes), so it does not count as synced: the voter
    /// owes a sync of it (asked for in `on_start`), and no message leaves before that sync
    /// completes. Otherwise a restarted follower would fetch naming entries it may yet lose, the
    /// leader would count them, and a committed entry could be on fewer than a majority of
    /// synced disks (the model's `committed-durable`, from a formed quorum); a recovered vote
    /// could likewise be answered and then forgotten.
    pub fn recover(config: Arc<QuorumConfig>, image: QuorumImage) -> Self {
        let rng = config.seed ^ u64::from(config.id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (start, end) = (image.start_offset(), image.end_offset());
        // An empty disk (a new voter) holds nothing to make durable.
        let owed = image.epoch > 0 || image.voted_for.is_some() || end > 0;
        QuorumNode {
            epoch: image.epoch,
            voted_for: image.voted_for,
            // The snapshot's entries are committed, held by a majority whatever this disk keeps.
            synced_end: start,
            recovered_end: (owed && end > start).then_some(end),
            log: QuorumLog::with_snapshot(image.snapshot, image.log),
            role: QuorumRole::Follower { leader: None },
            high_watermark: start,
            applied: start,
            leader_contact: false,
            fetching: false,
            requested: u64::from(owed),
            synced: 0,
            unsynced_ends: if owed { vec![(1, end)] } else { Vec::new() },
            outbox: Vec::new(),
            election_unsynced: None,
            rng,
            config,
        }
    }

    /// A voter of a quorum that starts already formed (the models' bootstrapped clusters): every
    /// voter holds `log`, durable and committed, whose last leader change names `leader` in the
    /// log's last epoch; every voter voted for `leader` in that epoch, which leads with every
    /// follower known to hold the whole log, and the others follow it, each with a fetch parked
    /// at the leader (as if each had fetched once and found nothing new). Nothing is handed to
    /// `Effect::Apply`: the log counts as applied.
    pub fn bootstrapped(config: Arc<QuorumConfig>, log: Vec<QuorumEntry>, leader: NodeId) -> Self {
        let end = log.len() as Offset;
        let image = QuorumImage {
            epoch: log.last().map_or(0, |e| e.epoch),
            voted_for: Some(leader),
            log,
            snapshot: None,
        };
        let mut node = Self::recover(config, image);
        // The formed quorum's disks are durable from the start: nothing is owed.
        node.requested = 0;
        node.unsynced_ends.clear();
        node.synced_end = end;
        node.recovered_end = None;
        node.high_watermark = end;
        node.applied = end;
        let parked: BTreeMap<NodeId, QuorumFetchRequest> = node
            .others()
            .into_iter()
            .map(|v| {
                let fetch = QuorumFetchRequest {
                    epoch: node.epoch,
                    replica: v,
                    fetch_offset: end,
                    last_fetched_epoch: node.log.last_epoch(),
                    high_watermark: end,
                };
                (v, fetch)
            })
            .collect();
        node.role = if node.config.id == leader {
            let epoch_start = node.log.entries().iter().rposition(|e| {
                matches!(e.record, MetadataRecord::LeaderChange { leader: l, .. } if l == leader)
            });
            QuorumRole::Leader(LeaderState {
                epoch_start: epoch_start.unwrap_or(0) as Offset,
                progress: parked.keys().map(|&v| (v, end)).collect(),
                high_watermark: Some(end),
                fetched: parked.keys().copied().collect(),
                parked,
            })
        } else {
            node.fetching = true;
            QuorumRole::Follower {
                leader: Some(leader),
            }
        };
        node
    }

    pub fn config_arc(&self) -> Arc<QuorumConfig> {
        self.config.clone()
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    pub fn epoch(&self) -> QuorumEpoch {
        self.epoch
    }

    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    pub fn log(&self) -> &QuorumLog {
        &self.log
    }

    pub fn role(&self) -> &QuorumRole {
        &self.role
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn applied(&self) -> Offset {
        self.applied
    }

    /// How far the log is known durable (a leader counts only this for itself, and nothing it
    /// appended leaves it before).
    pub fn synced_end(&self) -> Offset {
        self.synced_end
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, QuorumRole::Leader(_))
    }

    /// The leader this voter knows in its epoch (itself, leading).
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            QuorumRole::Leader(_) => Some(self.config.id),
            QuorumRole::Follower { leader } => *leader,
            _ => None,
        }
    }

    /// The committed entries this voter holds: from its log start (0 without a snapshot) to its
    /// high watermark.
    pub fn committed(&self) -> &[QuorumEntry] {
        let held = self.high_watermark.saturating_sub(self.log.start_offset()) as usize;
        &self.log.entries()[..held.min(self.log.entries().len())]
    }

    /// What must hold after every entry point.
    pub fn check_invariants(&self) -> Checked {
        self.log.check(self.epoch)?;
        let end = self.log.end_offset();
        ensure(self.high_watermark <= end, "quorum-hw-within-log", || {
            format!("hw {} past log end {end}", self.high_watermark)
        })?;
        // A voter applies only what its watermark covers, and a committed entry is never cut:
        // the watermark falls below what was applied only if a truncation cut committed
        // entries (the models' `hw-monotonic` is the same rule). Checked here, after every
        // step, because a voter that cuts committed entries and then takes its leader's
        // snapshot back ends up with the same history: no later comparison of what was applied
        // would see it.
        ensure(
            self.applied <= self.high_watermark,
            "quorum-applied-within-hw",
            || {
                format!(
                    "applied {} past hw {}: committed entries were cut",
                    self.applied, self.high_watermark
                )
            },
        )?;
        // The snapshot holds only committed, applied entries.
        let start = self.log.start_offset();
        ensure(
            start <= self.applied && start <= self.high_watermark,
            "quorum-snapshot-committed",
            || {
                format!(
                    "log starts at {start} (snapshot), applied {}, hw {}",
                    self.applied, self.high_watermark
                )
            },
        )?;
        ensure(self.synced_end <= end, "quorum-synced-within-log", || {
            format!("synced end {} past log end {end}", self.synced_end)
        })?;
        ensure(
            self.outbox.iter().all(|(t, _, _)| *t > self.synced),
            "quorum-outbox-unsynced",
            || format!("a message waits for a sync already done ({})", self.synced),
        )?;
        if let QuorumRole::Leader(l) = &self.role {
            // The leader-change entry may lie inside the snapshot, whose last entry is then of
            // this epoch too (nothing but this epoch's entries follows it).
            let first = match self.log.entry(l.epoch_start) {
                Some(e) => Some(e.epoch),
                None if l.epoch_start < start => self.log.snapshot().map(|s| s.last_epoch),
                None => None,
            };
            ensure(
                self.voted_for == Some(self.config.id) && first == Some(self.epoch),
                "quorum-leader-epoch",
                || {
                    format!(
                        "leader of {} voted {:?}, first {first:?}",
                        self.epoch, self.voted_for
                    )
                },
            )?;
        }
        Ok(())
    }

    /// A recovered voter syncs what it read, knows no leader and waits for its election timer.
    /// A bootstrapped one leads (checking its quorum, holding its followers' fetches) or waits
    /// for the answer to its parked fetch.
    pub fn on_start(&mut self, cx: &mut Context) {
        // The sync a recovered voter owes (`recover`).
        if self.requested > self.synced {
            cx.sync(self.requested);
        }
        match &self.role {
            QuorumRole::Leader(l) => {
                cx.set_timer(Timer::QuorumCheck, self.config.check_quorum_ms);
                for &v in l.parked.keys() {
                    cx.set_timer(Timer::QuorumFetchWait(v), self.config.fetch_max_wait_ms);
                }
            }
            _ => {
                self.reset_election_timer(cx);
                if self.fetching {
                    cx.set_timer(Timer::QuorumFetchTimeout, self.config.fetch_timeout_ms);
                }
                self.send_fetch(cx);
            }
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::PreVote(r) => self.on_pre_vote(cx, from, r),
            Message::PreVoteResponse(r) => self.on_pre_vote_response(cx, from, r),
            Message::Vote(r) => self.on_vote(cx, from, r),
            Message::VoteResponse(r) => self.on_vote_response(cx, from, r),
            Message::BeginQuorumEpoch(b) => self.on_begin_epoch(cx, b),
            Message::QuorumFetch(r) => self.on_fetch(cx, from, r),
            Message::QuorumFetchResponse(r) => self.on_fetch_response(cx, from, r),
            Message::QuorumSubmit(r) => self.on_submit(cx, from, r),
            _ => {}
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::QuorumElection => self.on_election_timeout(cx),
            Timer::QuorumFetchTimeout => {
                // Its answer may be stuck on a stalled connection. A fetch is outstanding only
                // while following a known leader, the one peer `drop_silent_links` closes then.
                if self.fetching {
                    self.drop_silent_links(cx);
                }
                self.fetching = false;
                self.send_fetch(cx);
            }
            Timer::QuorumFetchWait(voter) => self.on_fetch_wait(cx, voter),
            Timer::QuorumCheck => self.on_check_quorum(cx),
            _ => {}
        }
    }

    /// Syncs up to `token` are done: what they covered is durable, and the messages that waited
    /// for them may go.
    pub fn on_persisted(&mut self, cx: &mut Context, token: SyncToken) {
        self.synced = self.synced.max(token);
        if self.election_unsynced.is_some_and(|t| t <= self.synced) {
            self.election_unsynced = None;
        }
        let done = self
            .unsynced_ends
            .iter()
            .filter(|(t, _)| *t <= token)
            .count();
        if let Some((_, end)) = self.unsynced_ends.drain(..done).next_back() {
            self.synced_end = end.min(self.log.end_offset());
            // The sync owed for a recovered log is the first one asked for (token 1).
            self.recovered_end = None;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|(t, _, _)| *t <= self.synced);
        self.outbox = waiting;
        for (_, to, message) in ready {
            cx.send(to, message);
        }
        if self.is_leader() {
            self.advance_leader_hw(cx);
        }
    }

    /// Writes `op` and asks for a sync of everything written so far.
    fn persist(&mut self, cx: &mut Context, op: DiskOp) {
        cx.persist(op);
        self.requested += 1;
        cx.sync(self.requested);
        self.unsynced_ends
            .push((self.requested, self.log.end_offset()));
    }

    fn persist_election(&mut self, cx: &mut Context) {
        let op = DiskOp::QuorumElection {
            epoch: self.epoch,
            voted_for: self.voted_for,
        };
        self.persist(cx, op);
        self.election_unsynced = Some(self.requested);
    }

    /// Sends `message`, or holds it until every write made so far is synced.
    fn send(&mut self, cx: &mut Context, to: NodeId, message: Message) {
        if self.requested > self.synced {
            self.outbox.push((self.requested, to, message));
        } else {
            cx.send(to, message);
        }
    }

    /// Appends an entry of this voter's epoch (it leads) and writes it.
    fn append_own(&mut self, cx: &mut Context, record: MetadataRecord) -> Offset {
        let start = self.log.end_offset();
        let entry = QuorumEntry {
            epoch: self.epoch,
            record,
        };
        self.log.append(entry.clone());
        let op = DiskOp::QuorumAppend {
            start,
            entries: vec![entry],
        };
        self.persist(cx, op);
        start
    }

    /// Cuts the log to end at `offset`. A correct quorum never cuts below the high watermark; if
    /// it did, the watermark follows it down, below what was applied: visibly
    /// (`quorum-applied-within-hw`, the model's `hw-monotonic`).
    fn truncate(&mut self, cx: &mut Context, offset: Offset) {
        let offset = offset.max(self.log.start_offset());
        if offset >= self.log.end_offset() {
            return;
        }
        cx.reached(Situation::QuorumTruncation);
        self.log.truncate(offset);
        self.high_watermark = self.high_watermark.min(offset);
        self.cut_durable_ends(offset);
        self.persist(cx, DiskOp::QuorumTruncate { offset });
    }

    /// The log was cut (or replaced) to end at `offset`: no write, synced or pending, makes
    /// anything past it durable any more.
    fn cut_durable_ends(&mut self, offset: Offset) {
        self.synced_end = self.synced_end.min(offset);
        self.recovered_end = self.recovered_end.map(|end| end.min(offset));
        for (_, end) in &mut self.unsynced_ends {
            *end = (*end).min(offset);
        }
    }

    /// Restarts the election timer with a fresh draw.
    fn reset_election_timer(&mut self, cx: &mut Context) {
        let Some(base) = self.config.election_timeout_ms else {
            return;
        };
        let jitter = match self.config.election_jitter_ms {
            0 => 0,
            j => next_random(&mut self.rng) % j,
        };
        cx.set_timer(Timer::QuorumElection, Some(base + jitter));
    }
}

/// What a controller hosting the voter uses (`crate::node::controller_quorum`).
impl QuorumNode {
    /// Appends `record` in this voter's epoch if it leads (else `None`): the hosting controller's
    /// own change, committed like a client's submission but with no answer to send.
    pub fn propose(&mut self, cx: &mut Context, record: MetadataRecord) -> Option<Offset> {
        if !self.is_leader() {
            return None;
        }
        let offset = self.append_own(cx, record);
        self.answer_parked(cx);
        Some(offset)
    }

    /// Where this voter's leadership starts in its log (its leader-change entry), if it leads.
    pub fn epoch_start(&self) -> Option<Offset> {
        match &self.role {
            QuorumRole::Leader(l) => Some(l.epoch_start),
            _ => None,
        }
    }
}
