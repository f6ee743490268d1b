//! What clients observed, recorded from the messages they receive. Kept in the model's history so
//! it survives crashes and properties can compare it with the brokers' logs.

use crate::cluster::ModelCfg;
use seedlog::protocol::{Message, Offset, TopicPartition};
use stateright::actor::Envelope;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// (partition, offset, index of the record in the producer's list) for every acknowledged send.
    pub acked: BTreeSet<(TopicPartition, Offset, usize)>,
    /// (partition, offset, value) for every record the reader received.
    pub read: BTreeSet<(TopicPartition, Offset, Vec<u8>)>,
    /// The highest high watermark the reader has been shown, per partition.
    pub max_hw: BTreeMap<TopicPartition, Offset>,
    /// A fetch response showed the reader a smaller high watermark than an earlier one.
    pub hw_regressed: bool,
    /// The record each produce request carries, by correlation (the model's batches hold one
    /// record each), until it is acknowledged.
    pub sent: BTreeMap<u64, usize>,
}

/// `record_msg_out` hook: notes which record each of the producer's requests carries.
pub fn record_out(cfg: &ModelCfg, history: &History, env: Envelope<&Message>) -> Option<History> {
    let Message::Produce(r) = env.msg else {
        return None;
    };
    if Some(usize::from(env.src)) != cfg.producer {
        return None;
    }
    let value = &r.records.first()?.value;
    let index = cfg.records.iter().position(|rec| &rec.value == value)?;
    let mut h = history.clone();
    h.sent.insert(r.correlation, index);
    Some(h)
}

/// `record_msg_in` hook: notes acknowledgements to the producer and records shown to the reader.
pub fn record_in(cfg: &ModelCfg, history: &History, env: Envelope<&Message>) -> Option<History> {
    let dst = usize::from(env.dst);
    match env.msg {
        Message::ProduceResponse(r) if Some(dst) == cfg.producer => {
            let offset = r.result.ok()?;
            let mut h = history.clone();
            let index = h.sent.remove(&r.correlation)?;
            h.acked.insert((r.tp.clone(), offset, index));
            (h != *history).then_some(h)
        }
        Message::FetchResponse(r) if Some(dst) == cfg.reader && r.error.is_none() => {
            let mut h = history.clone();
            for e in &r.records {
                h.read
                    .insert((r.tp.clone(), e.offset, e.record.value.clone()));
            }
            let max = h.max_hw.entry(r.tp.clone()).or_insert(0);
            if r.high_watermark < *max {
                h.hw_regressed = true;
            }
            *max = (*max).max(r.high_watermark);
            (h != *history).then_some(h)
        }
        _ => None,
    }
}
