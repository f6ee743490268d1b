//! The `quorum` model: three controller-quorum voters (`seedlog::node::QuorumNode`) and a client
//! submitting metadata records, with crashes that keep or lose unsynced writes. Its properties
//! are the Raft safety properties, stated over the voters' states and what they applied.
//!
//! Network: stateright's ordered channels, as the other models (no loss: a message to a crashed
//! voter waits for its restart; reordering across channels only). Loss is not needed for the
//! properties here: a lost fetch or vote looks to its sender like one never answered, which
//! the model already has in every state where the message is still in flight, and the timers
//! that would recover from a loss (fetch timeout, long-poll expiry, check-quorum) are off — an
//! election timeout, which fires at any moment, stands in for all of them.
//!
//! Bounds: crashes (`--crashes`), election timeouts (`--expiries`: every firing of a voter's
//! election timer that changed something counts; each starts a pre-vote round, or without
//! pre-vote an election), and epochs (`--max-epoch`: a state in which a voter is in a later epoch
//! is outside the model).
//!
//! Start (`--start`): empty disks, Raft's Figure 8 after two elections, or a formed quorum — the
//! state the empty start reaches once voter 0 is elected and its leader change is committed
//! everywhere (`formed`). `--preset target` (`ModelOptions::quorum_target`) is the formed start
//! at 2 records, 1 crash, 1 election timeout and max epoch 2: exhaustive in well under ten
//! minutes with every `sometimes` reached (`docs/quorum.md`).

use crate::actor::{recover_from_image, ActorTimer, Disk, NodeActor};
use crate::cluster::{ModelCfg, ModelKind, ModelOptions, SeedlogModel};
use crate::history::{self, History};
use crate::properties::{self, Layout, Named, State};
use seedlog::node::{
    AnyNode, BugSet, Image, QuorumClient, QuorumClientConfig, QuorumConfig, QuorumImage,
    QuorumNode, QuorumRole, Timer,
};
use seedlog::protocol::{MetadataRecord, QuorumEntry};
use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::{Expectation, Model};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The voters' disks at the model's first start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Every voter in epoch 0 with an empty log: a new quorum.
    Empty,
    /// Raft's Figure 8, two elections in (voters 0, 1, 2 as the figure's S1, S2, S5): voter 0
    /// led epoch 1 and wrote its leader change alone, voter 2 led epoch 2 with voter 1's vote
    /// and wrote its own leader change alone, and every voter is in epoch 2 and restarts from
    /// that disk (a restart is a step every voter may take, so whatever follows is a real run).
    /// From there two more elections reach the figure's end: voter 0 leads epoch 3, voter 1
    /// fetches 0's epoch-1 entry, and voter 2 may win epoch 4 with 1's vote — the entry is
    /// then lost unless epoch 3 committed it only with an entry of its own.
    Figure8,
    /// A formed quorum: the state the empty start reaches when voter 0's election timer fires
    /// and every message between voters is delivered and every sync completes (`formed`):
    /// voter 0 leads epoch 1, every voter holds its leader change, synced, committed and
    /// applied, and every other voter follows it with its fetch parked at the leader. The
    /// client's first submission is still on its way to voter 0. Only the fault budgets start
    /// again from zero.
    Formed,
}

impl Start {
    /// Voter `id`'s disk.
    fn image(self, id: u32) -> QuorumImage {
        let leader_change = |leader, epoch| QuorumEntry {
            epoch,
            record: MetadataRecord::LeaderChange { leader, epoch },
        };
        match (self, id) {
            (Start::Empty | Start::Formed, _) => QuorumImage::default(),
            (Start::Figure8, 0) => QuorumImage {
                epoch: 2,
                voted_for: None,
                log: vec![leader_change(0, 1)],
                snapshot: None,
            },
            (Start::Figure8, 2) => QuorumImage {
                epoch: 2,
                voted_for: Some(2),
                log: vec![leader_change(2, 2)],
                snapshot: None,
            },
            (Start::Figure8, _) => QuorumImage {
                epoch: 2,
                voted_for: Some(2),
                log: Vec::new(),
                snapshot: None,
            },
        }
    }
}

