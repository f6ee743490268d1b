//! What clients observed, recorded from the messages they receive. Kept in the model's history so
//! it survives crashes and properties can compare it with the brokers' logs.

use crate::actor::{Digested, Msg};
use crate::cluster::ModelCfg;
use seedlog::protocol::{Message, Offset, TopicPartition};
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
}

/// `record_msg_out` hook: notes which record each of the producer's requests carries.
pub fn record_out(cfg: &ModelCfg, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let Message::Produce(r) = &**env.msg else {
        return None;
    };
    if Some(usize::from(env.src)) != cfg.producer {
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
        _ => None,
    }
}
