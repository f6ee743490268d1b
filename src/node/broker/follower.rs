//! The follower role: one fetch in flight per partition, truncation where the leader says our log
//! diverges (epoch-based, KIP-101/279), and the high watermark learned from the leader.

use super::{Broker, FollowerState, Role};
use crate::log::Violation;
use crate::node::{Bug, Context, DiskOp, Durability, Situation, Timer};
use crate::protocol::{
    BrokerId, ErrorCode, FetchRequest, FetchResponse, LeaderEpoch, Message, NodeId, ReplicaId,
    TopicPartition,
};

impl Broker {
    pub(super) fn become_follower(
        &mut self,
        cx: &mut Context,
        tp: &TopicPartition,
        leader: BrokerId,
        epoch: LeaderEpoch,
    ) {
        self.step_down(cx, tp);
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        r.leader_epoch = Some(epoch);
        r.role = Role::Follower(FollowerState {
            leader,
            epoch,
            in_flight: None,
            awaiting_sync: false,
            backing_off: false,
        });
        if self.config.bugs.has(Bug::TruncateToHw) {
            // Bug B: the pre-KIP-101 rule. The high watermark a follower knows may be stale, so
            // this can drop records the leader has already committed.
            let hw = r.log.high_watermark();
            self.truncate(cx, tp, hw);
        }
        // With fsync durability a fetch reports how far our log is on disk, and the leader
        // counts us only that far. Records not yet synced here (a deposed leader's tail, or a
        // log recovered from the page cache after a restart) would go out in the first fetch
        // as not durable, and with nothing new to send the leader parks that fetch for its
        // whole wait: the high watermark stood still for half a second after every failover.
        // Fetch once they are on disk, as after any append.
        let fsync = self.config.durability == Durability::Fsync;
        if let Some(r) = self.replicas.get_mut(tp) {
            let unsynced = r.has_unsynced_tail(fsync);
            if let Role::Follower(fs) = &mut r.role {
                fs.awaiting_sync = unsynced;
            }
        }
        self.request_sync(cx);
        self.send_fetch(cx, tp);
    }

    pub(super) fn send_fetch(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(broker_epoch) = self.broker_epoch() else {
            return;
        };
        let me = self.config.id;
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let Role::Follower(fs) = &mut r.role else {
            return;
        };
        if fs.in_flight.is_some() || fs.awaiting_sync || fs.backing_off {
            return;
        }
        let fetch_offset = r.log.log_end_offset();
        let req = FetchRequest {
            tp: tp.clone(),
            replica: Some(ReplicaId {
                broker: me,
                broker_epoch,
                connection: connection_to(&self.fetch_connections, fs.leader),
            }),
            fetch_offset,
            last_fetched_epoch: r.log.latest_epoch(),
            current_leader_epoch: Some(fs.epoch),
            synced_offset: r.synced_offset,
            known_hw: r.log.high_watermark(),
        };
        fs.in_flight = Some(fetch_offset);
        cx.send(fs.leader, Message::Fetch(req));
        cx.set_timer(
            Timer::FetchTimeout(tp.clone()),
            self.config.fetch_timeout_ms,
        );
    }

