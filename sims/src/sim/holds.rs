//! Held links: messages from one node to another wait at the receiver's door, in order, and are
//! all handed over the moment the link is released (the `hold` and `release` faults).
//!
//! madsim's own link clogging (`one-way`) retries a stalled message with an exponential backoff
//! from its send time, so a message stalled for a second arrives up to a second after the link
//! is unclogged: fine for random faults, useless for forcing the order of a model checker's
//! counterexample step by step (`models check ... --export-schedule`). A held message is
//! delivered when the link is released, at once.
//!
//! Only a scenario with `hold` faults routes its nodes' inboxes through the gate (`gate`), so
//! every other run is scheduled exactly as before.

use super::cluster::lock;
use seedlog::protocol::{Message, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The links held now, shared by the supervisor and every node's gate.
#[derive(Clone)]
pub struct Holds {
    held: Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            held: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl Holds {
    pub fn hold(&self, from: NodeId, to: NodeId) {
        lock(&self.held).insert((from, to));
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn release(&self, from: NodeId, to: NodeId) {
        lock(&self.held).remove(&(from, to));
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn release_all(&self) {
        lock(&self.held).clear();
        self.changed.send_modify(|v| *v += 1);
    }

    fn is_held(&self, from: NodeId, to: NodeId) -> bool {
        lock(&self.held).contains(&(from, to))
    }

    /// Node `me`'s inbox through the gate: the returned inbox gets every message of `inbox`,
    /// except that those from a held sender wait (after any of its earlier ones) until released.
    /// Runs on the node's own task set, so it ends with the node.
    pub fn gate(
        &self,
        me: NodeId,
        mut inbox: mpsc::UnboundedReceiver<(NodeId, Message)>,
    ) -> mpsc::UnboundedReceiver<(NodeId, Message)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let holds = self.clone();
        let mut changed = self.changed.subscribe();
        tokio::spawn(async move {
            let mut waiting: BTreeMap<NodeId, VecDeque<Message>> = BTreeMap::new();
            loop {
                for (from, q) in waiting.iter_mut() {
                    if !holds.is_held(*from, me) {
                        while let Some(m) = q.pop_front() {
                            if tx.send((*from, m)).is_err() {
                                return;
                            }
                        }
                    }
                }
                waiting.retain(|_, q| !q.is_empty());
                tokio::select! {
                    biased;
                    r = changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                    }
                    m = inbox.recv() => {
                        let Some((from, msg)) = m else { return };
                        if holds.is_held(from, me) || waiting.contains_key(&from) {
                            waiting.entry(from).or_default().push_back(msg);
                        } else if tx.send((from, msg)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}
