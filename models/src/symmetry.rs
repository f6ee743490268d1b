//! Symmetry reduction for the quorum model (depth-first search only: stateright's
//! `CheckerBuilder::symmetry_fn`). The checker then remembers one representative per class of
//! equivalent states instead of every state, and still continues each path with the state it
//! really reached, so a counterexample is a real path of the model.
//!
//! Two states are equivalent when one is the other under a bijection `f` that commutes with the
//! model's steps (`s -> t` iff `f(s) -> f(t)`) and leaves every property's verdict unchanged.
//! Then whatever is reachable from one is, renamed, reachable from the other, with the same
//! verdicts, so exploring one state of each class finds every violation and reaches every
//! `sometimes` the full model does. `representative(s)` only ever returns some `f(s)`, so states
//! it merges are equivalent; it merges all of them when it is canonical, fewer otherwise (still
//! sound). Three such maps are combined here:
//!
//! 1. **Renaming the voters by a rotation** `v -> (v + k) mod n`, or, once the client is done,
//!    by any permutation. Each voter's id is renamed
//!    everywhere it occurs: the voter's position, its configuration (they differ only in the
//!    id), its vote, its role's leader and vote sets, the leader's per-follower progress, parked
//!    fetches and check-quorum set, the leader ids in leader-change entries (logs, disk images,
//!    applied entries, messages), the ids in messages (candidate, leader, replica) and the
//!    channels they travel in, the timers that name a voter, and the voter the client
//!    addresses. The voter's code treats ids symmetrically: it compares them for equality, keys
//!    maps and sets by them, and iterates over them only to send to, or count, every other
//!    voter (the order of sends to different channels, and of a sort's input, changes nothing).
//!    Its only id-dependent value, the election-timeout generator, never moves without jitter
//!    (the model's `election_jitter_ms` is 0), so it is the renamed voter's initial one. The
//!    client is why only rotations are used while it has records left: when no leader is known
//!    it tries voter `target + 1 mod n`, which commutes with rotations and not with the other
//!    permutations. Once it has none left it takes no step that depends on a voter's id — it
//!    sends nothing more, and every answer it gets is to an earlier submission, which it ignores
//!    — so from then on every permutation of the voters commutes with every step.
//!    Every property is stated over all voters alike (no property names a voter), so renaming
//!    leaves each verdict as it was.
//! 2. **Counting sync tokens from the last completed sync.** A voter's tokens (requested,
//!    synced, the unsynced log ends, its outbox) and the adapter's sync in flight are only ever
//!    compared with each other, so moving all of them down by the last completed token changes
//!    no step; no property reads them. (`QuorumNode::durable_end`, which a property reads,
//!    tells a restarted voter's recovered log by a field of its own, not by a token number,
//!    for this reason: renumbered, any first outstanding write would look like the owed one.)
//! 3. **Forgetting a crashed voter's memory.** A crashed actor takes no step until it recovers,
//!    and recovering rebuilds it from its disk alone (`NodeActor::on_start`), so the state it
//!    had in memory decides nothing; the properties read only running voters and disks. It is
//!    replaced by `NodeState::Booting` of its disk.
//!
//! A client with nothing left to submit takes no step that depends on whom it addressed last, so
//! its target is forgotten too (`QuorumClient::relabeled`), which lets the finished runs merge
//! under every permutation.
//!
//! `representative` applies (3), then one renaming with (2): while the client has records left,
//! the rotation that takes the voter it addresses to voter 0 (exactly one does, so every state of
//! a class picks the same one); afterwards, among all the permutations whose voters' summaries
//! (rename-invariant: epoch, role, log and disk lengths...) in order are smallest, the one whose
//! renamed state hashes smallest. Either way every state of a class yields the same
//! representative (up to a collision of 64-bit hashes, which the checker's own fingerprints
//! already risk), and renaming the state in full is paid once per state (up to `n` times on
//! ties, only once the client is done).
//!
//! Every permutation once the client is done (rather than only rotations) took the `--preset
//! target` run from 801,958 to 643,385 states, and the run of 1 record, 0 crashes and 2
//! timeouts from 2,068,447 to 1,771,416; at the test's small bounds it halves several counts.
//!
//! What it costs and saves: the renaming is a second copy of each new state, about as costly as
//! the step that made it; it merges about two states in three, so a run takes about half the
//! time (numbers in `docs/quorum.md`). `tests/quorum.rs` checks that the reduced and the full
//! search agree, at small bounds, on every verdict, with `vote-without-log-check`,
//! `commit-previous-epoch-by-count` and without a switch.

