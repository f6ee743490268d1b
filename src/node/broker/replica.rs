//! A broker's replica of one partition: its log, what of it is synced, and its current role.

use crate::log::PartitionLog;
use crate::node::{BrokerConfig, Bug, Durability};
use crate::protocol::{
    Acks, BatchResult, BrokerEpoch, BrokerId, ErrorCode, FetchRequest, LeaderEpoch, NodeId, Offset,
    PartitionEpoch, ProduceResponse, TopicPartition,
};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Replica {
    pub log: PartitionLog,
    /// End of the prefix known to be on disk.
    pub synced_offset: Offset,
    /// Highest log end covered by a sync already requested.
    pub sync_requested: Offset,
    /// The latest leader epoch this replica has acted on; older partition states are ignored.
    pub leader_epoch: Option<LeaderEpoch>,
    pub role: Role,
}

impl Replica {
    /// A replica recovered from its disk: nothing of its log counts as synced, since a process
    /// crash leaves what the page cache held readable but not yet durable; the first sync
    /// covers it all.
    pub fn from_log(log: PartitionLog) -> Self {
        let start = log.log_start_offset();
        Replica {
            log,
            synced_offset: start,
            sync_requested: start,
            leader_epoch: None,
            role: Role::Idle,
        }
    }

    pub fn leader(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// With fsync durability, whether the end of the log is not yet on disk: a follower
    /// reports records to its leader only once they are, so it fetches again after the sync.
    pub fn has_unsynced_tail(&self, fsync: bool) -> bool {
        fsync && self.synced_offset < self.log.log_end_offset()
    }

    /// How far this replica holds its own log for acknowledgements: what it has synced with
    /// fsync durability, what it has written otherwise.
    pub fn own_counted(&self, config: &BrokerConfig) -> Offset {
        let fsync = config.durability == Durability::Fsync;
        if fsync && !config.bugs.has(Bug::AckBeforeSync) {
            self.synced_offset
        } else {
            self.log.log_end_offset()
        }
    }

    /// The high watermark this replica, leading on broker `config.id`, may move to now, if above
    /// the one it has: the least offset every member of the maximal ISR holds (has synced, with
    /// fsync durability), once that reaches this epoch's start. A pure function of the state, so
    /// the leader's step and the invariant that nothing is left to advance after it
    /// (`leader-hw-current`) compute the same figure. It runs after every step, so it walks the
    /// committed and the proposed ISR in place rather than building the maximal one (a member in
    /// both is counted twice, which leaves the least the same).
    pub fn hw_due(&self, config: &BrokerConfig) -> Option<Offset> {
        let ls = self.leader()?;
        let pending = if config.bugs.has(Bug::HwIgnoresPendingIsr) {
            None
        } else {
            ls.pending_isr.as_ref()
        };
        let mut candidate = self.own_counted(config);
        for &m in ls.isr.iter().chain(pending.into_iter().flatten()) {
            if m != config.id {
                candidate = candidate.min(ls.followers.get(&m)?.counted(config.durability));
            }
        }
        (candidate > self.log.high_watermark() && candidate >= ls.epoch_start).then_some(candidate)
    }

    /// Whether a produce waiting at this leader can be answered now: with acks=all once the
    /// high watermark passes its last record, otherwise once this replica holds it.
    pub fn produce_due(&self, config: &BrokerConfig, w: &WaitingProduce) -> bool {
        match w.acks {
            Acks::All => self.log.high_watermark() > w.last_offset,
            _ => self.own_counted(config) > w.last_offset,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// No leader known, or not yet told: serves nothing.
    #[default]
    Idle,
    Leader(LeaderState),
    Follower(FollowerState),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaderState {
    pub epoch: LeaderEpoch,
    /// The log end offset when this epoch began: the high watermark only advances, and followers
    /// only join the ISR, once they have reached it.
    pub epoch_start: Offset,
    /// The ISR as committed by the controller.
    pub isr: Vec<BrokerId>,
    pub partition_epoch: PartitionEpoch,
    /// An ISR change sent to the controller and not yet answered. Until it is, the high watermark
    /// counts the union of both ISRs (KIP-497's "maximal ISR").
    pub pending_isr: Option<Vec<BrokerId>>,
    /// That change's members as the request named them: each in the incarnation (broker epoch)
    /// the leader saw catch up when it first proposed. A resend names the same ones. Empty
    /// whenever `pending_isr` is `None` (so settled states compare equal in the model checker).
    pub pending_epochs: Vec<(BrokerId, BrokerEpoch)>,
    /// The controller refused our last ISR change; wait for its next push before proposing again.
    pub isr_change_refused: bool,
    /// What each follower proved it holds by fetching in this epoch; absent until it has.
    pub followers: BTreeMap<BrokerId, Progress>,
    pub waiting_produce: Vec<WaitingProduce>,
    /// Long-poll fetches waiting for data or a high-watermark change.
    pub parked_fetches: Vec<(NodeId, FetchRequest)>,
    /// Per follower, its incarnation and the newest connection it fetched on, once above 0
    /// (`ReplicaId::connection`): fetches of older ones are stale.
    pub connections: BTreeMap<BrokerId, (BrokerEpoch, u64)>,
}

impl LeaderState {
    /// ISR members counted for the high watermark: committed ISR plus any change in flight.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut m = self.isr.clone();
        if let Some(p) = &self.pending_isr {
            m.extend(p.iter().copied());
        }
        m.sort_unstable();
        m.dedup();
        m
    }

    /// Whether the committed ISR is big enough for acks=all writes and offset commits: at least
    /// `min.insync.replicas` members (with the `min-insync-exclusive` switch, more than that).
    pub fn isr_meets_min(&self, config: &BrokerConfig) -> bool {
        let min = config.min_insync_replicas;
        if config.bugs.has(Bug::MinInsyncExclusive) {
            self.isr.len() > min
        } else {
            self.isr.len() >= min
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    pub log_end: Offset,
    pub synced: Offset,
    pub broker_epoch: BrokerEpoch,
}

impl Progress {
    /// How far the follower holds records as durably as `durability` promises: what it has
    /// synced under `fsync`, what it has written otherwise. The high watermark counts this, and
    /// a follower joins the ISR only once this reaches the high watermark.
    pub fn counted(&self, durability: Durability) -> Offset {
        match durability {
            Durability::Fsync => self.synced,
            Durability::Replicated => self.log_end,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WaitingProduce {
    pub client: NodeId,
    pub correlation: u64,
    /// The client's name for the batch, echoed in its answer.
    pub batch: u64,
    pub acks: Acks,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FollowerState {
    pub leader: BrokerId,
    pub epoch: LeaderEpoch,
    /// The fetch offset of the request in flight.
    pub in_flight: Option<Offset>,
    /// With `fsync` durability: appended data must be synced before the next fetch reports it.
    pub awaiting_sync: bool,
    pub backing_off: bool,
}

impl WaitingProduce {
    /// The answer to this batch, on its own (the request's other batches are answered apart).
    pub fn answer(
        &self,
        tp: &TopicPartition,
        result: Result<Offset, ErrorCode>,
    ) -> ProduceResponse {
        ProduceResponse {
            correlation: self.correlation,
            batches: vec![BatchResult {
                tp: tp.clone(),
                batch: self.batch,
                result,
            }],
        }
    }
}