/// The formed quorum (`Start::Formed`), each voter's state and disk: from the empty start with
/// the same configuration, voter 0's election timer fires, and then, as long as one is enabled,
/// the first enabled step that delivers a message between two voters or completes a sync is
/// taken (the client's first submission stays in flight). Every step is the empty model's own,
/// so the formed state is one the empty start reaches (after one election timeout, which the
/// formed start does not count against `--expiries`).
pub fn formed(opts: &ModelOptions) -> Vec<(QuorumNode, QuorumImage)> {
    let empty = ModelOptions {
        quorum_start: Start::Empty,
        ..opts.clone()
    };
    let model = build(&empty);
    let client = Id::from(opts.brokers);
    let mut s = model.init_states().remove(0);
    let fire = ActorModelAction::Timeout(Id::from(0), ActorTimer::node(Timer::QuorumElection));
    s = model
        .next_state(&s, fire)
        .expect("voter 0's election timer fires");
    let mut actions = Vec::new();
    loop {
        actions.clear();
        model.actions(&s, &mut actions);
        let next = actions.iter().find(|a| match a {
            ActorModelAction::Deliver { src, dst, .. } => *src != client && *dst != client,
            ActorModelAction::Timeout(_, t) => *t == ActorTimer::SyncDone,
            _ => false,
        });
        let Some(a) = next else { break };
        s = model.next_state(&s, a.clone()).expect("an enabled step");
    }
    (0..opts.brokers)
        .map(|i| {
            let q = s.actor_states[i]
                .node()
                .and_then(|n| n.as_quorum())
                .expect("a running voter");
            assert_eq!(q.epoch(), 1, "voter {i} in epoch 1");
            assert_eq!(
                q.high_watermark(),
                1,
                "voter {i} committed the leader change"
            );
            assert_eq!(q.leader(), Some(0), "voter {i} knows voter 0 leads");
            let disk = s.actor_storages[i].as_ref().expect("a disk");
            assert_eq!(disk.written, disk.synced, "voter {i} synced everything");
            let Image::Quorum(image) = &*disk.synced else {
                unreachable!("a voter's disk")
            };
            (q.clone(), image.clone())
        })
        .collect()
}

/// The records the client submits: broker registrations 1, 2, ...
fn records(n: usize) -> Vec<MetadataRecord> {
    (1..=n as u32)
        .map(|broker| MetadataRecord::RegisterBroker {
            broker,
            epoch: u64::from(broker),
        })
        .collect()
}