use crate::actor::{fingerprint, ActorTimer, Digested, Disk, Msg, NodeState, Stored};
use crate::properties::State;
use seedlog::node::{AnyNode, Image, QuorumConfig, QuorumImage, QuorumRole, Timer};
use seedlog::protocol::{
    Message, MetadataRecord, NodeId, QuorumEntry, QuorumFetchResponse, QuorumFetchResult,
    QuorumSubmitResponse,
};
use stateright::actor::{Envelope, Id, Network, Timers};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A renaming of the voters `0..n` (`new[old]`); the client, actor `n`, keeps its id. With
/// each voter's configuration, by id, where the state holds one (they differ only in the id).
struct Renaming<'a> {
    new: Vec<NodeId>,
    configs: &'a [Option<Arc<QuorumConfig>>],
}

impl Renaming<'_> {
    fn id(&self, v: NodeId) -> NodeId {
        self.new.get(v as usize).copied().unwrap_or(v)
    }

    fn config(&self, old: &Arc<QuorumConfig>) -> Arc<QuorumConfig> {
        let id = self.id(old.id);
        match self.configs.get(id as usize) {
            _ if id == old.id => old.clone(),
            Some(Some(c)) => c.clone(),
            _ => Arc::new(QuorumConfig {
                id,
                ..(**old).clone()
            }),
        }
    }

    fn actor(&self, a: Id) -> Id {
        Id::from(self.id(usize::from(a) as NodeId) as usize)
    }

    fn entry(&self, e: &QuorumEntry) -> QuorumEntry {
        match e.record {
            MetadataRecord::LeaderChange { leader, epoch } => QuorumEntry {
                epoch: e.epoch,
                record: MetadataRecord::LeaderChange {
                    leader: self.id(leader),
                    epoch,
                },
            },
            _ => e.clone(),
        }
    }

    fn message(&self, m: &Message) -> Message {
        match m {
            Message::PreVote(r) | Message::Vote(r) => {
                let mut r = r.clone();
                r.candidate = self.id(r.candidate);
                match m {
                    Message::PreVote(_) => Message::PreVote(r),
                    _ => Message::Vote(r),
                }
            }
            Message::PreVoteResponse(r) | Message::VoteResponse(r) => {
                let mut r = r.clone();
                r.leader = r.leader.map(|l| self.id(l));
                match m {
                    Message::PreVoteResponse(_) => Message::PreVoteResponse(r),
                    _ => Message::VoteResponse(r),
                }
            }
            Message::BeginQuorumEpoch(b) => {
                let mut b = b.clone();
                b.leader = self.id(b.leader);
                Message::BeginQuorumEpoch(b)
            }
            Message::QuorumFetch(r) => {
                let mut r = r.clone();
                r.replica = self.id(r.replica);
                Message::QuorumFetch(r)
            }
            Message::QuorumFetchResponse(r) => {
                let result = match &r.result {
                    QuorumFetchResult::Entries {
                        start,
                        entries,
                        high_watermark,
                    } => QuorumFetchResult::Entries {
                        start: *start,
                        entries: entries.iter().map(|e| self.entry(e)).collect(),
                        high_watermark: *high_watermark,
                    },
                    other => other.clone(),
                };
                Message::QuorumFetchResponse(QuorumFetchResponse {
                    epoch: r.epoch,
                    leader: r.leader.map(|l| self.id(l)),
                    fetch_offset: r.fetch_offset,
                    last_fetched_epoch: r.last_fetched_epoch,
                    result,
                })
            }
            Message::QuorumSubmitResponse(r) => {
                Message::QuorumSubmitResponse(QuorumSubmitResponse {
                    id: r.id,
                    result: r.result.map_err(|l| l.map(|l| self.id(l))),
                })
            }
            // Submissions carry registrations (no voter ids); no other message is a quorum's.
            other => other.clone(),
        }
    }

    fn image(&self, image: &Image) -> Image {
        match image {
            Image::Quorum(q) => Image::Quorum(QuorumImage {
                epoch: q.epoch,
                voted_for: q.voted_for.map(|v| self.id(v)),
                log: q.log.iter().map(|e| self.entry(e)).collect(),
                // The model's voters never snapshot (`snapshot_every` is off).
                snapshot: q.snapshot.clone(),
            }),
            other => other.clone(),
        }
    }

    fn disk(&self, d: &Disk) -> Disk {
        Disk {
            written: Digested::new(self.image(&d.written)),
            synced: Digested::new(self.image(&d.synced)),
            applied: d
                .applied
                .iter()
                .map(|(e, epoch)| (self.entry(e), *epoch))
                .collect(),
            ..d.clone()
        }
    }

    fn timer(&self, t: &ActorTimer) -> ActorTimer {
        match t.as_node() {
            Some(Timer::QuorumFetchWait(v)) => {
                ActorTimer::node(Timer::QuorumFetchWait(self.id(*v)))
            }
            _ => t.clone(),
        }
    }

    fn is_identity(&self) -> bool {
        self.new.iter().enumerate().all(|(v, &n)| v as NodeId == n)
    }

    /// A disk renamed; the same disk again (`last`) is renamed once.
    fn shared_disk(&self, d: &Arc<Disk>, last: &mut Option<(Arc<Disk>, Arc<Disk>)>) -> Arc<Disk> {
        if self.is_identity() {
            return d.clone();
        }
        if let Some((old, new)) = last {
            if Arc::ptr_eq(old, d) {
                return new.clone();
            }
        }
        let new = Arc::new(self.disk(d));
        *last = Some((d.clone(), new.clone()));
        new
    }

    /// A running actor's state renamed, its sync tokens counted from its last completed sync
    /// (`None`: the same state).
    fn node_state(
        &self,
        ns: &NodeState,
        last: &mut Option<(Arc<Disk>, Arc<Disk>)>,
    ) -> Option<NodeState> {
        let Some(node) = ns.node() else {
            let renamed = self.shared_disk(ns.disk(), last);
            return (!Arc::ptr_eq(&renamed, ns.disk())).then_some(NodeState::Booting(renamed));
        };
        let identity = self.is_identity();
        let (node, shift) = match node {
            AnyNode::Quorum(q) if identity && q.synced_token() == 0 => return None,
            AnyNode::Quorum(q) => {
                let shift = q.synced_token();
                let q = q.relabeled(
                    self.config(&q.config_arc()),
                    |v| self.id(v),
                    |e| self.entry(e),
                    |m| self.message(m),
                    shift,
                );
                (AnyNode::Quorum(q), shift)
            }
            AnyNode::QuorumClient(c) => {
                let c = c.relabeled(|v| self.id(v));
                match node {
                    AnyNode::QuorumClient(old) if *old == c => return None,
                    _ => (AnyNode::QuorumClient(c), 0),
                }
            }
            _ => return None,
        };
        let syncing = ns.syncing().as_ref().map(|(token, image)| {
            let image = match identity {
                true => image.clone(),
                false => Digested::new(self.image(image)),
            };
            (token - shift, image)
        });
        Some(ns.replaced(node, self.shared_disk(ns.disk(), last), syncing))
    }

    /// The whole state renamed (a crashed actor's memory already forgotten).
    fn state(&self, s: &State) -> State {
        let n = s.actor_states.len();
        let mut order = vec![0; n];
        for (old, slot) in order.iter_mut().enumerate() {
            *slot = self.id(old as NodeId) as usize;
        }
        let mut actor_states = s.actor_states.clone();
        let mut timers_set = s.timers_set.clone();
        let mut random_choices = s.random_choices.clone();
        let mut crashed = s.crashed.clone();
        let mut actor_storages = s.actor_storages.clone();
        for old in 0..n {
            // The stored disk and the running actor's are usually one: renamed once.
            let mut last = None;
            let storage = s.actor_storages[old].as_ref().map(|d| {
                let renamed = self.shared_disk(d.disk(), &mut last);
                match Arc::ptr_eq(&renamed, d.disk()) {
                    true => d.clone(),
                    false => Stored::new(renamed),
                }
            });
            actor_states[order[old]] = match self.node_state(&s.actor_states[old], &mut last) {
                Some(ns) => Arc::new(ns),
                None => s.actor_states[old].clone(),
            };
            let mut timers = Timers::new();
            for t in s.timers_set[old].iter() {
                timers.set(self.timer(t));
            }
            timers_set[order[old]] = timers;
            random_choices[order[old]] = s.random_choices[old].clone();
            crashed[order[old]] = s.crashed[old];
            actor_storages[order[old]] = storage;
        }
        let network = match &s.network {
            _ if self.is_identity() => s.network.clone(),
            Network::Ordered(channels) => {
                let renamed: BTreeMap<_, _> = channels
                    .iter()
                    .map(|((src, dst), q)| {
                        let q = q.iter().map(|m| Msg::new(self.message(m))).collect();
                        ((self.actor(*src), self.actor(*dst)), q)
                    })
                    .collect();
                Network::Ordered(renamed)
            }
            Network::UnorderedNonDuplicating(envelopes) => {
                Network::new_unordered_nonduplicating(envelopes.iter().flat_map(|(e, &n)| {
                    let renamed = Envelope {
                        src: self.actor(e.src),
                        dst: self.actor(e.dst),
                        msg: Msg::new(self.message(&e.msg)),
                    };
                    std::iter::repeat_n(renamed, n)
                }))
            }
            Network::UnorderedDuplicating(..) => {
                unimplemented!("the quorum model never duplicates")
            }
        };
        State {
            actor_states,
            network,
            timers_set,
            random_choices,
            crashed,
            history: s.history.clone(),
            actor_storages,
        }
    }
}