    pub(super) fn on_fetch_response(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        resp: FetchResponse,
    ) {
        let fsync = self.config.durability == Durability::Fsync;
        let Some(r) = self.replicas.get_mut(&resp.tp) else {
            return;
        };
        let Role::Follower(fs) = &mut r.role else {
            return;
        };
        // Only the answer to the request in flight, from this leader in this epoch, on the
        // current connection, counts (a fetch of a dropped connection may be answered late,
        // after one of the same offset was sent again). An answer that refuses a fetch for its
        // epoch names the leader's, which tells whose it is: a fetch of ours in an older epoch,
        // at the same offset, refused as fenced by a leader now in our epoch, is not the one in
        // flight. Taken for it, it let the follower send that fetch again while the first was
        // still on its way; on another connection the first arrived after the second's answer,
        // and the leader took its offset as our position, below the high watermark we had
        // reached (seed 887447262: `isr-holds-hw`).
        let ours = match resp.error {
            None => resp.leader_epoch == fs.epoch,
            Some(ErrorCode::FencedLeaderEpoch) => resp.leader_epoch > fs.epoch,
            Some(ErrorCode::UnknownLeaderEpoch) => resp.leader_epoch < fs.epoch,
            Some(_) => true,
        };
        let current = from == fs.leader
            && resp.connection == connection_to(&self.fetch_connections, from)
            && fs.in_flight == Some(resp.fetch_offset)
            && ours;
        if !current {
            return;
        }
        fs.in_flight = None;
        cx.cancel_timer(Timer::FetchTimeout(resp.tp.clone()));
        let tp = resp.tp.clone();
        if let Some(d) = resp.diverging_epoch {
            // Truncate to where the leader's epoch ends, or where ours does if that is earlier;
            // the next fetch checks again until the logs match.
            let ours = match d.epoch {
                Some(e) => r.log.end_offset_for_epoch(e).end_offset,
                None => d.end_offset,
            };
            let target = d.end_offset.min(ours);
            if target < r.log.log_end_offset() {
                cx.reached(Situation::TruncationOnDivergence);
            }
            if target < r.log.log_start_offset() {
                // Every record we hold lies where our log and the leader's part (an unclean
                // election, or a leader that lost data, under our retention's log start), and so
                // does the producer state our deleted prefix left. Cutting at our log start kept
                // that state: seed 379551071's follower, restarted at 73 of a log the elected
                // leader had rebuilt from 0, held producer 1's batches of the old history and
                // would, elected, have refused or duplicated its retries. Start over at the
                // leader's log start with its producer state, as out of range below it.
                cx.reached(Situation::FollowerRestartAtLogStart);
                self.restart_log(cx, &tp, resp.log_start_offset, resp.producers);
                return self.send_fetch(cx, &tp);
            }
            self.truncate(cx, &tp, target);
            if d.epoch.is_none() {
                cx.reached(Situation::FollowerRestartAtLogStart);
                // The leader keeps no epoch as old as ours: retention or compaction moved its log
                // start past everything we could match it on. Drop our older prefix too and
                // start at its log start; otherwise every fetch names our old epoch again and
                // gets the same answer forever (found by the simulator once
                // `__consumer_offsets` compaction moved log starts).
                // Starting over at the leader's log start with nothing kept, take its
                // producer state below it, as when out of range below its log start.
                let start = d.end_offset.max(resp.log_start_offset);
                let log_end = self.log(&tp).map_or(0, |l| l.log_end_offset());
                if start >= log_end && start == resp.log_start_offset {
                    self.restart_log(cx, &tp, start, resp.producers);
                } else {
                    self.set_log_start(cx, &tp, start);
                }
            }
            return self.send_fetch(cx, &tp);
        }
        match resp.error {
            None => {}
            Some(ErrorCode::OffsetOutOfRange) if resp.log_start_offset > r.log.log_end_offset() => {
                // So far behind that the leader no longer has where we stopped: start over there,
                // with the leader's producer state below its log start, which no fetch can bring
                // (its entries are deleted). Without it, once this replica led, a producer's
                // retry of a deleted batch read as a new producer's first and was appended a
                // second time (seed 507639).
                cx.reached(Situation::FollowerRestartAtLogStart);
                self.restart_log(cx, &tp, resp.log_start_offset, resp.producers);
                return self.send_fetch(cx, &tp);
            }
            Some(ErrorCode::OffsetOutOfRange) if resp.high_watermark < r.log.log_end_offset() => {
                // Ahead of the leader's end: only an unclean election (or a leader that lost
                // data) leaves a follower past it, and without epochs in common no divergence
                // answer can bring it back. Cut to the leader's high watermark, or, when our
                // whole log lies above it, start over at the leader's log start (Kafka's
                // follower does the same on an out-of-range error).
                cx.reached(Situation::TruncationOnDivergence);
                if r.log.log_start_offset() <= resp.high_watermark {
                    self.truncate(cx, &tp, resp.high_watermark);
                } else {
                    cx.reached(Situation::FollowerRestartAtLogStart);
                    self.restart_log(cx, &tp, resp.log_start_offset, resp.producers);
                }
                return self.send_fetch(cx, &tp);
            }
            Some(_) => {
                // Fenced or refused: our metadata (or the leader's) is behind. Retry after a
                // backoff, or — without one — when the controller's next push changes our role.
                fs.backing_off = true;
                cx.set_timer(Timer::FetchBackoff(tp), self.config.fetch_backoff_ms);
                return;
            }
        }
        let appended = !resp.records.is_empty();
        if appended {
            if let Err(e) = r.log.append_entries(&resp.records) {
                // Only the answer to the fetch in flight gets here, and the leader reads from
                // its offset, our log end, after checking our last epoch against its log.
                let v = Violation::new("follower-append", e.to_string()).at(&tp);
                return self.broken(v);
            }
            cx.persist(DiskOp::Append {
                tp: tp.clone(),
                entries: resp.records,
            });
        }
        // Never below our log start: the leader's log start (which ours follows) is at most its
        // high watermark.
        let hw = resp
            .high_watermark
            .min(r.log.log_end_offset())
            .max(r.log.log_start_offset());
        if let Err(e) = r.log.set_high_watermark(hw) {
            return self.broken(Violation::new("follower-hw", e.to_string()).at(&tp));
        }
        if resp.log_start_offset > r.log.log_start_offset() {
            let start = resp.log_start_offset.min(r.log.log_end_offset());
            self.set_log_start(cx, &tp, start);
        }
        let r = self.replicas.get_mut(&tp).expect("present above");
        let unsynced = r.has_unsynced_tail(fsync);
        if let Role::Follower(fs) = &mut r.role {
            if unsynced {
                // Report these records to the leader only once they are on disk.
                fs.awaiting_sync = true;
                return;
            }
        }
        self.send_fetch(cx, &tp);
    }