pub fn build(opts: &ModelOptions) -> SeedlogModel {
    let voters: Vec<u32> = (0..opts.brokers as u32).collect();
    let client = opts.brokers;
    let bugs: BugSet = opts.bugs.iter().copied().collect();
    let cfg = ModelCfg {
        kind: ModelKind::Quorum,
        brokers: opts.brokers,
        // The client stands where the controller stands in the other models; there is none.
        controller: client,
        controllers: 1,
        controller_base: None,
        // The client keeps a single request chain (one submission outstanding, one answer to it),
        // so `crate::reduce` may deliver its answers eagerly, as it does the producer's.
        producer: Some(client),
        reader: None,
        consumers: Vec::new(),
        never_crash: vec![client],
        records: Vec::new(),
        crashes: opts.crashes,
        expiries: opts.expiries,
        evictions: 0,
        member_expiries: 0,
        refusals: 0,
        retentions: 0,
        max_version: 0,
        idempotent: false,
        max_epoch: opts.max_epoch,
    };
    let formed = match opts.quorum_start {
        Start::Formed => formed(opts),
        Start::Empty | Start::Figure8 => Vec::new(),
    };
    let mut model = ActorModel::new(cfg, History::default());
    for &id in &voters {
        let config = voter_config(id, &voters, &bugs);
        let (node, image) = match formed.get(id as usize) {
            Some((node, image)) => (node.clone(), image.clone()),
            None => {
                let image = opts.quorum_start.image(id);
                (QuorumNode::recover(Arc::new(config), image.clone()), image)
            }
        };
        model = model.actor(NodeActor {
            name: format!("voter {id}"),
            // A formed voter's disk is `image`, synced; what it applied (its committed log) is
            // what it applied on the way there (`actor::initially_applied`).
            initial: AnyNode::Quorum(node),
            initial_image: Image::Quorum(image),
            recover: recover_from_image,
            first_boot: Vec::new(),
            // Votes, epochs and entries become durable in a step of their own: a crash can fall
            // between a write and its sync (what `vote-not-durable` needs).
            deferred_sync: true,
        });
    }
    let client_config = QuorumClientConfig {
        id: client as u32,
        voters,
        records: records(opts.records),
        retry_backoff_ms: None,
    };
    model = model.actor(NodeActor {
        name: "client".into(),
        initial: AnyNode::QuorumClient(QuorumClient::new(Arc::new(client_config))),
        initial_image: Image::Empty,
        recover: |initial, _, _| initial.clone(),
        first_boot: Vec::new(),
        deferred_sync: false,
    });
    let model = model
        .init_network(match opts.unordered {
            true => Network::new_unordered_nonduplicating([]),
            false => Network::new_ordered([]),
        })
        .max_crashes(opts.crashes)
        .record_msg_in(history::record_in)
        .record_msg_out(history::record_out)
        .within_boundary(properties::within_boundary);
    properties::add(model)
}

/// A voter's configuration in the models (this one, and the replication model's controller
/// quorum): the election timer fires at any moment, the others are off (see the module notes).
pub fn voter_config(id: u32, voters: &[u32], bugs: &BugSet) -> QuorumConfig {
    QuorumConfig {
        election_timeout_ms: Some(1),
        election_jitter_ms: 0,
        fetch_timeout_ms: None,
        fetch_max_wait_ms: None,
        check_quorum_ms: None,
        // One entry per answer: a follower can hold an older epoch's entries without the
        // leader's own (what `commit-previous-epoch-by-count` needs).
        max_fetch_entries: 1,
        bugs: bugs.clone(),
        ..QuorumConfig::new(id, voters.to_vec(), 0)
    }
}

/// Running voters, with their index.
fn voters<'a>(cfg: &ModelCfg, s: &'a State) -> impl Iterator<Item = (usize, &'a QuorumNode)> {
    (0..cfg.brokers).filter_map(move |i| {
        if s.crashed[i] {
            return None;
        }
        s.actor_states[i].node()?.as_quorum().map(|q| (i, q))
    })
}

fn disks<'a>(cfg: &ModelCfg, s: &'a State) -> impl Iterator<Item = &'a Disk> {
    (0..cfg.brokers).filter_map(move |i| s.actor_storages[i].as_deref())
}

/// Every entry any voter applied, by offset, with the smallest epoch it was applied in.
fn committed(cfg: &ModelCfg, s: &State) -> BTreeMap<usize, (QuorumEntry, u32)> {
    let mut all: BTreeMap<usize, (QuorumEntry, u32)> = BTreeMap::new();
    for d in disks(cfg, s) {
        for (o, (e, epoch)) in d.applied.iter().enumerate() {
            let slot = all.entry(o).or_insert((e.clone(), *epoch));
            slot.1 = slot.1.min(*epoch);
        }
    }
    all
}

/// `single-leader-per-epoch`: no two running voters lead the same epoch.
fn single_leader<M: Layout>(m: &M, s: &State) -> bool {
    let mut epochs = std::collections::BTreeSet::new();
    voters(m.cfg(), s)
        .filter(|(_, q)| q.is_leader())
        .all(|(_, q)| epochs.insert(q.epoch()))
}