/// (3): every crashed actor's memory replaced by its disk.
fn forget_crashed(s: &State) -> State {
    let mut s = s.clone();
    for (i, down) in s.crashed.iter().enumerate() {
        if let (true, Some(stored)) = (*down, &s.actor_storages[i]) {
            s.actor_states[i] = Arc::new(NodeState::Booting(stored.disk().clone()));
        }
    }
    s
}

/// What a voter is, in terms no renaming changes: where the renamings differ in these, the
/// smallest sequence of them picks the representative without renaming the whole state.
fn summary(s: &State, v: usize) -> impl Ord {
    let disk = s.actor_storages[v].as_deref().map(|d| {
        let len = |i: &Image| match i {
            Image::Quorum(q) => (q.epoch, q.voted_for.is_some(), q.log.len()),
            _ => (0, false, 0),
        };
        (len(&d.synced), len(&d.written), d.applied.len(), d.boots)
    });
    let node = s.actor_states[v]
        .node()
        .and_then(|n| n.as_quorum())
        .map(|q| {
            let role = match q.role() {
                QuorumRole::Follower { leader } => (0, leader.is_some()),
                QuorumRole::Prospective { granted, .. } => (1, granted.len() > 1),
                QuorumRole::Candidate { granted } => (2, granted.len() > 1),
                QuorumRole::Leader(_) => (3, false),
            };
            let log = q.log().entries();
            (
                q.epoch(),
                role,
                log.len(),
                log.last().map(|e| e.epoch),
                q.high_watermark(),
            )
        });
    (s.crashed[v], node, disk)
}