    pub(super) fn on_fetch_backoff(&mut self, cx: &mut Context, tp: &TopicPartition) {
        if let Some(Role::Follower(fs)) = self.replicas.get_mut(tp).map(|r| &mut r.role) {
            fs.backing_off = false;
        }
        self.send_fetch(cx, tp);
    }

    /// A fetch went unanswered: the follower asks again, on a new connection to the leader (as
    /// the quorum's voters and the clients do). The leader takes a follower's fetch offset as its
    /// position, and a fetch left on the old connection, arriving after the new one's, would move
    /// that position back below the high watermark (`isr-holds-hw` caught it at once when the
    /// follower first reconnected unnumbered), so connections are numbered
    /// (`ReplicaId::connection`), as Kafka orders a follower's fetches with fetch-session epochs.
    pub(super) fn on_fetch_timeout(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(Role::Follower(fs)) = self.replicas.get_mut(tp).map(|r| &mut r.role) else {
            return;
        };
        fs.in_flight = None;
        let leader = fs.leader;
        // The answer may be stuck on a stalled connection (the leader was paused, or a network
        // partition healed under it): TCP carries nothing on it until its retransmission
        // backoff runs out, seconds later, while the leader waits for this follower and then
        // drops it from the ISR (found by the simulator: an acks=all record could not get
        // through within its delivery timeout, long after the heal). A new connection carries
        // the retry now, numbered so that the leader ignores the fetches the old one delivers
        // late, and this follower their answers. The other fetches in flight to that leader
        // are lost with it: they go again too.
        if !self.config.bugs.has(Bug::KeepStalledLinks) {
            cx.disconnect(leader);
            *self.fetch_connections.entry(leader).or_insert(0) += 1;
            let lost: Vec<TopicPartition> = self
                .replicas
                .iter_mut()
                .filter_map(|(other, r)| match &mut r.role {
                    Role::Follower(f) if f.leader == leader && f.in_flight.is_some() => {
                        f.in_flight = None;
                        Some(other.clone())
                    }
                    _ => None,
                })
                .collect();
            for other in lost {
                cx.cancel_timer(Timer::FetchTimeout(other.clone()));
                self.send_fetch(cx, &other);
            }
        }
        self.send_fetch(cx, tp);
    }
}

/// The follower's current connection number to `leader` (`ReplicaId::connection`).
fn connection_to(connections: &std::collections::BTreeMap<BrokerId, u64>, leader: BrokerId) -> u64 {
    connections.get(&leader).copied().unwrap_or(0)
}