/// `leader-elected-by-majority`: every running leader holds the votes of a majority in its
/// epoch, as the voters show them: a running voter by its state, a crashed one by its disk
/// (`QuorumNode::check_elected_by_majority`).
fn elected_by_majority<M: Layout>(m: &M, s: &State) -> bool {
    let cfg = m.cfg();
    voters(cfg, s).filter(|(_, q)| q.is_leader()).all(|(_, q)| {
        let supports = |v: u32| match voter_or_disk(cfg, s, v) {
            Some(Ok(o)) => o.supports_leader_durably(q.id(), q.epoch()),
            Some(Err(image)) => image.supports_leader(q.id(), q.epoch()),
            None => true,
        };
        q.check_elected_by_majority(supports).is_ok()
    })
}

/// `quorum-progress-held-by-follower`: what each running leader counts of a follower's log is
/// held by it (`QuorumNode::check_progress_held`; a crashed follower is not judged).
fn progress_held<M: Layout>(m: &M, s: &State) -> bool {
    let cfg = m.cfg();
    voters(cfg, s).filter(|(_, q)| q.is_leader()).all(|(_, q)| {
        q.each_recorded_progress(
            |f, epoch, offset, leader_entry| match voter_or_disk(cfg, s, f) {
                Some(Ok(o)) => o.check_progress_held(q.id(), epoch, offset, leader_entry),
                _ => Ok(()),
            },
        )
        .is_ok()
    })
}

/// Voter `id`: its running state, or, crashed, its disk as written.
fn voter_or_disk<'a>(
    cfg: &ModelCfg,
    s: &'a State,
    id: u32,
) -> Option<Result<&'a QuorumNode, &'a QuorumImage>> {
    let i = id as usize;
    if i >= cfg.brokers {
        return None;
    }
    if !s.crashed[i] {
        return s.actor_states[i].node()?.as_quorum().map(Ok);
    }
    match &*s.actor_storages[i].as_deref()?.written {
        Image::Quorum(image) => Some(Err(image)),
        _ => None,
    }
}

/// `log-matching`: two running voters holding an entry of the same epoch at one offset hold
/// identical logs up to it.
fn log_matching<M: Layout>(m: &M, s: &State) -> bool {
    let logs: Vec<&[QuorumEntry]> = voters(m.cfg(), s).map(|(_, q)| q.log().entries()).collect();
    logs.iter().enumerate().all(|(i, a)| {
        logs[i + 1..].iter().all(|b| {
            let top = (0..a.len().min(b.len()))
                .rev()
                .find(|&o| a[o].epoch == b[o].epoch);
            top.is_none_or(|t| a[..=t] == b[..=t])
        })
    })
}

/// `leader-completeness`: every running leader holds every entry applied by a voter whose epoch
/// was at most the leader's when it applied it (an entry is committed by a leader of that epoch
/// or earlier, and Raft promises it to every leader of a later epoch). A stale leader of an older
/// epoch may lack entries committed after it: they are not its business.
fn leader_completeness<M: Layout>(m: &M, s: &State) -> bool {
    let committed = committed(m.cfg(), s);
    voters(m.cfg(), s)
        .filter(|(_, q)| q.is_leader())
        .all(|(_, q)| {
            committed
                .iter()
                .all(|(&o, (e, epoch))| *epoch > q.epoch() || q.log().entries().get(o) == Some(e))
        })
}

/// `committed-durable`: every applied entry is on the synced disk of a majority of the voters,
/// at its offset: no crash, power loss or truncation can take it from the quorum.
fn committed_durable<M: Layout>(m: &M, s: &State) -> bool {
    let cfg = m.cfg();
    let majority = cfg.brokers / 2 + 1;
    committed(cfg, s).iter().all(|(&o, (e, _))| {
        let holding = disks(cfg, s)
            .filter(|d| match &*d.synced {
                Image::Quorum(q) => q.log.get(o) == Some(e),
                _ => false,
            })
            .count();
        holding >= majority
    })
}