/// The representative of `s`'s class (see the module notes): for the quorum model, whose
/// actors are voters `0..n` and the client `n`.
///
/// While the client has records to submit, the rotation taking the voter it addresses to 0 is
/// the canonical one (exactly one rotation does). Afterwards, the permutations whose voters'
/// summaries, in order, are smallest are renamed in full, and the one hashing smallest wins.
pub fn representative(s: &State) -> State {
    let configs: Vec<Option<Arc<QuorumConfig>>> = s
        .actor_states
        .iter()
        .map(|ns| {
            ns.node()
                .and_then(|n| n.as_quorum())
                .map(|q| q.config_arc())
        })
        .collect();
    let s = forget_crashed(s);
    let n = s.actor_states.len() - 1;
    let rotation = |k: usize| Renaming {
        new: (0..n).map(|v| ((v + n - k) % n) as NodeId).collect(),
        configs: &configs,
    };
    let target = match s.actor_states[n].node() {
        Some(AnyNode::QuorumClient(c)) => c.target(),
        _ => None,
    };
    if let Some(t) = target {
        return rotation(t as usize).state(&s);
    }
    // The client is done: every permutation of the voters is a symmetry (module notes). A
    // permutation `new` puts old voter `v` at position `new[v]`.
    let keys: Vec<_> = (0..n).map(|v| summary(&s, v)).collect();
    let perms = permutations(n);
    let order = |new: &[NodeId]| {
        let mut seq = vec![&keys[0]; n];
        for (old, &to) in new.iter().enumerate() {
            seq[to as usize] = &keys[old];
        }
        seq
    };
    let best = perms.iter().map(|p| order(p)).min().expect("a voter");
    perms
        .iter()
        .filter(|p| order(p) == best)
        .map(|p| {
            let renaming = Renaming {
                new: p.clone(),
                configs: &configs,
            };
            renaming.state(&s)
        })
        .min_by_key(fingerprint)
        .expect("a voter")
}

/// Every permutation of `0..n` (`new[old]`), the identity first.
fn permutations(n: usize) -> Vec<Vec<NodeId>> {
    let mut all = vec![Vec::new()];
    for k in 0..n as NodeId {
        all = all
            .into_iter()
            .flat_map(|p: Vec<NodeId>| {
                (0..=p.len()).map(move |at| {
                    let mut q = p.clone();
                    q.insert(at, k);
                    q
                })
            })
            .collect();
    }
    all.sort();
    all
}
