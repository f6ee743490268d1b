//! What clients observed, recorded from the messages they receive. Kept in the model's history so
//! it survives crashes and properties can compare it with the brokers' logs.

use crate::actor::{Digested, Msg};
use crate::cluster::ModelCfg;
use seedlog::protocol::{ErrorCode, GroupAnswer, GroupRequest, Message, Offset, TopicPartition};
use stateright::actor::Envelope;
use std::collections::{BTreeMap, BTreeSet};

/// What clients observed, shared between the states that share it, digested once when it
/// changes (most steps leave it alone).
pub type History = Digested<Observed>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observed {
    /// (partition, offset, index of the record in the producer's list) for every acknowledged send.
    pub acked: BTreeSet<(TopicPartition, Offset, usize)>,
    /// (partition, offset, value) for every record the reader received.
    pub read: BTreeSet<(TopicPartition, Offset, Option<Vec<u8>>)>,
    /// The highest high watermark the reader has been shown, per partition.
    pub max_hw: BTreeMap<TopicPartition, Offset>,
    /// A fetch response showed the reader a smaller high watermark than an earlier one.
    pub hw_regressed: bool,
    /// The record each batch the producer sent carries, by the batch's id (the model's batches
    /// hold one record each).
    pub sent: BTreeMap<u64, usize>,
    /// What group members were told about committed offsets (`offset-fetch-fresh`).
    pub offsets: OffsetReads,
}

/// A group's partition: the register an offset commit writes and an offset fetch reads.
type Register = (String, TopicPartition);
/// A group request: the member's actor and the request's correlation. A member that crashes
/// numbers its requests from 1 again, so one key may name two requests in flight.
type RequestKey = (usize, u64);

/// Offset commits and fetches of group members, to judge every fetch's answer against the
/// commits acknowledged before the fetch was sent (`offset-fetch-fresh`, the model's form of
/// the history checker's `offset-regression`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OffsetReads {
    /// Commits in flight (sent, not answered): each may take effect at any time.
    pub commits: BTreeMap<RequestKey, Vec<(Register, Offset)>>,
    /// Commits that may still take effect with no answer left to wait for: those refused in a
    /// way that may follow an append (`may_have_landed`) and those whose key a restarted member
    /// reused (which request an answer belongs to is unknown).
    pub unsettled: BTreeSet<(Register, Offset)>,
    /// The highest acknowledged commit per register.
    pub floor: BTreeMap<Register, Offset>,
    /// Fetches in flight.
    pub fetches: BTreeMap<RequestKey, Vec<Fetch>>,
    /// An answer returned less than a commit acknowledged before its fetch was sent (or no
    /// offset), and no commit that could have landed since explains it.
    pub stale: bool,
}

/// An offset fetch in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fetch {
    pub register: Register,
    /// The highest commit acknowledged before the fetch was sent.
    pub floor: Option<Offset>,
    /// Offsets below `floor` of commits not acknowledged when the fetch was sent, or sent since:
    /// each may take effect before the fetch reads, so the answer may be any of them.
    pub excused: BTreeSet<Offset>,
}

impl Fetch {
    /// An answer of `offset` would be judged (it is below the floor): only such offsets need an
    /// excuse, so only they are kept (fewer states tell apart what no verdict depends on).
    fn judges(&self, offset: Offset) -> bool {
        self.floor.is_some_and(|floor| offset < floor)
    }
}

impl OffsetReads {
    /// A member sent a group request.
    fn sent(&mut self, member: usize, group: &str, correlation: u64, request: &GroupRequest) {
        let key = (member, correlation);
        match request {
            GroupRequest::Commit { tp, offset, .. } => {
                let register = (group.to_string(), tp.clone());
                for f in self.fetches.values_mut().flatten() {
                    if f.register == register && f.judges(*offset) {
                        f.excused.insert(*offset);
                    }
                }
                self.commits
                    .entry(key)
                    .or_default()
                    .push((register, *offset));
            }
            GroupRequest::FetchOffset { tp } => {
                let register = (group.to_string(), tp.clone());
                let mut fetch = Fetch {
                    floor: self.floor.get(&register).copied(),
                    excused: BTreeSet::new(),
                    register,
                };
                let in_flight = self.commits.values().flatten();
                fetch.excused = in_flight
                    .chain(&self.unsettled)
                    .filter(|(r, o)| *r == fetch.register && fetch.judges(*o))
                    .map(|(_, o)| *o)
                    .collect();
                self.fetches.entry(key).or_default().push(fetch);
            }
            _ => {}
        }
    }