/// `applied-consistent`: every voter applies the same entries in the same order — every
/// voter's applied sequence is a prefix of every longer one — and a restarted voter applies
/// again exactly what it applied before (no entry changed, none skipped).
fn applied_consistent<M: Layout>(m: &M, s: &State) -> bool {
    let seqs: Vec<&Disk> = disks(m.cfg(), s).collect();
    seqs.iter().all(|d| !d.apply_conflict)
        && seqs.iter().enumerate().all(|(i, a)| {
            seqs[i + 1..].iter().all(|b| {
                a.applied
                    .iter()
                    .zip(&b.applied)
                    .all(|((x, _), (y, _))| x == y)
            })
        })
}

/// `hw-monotonic`: within an incarnation a voter's high watermark never goes below what it has
/// applied (it applies up to its watermark at once, so this is "never below its highest
/// watermark"). The watermark is not durable: a restarted voter starts from 0 and applies again,
/// which `applied-consistent` holds to the entries applied before.
fn hw_monotonic<M: Layout>(m: &M, s: &State) -> bool {
    voters(m.cfg(), s).all(|(_, q)| q.high_watermark() >= q.applied())
}

fn reaches_leader<M: Layout>(m: &M, s: &State) -> bool {
    voters(m.cfg(), s).any(|(_, q)| q.is_leader())
}

fn reaches_committed_change<M: Layout>(m: &M, s: &State) -> bool {
    disks(m.cfg(), s).any(|d| {
        d.applied
            .iter()
            .any(|(e, _)| matches!(e.record, MetadataRecord::RegisterBroker { .. }))
    })
}

/// Some voter's log holds leader changes of two different leaders: one replaced the other.
fn reaches_leader_replaced<M: Layout>(m: &M, s: &State) -> bool {
    voters(m.cfg(), s).any(|(_, q)| {
        let mut leaders = q.log().entries().iter().filter_map(|e| match e.record {
            MetadataRecord::LeaderChange { leader, .. } => Some(leader),
            _ => None,
        });
        leaders
            .next()
            .is_some_and(|first| leaders.any(|l| l != first))
    })
}

pub fn properties<M: Layout>() -> Vec<Named<M>> {
    use Expectation::{Always as A, Sometimes as S};
    vec![
        (A, "single-leader-per-epoch", single_leader),
        (A, "leader-elected-by-majority", elected_by_majority),
        (A, "quorum-progress-held-by-follower", progress_held),
        (A, "log-matching", log_matching),
        (A, "leader-completeness", leader_completeness),
        (A, "committed-durable", committed_durable),
        (A, "applied-consistent", applied_consistent),
        (A, "hw-monotonic", hw_monotonic),
        (S, "reaches leader", reaches_leader),
        (S, "reaches committed change", reaches_committed_change),
        (S, "reaches leader replaced", reaches_leader_replaced),
    ]
}

/// The epoch bound: no voter, running or on disk, past `max_epoch`.
pub fn within_epochs(cfg: &ModelCfg, s: &State) -> bool {
    let running = voters(cfg, s).all(|(_, q)| q.epoch() <= cfg.max_epoch);
    let stored = disks(cfg, s).all(|d| match &*d.written {
        Image::Quorum(q) => q.epoch <= cfg.max_epoch,
        _ => true,
    });
    running && stored
}

/// One line per voter for counterexamples.
pub fn render(q: &QuorumNode) -> String {
    let role = match q.role() {
        QuorumRole::Leader(l) => format!("leader (epoch starts at {})", l.epoch_start),
        QuorumRole::Follower { leader: Some(l) } => format!("follower of {l}"),
        QuorumRole::Follower { leader: None } => "follower, no leader".to_string(),
        QuorumRole::Prospective { .. } => "prospective".to_string(),
        QuorumRole::Candidate { .. } => "candidate".to_string(),
    };
    let log: Vec<String> = q.log().entries().iter().map(ToString::to_string).collect();
    let vote = q.voted_for().map_or("none".to_string(), |v| v.to_string());
    format!(
        "epoch {} vote {vote} {role} hw={} log=[{}]",
        q.epoch(),
        q.high_watermark(),
        log.join(", ")
    )
}
