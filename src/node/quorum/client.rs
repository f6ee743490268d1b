//! A client of the quorum: submits its records one at a time to the voter it believes leads,
//! following the leader a non-leader names, and trying the next voter when none is named.

use crate::node::{Context, Timer};
use crate::protocol::{Message, MetadataRecord, NodeId, QuorumSubmit, QuorumSubmitResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumClientConfig {
    pub id: NodeId,
    pub voters: Vec<NodeId>,
    pub records: Vec<MetadataRecord>,
    /// Wait before trying the next voter when no leader is known (`None`: try at once).
    pub retry_backoff_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuorumClient {
    config: Arc<QuorumClientConfig>,
    /// Index of the record being submitted; all are accepted when it reaches the end.
    next: usize,
    /// Index into `voters` of the voter asked.
    target: usize,
}

impl QuorumClient {
    pub fn new(config: Arc<QuorumClientConfig>) -> Self {
        QuorumClient {
            config,
            next: 0,
            target: 0,
        }
    }

    /// Records accepted by a leader so far.
    pub fn accepted(&self) -> usize {
        self.next
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        self.submit(cx);
    }

    fn submit(&mut self, cx: &mut Context) {
        let Some(record) = self.config.records.get(self.next) else {
            return;
        };
        let to = self.config.voters[self.target];
        let request = QuorumSubmit {
            id: self.next as u64,
            record: record.clone(),
        };
        cx.send(to, Message::QuorumSubmit(request));
    }

    pub fn on_message(&mut self, cx: &mut Context, _from: NodeId, message: Message) {
        let Message::QuorumSubmitResponse(QuorumSubmitResponse { id, result }) = message else {
            return;
        };
        if id != self.next as u64 {
            return;
        }
        match result {
            Ok(_) => {
                self.next += 1;
                self.submit(cx);
            }
            Err(Some(leader)) if self.config.voters.contains(&leader) => {
                self.target = self
                    .config
                    .voters
                    .iter()
                    .position(|&v| v == leader)
                    .unwrap_or(0);
                self.submit(cx);
            }
            Err(_) => {
                self.target = (self.target + 1) % self.config.voters.len();
                match self.config.retry_backoff_ms {
                    Some(ms) => cx.set_timer(Timer::ClientBackoff, Some(ms)),
                    None => self.submit(cx),
                }
            }
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        if timer == Timer::ClientBackoff {
            self.submit(cx);
        }
    }

    /// The voter this client addresses, while it has records left to submit.
    pub fn target(&self) -> Option<NodeId> {
        (self.next < self.config.records.len()).then(|| self.config.voters[self.target])
    }

    /// This client with the voter it addresses renamed by `id`, a permutation of the voters (the
    /// model checker's symmetry reduction, `models/src/symmetry.rs`). A client with nothing left
    /// to submit addresses no one: its target becomes the first voter.
    pub fn relabeled(&self, id: impl Fn(NodeId) -> NodeId) -> QuorumClient {
        let voters = &self.config.voters;
        let target = self
            .target()
            .and_then(|to| voters.iter().position(|&v| v == id(to)))
            .unwrap_or(0);
        QuorumClient {
            config: self.config.clone(),
            next: self.next,
            target,
        }
    }
}