    /// A member received an answer to a group request.
    fn answered(
        &mut self,
        member: usize,
        correlation: u64,
        answer: &Result<GroupAnswer, ErrorCode>,
    ) {
        let key = (member, correlation);
        let commits = self.commits.remove(&key).unwrap_or_default();
        let fetches = self.fetches.remove(&key).unwrap_or_default();
        match (&commits[..], &fetches[..], answer) {
            ([(register, offset)], [], Ok(GroupAnswer::Committed)) => {
                let floor = self.floor.entry(register.clone()).or_insert(*offset);
                *floor = (*floor).max(*offset);
            }
            ([], [f], Ok(GroupAnswer::Offset { offset, .. })) => {
                if let Some(floor) = f.floor {
                    self.stale |= offset.is_none_or(|v| v < floor && !f.excused.contains(&v));
                }
            }
            // Refused for good (a fenced generation, an unknown member, a rebalance under way):
            // refused before anything was appended, so it never lands.
            ([_], [], Err(e)) if !may_have_landed(*e) => {}
            // A refusal that may follow an append, or a key two requests share: their commits
            // may land at any time, and a fetch answered on a shared key is not judged.
            _ => self.unsettled.extend(commits),
        }
    }
}

/// A commit refused with `e` may still have been appended (and so may land): the coordinator
/// resigned while it waited (`NotCoordinator`), or it was committed with fewer in-sync replicas
/// than asked (`NotEnoughReplicasAfterAppend`). The group member reports these two as of unknown
/// outcome, and every other refusal as a definite failure.
fn may_have_landed(e: ErrorCode) -> bool {
    matches!(
        e,
        ErrorCode::NotCoordinator | ErrorCode::NotEnoughReplicasAfterAppend
    )
}

/// `record_msg_out` hook: notes which record each of the producer's requests carries.
pub fn record_out(cfg: &ModelCfg, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let src = usize::from(env.src);
    if let Message::Group(g) = &**env.msg {
        if !cfg.consumers.contains(&src) {
            return None;
        }
        let mut h = Observed::clone(history);
        h.offsets.sent(src, &g.group, g.correlation, &g.request);
        return (h != **history).then(|| History::new(h));
    }
    let Message::Produce(r) = &**env.msg else {
        return None;
    };
    if Some(src) != cfg.producer {
        return None;
    }
    let mut h = Observed::clone(history);
    for b in &r.batches {
        let value = &b.records.first()?.value;
        let index = cfg.records.iter().position(|rec| rec.value == *value)?;
        h.sent.insert(b.batch, index);
    }
    (h != **history).then(|| History::new(h))
}

/// `record_msg_in` hook: notes acknowledgements to the producer and records shown to the reader.
pub fn record_in(cfg: &ModelCfg, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let dst = usize::from(env.dst);
    match &**env.msg {
        Message::ProduceResponse(r) if Some(dst) == cfg.producer => {
            // Every acknowledgement counts, a late one to an earlier attempt too: each offset a
            // record was acknowledged at must hold it.
            let mut h = Observed::clone(history);
            for b in &r.batches {
                if let (Ok(offset), Some(&index)) = (b.result, h.sent.get(&b.batch)) {
                    h.acked.insert((b.tp.clone(), offset, index));
                }
            }
            (h != **history).then(|| History::new(h))
        }
        Message::FetchResponse(r) if Some(dst) == cfg.reader && r.error.is_none() => {
            let mut h = Observed::clone(history);
            for e in &r.records {
                h.read.insert((
                    r.tp.clone(),
                    e.offset,
                    e.record.value.as_deref().map(<[u8]>::to_vec),
                ));
            }
            let max = h.max_hw.entry(r.tp.clone()).or_insert(0);
            if r.high_watermark < *max {
                h.hw_regressed = true;
            }
            *max = (*max).max(r.high_watermark);
            (h != **history).then(|| History::new(h))
        }
        Message::GroupResponse(r) if cfg.consumers.contains(&dst) => {
            let mut h = Observed::clone(history);
            h.offsets.answered(dst, r.correlation, &r.result);
            (h != **history).then(|| History::new(h))
        }
        _ => None,
    }
}
