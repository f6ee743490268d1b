//! The reader: a consumer without a group. It reads every partition of a topic from the leader,
//! from the log start onwards, one long-poll fetch in flight per partition, and only ever sees
//! committed records (the leader serves consumers below the high watermark).

use super::client::{metadata_request, Bootstrap};
use super::{ClientEvent, Context, ReaderConfig, Timer};
use crate::protocol::{
    BrokerId, ClusterMetadata, ErrorCode, FetchRequest, FetchResponse, Message, NodeId, Offset,
    TopicPartition,
};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reader {
    config: Arc<ReaderConfig>,
    metadata: Option<ClusterMetadata>,
    metadata_in_flight: bool,
    backing_off: bool,
    /// A fetch failed in a way newer metadata resolves: ask for a newer version.
    stale: bool,
    /// Next offset to read, per partition.
    positions: BTreeMap<u32, Offset>,
    /// The broker and offset of the fetch in flight, per partition.
    in_flight: BTreeMap<u32, (BrokerId, Offset)>,
    bootstrap: Bootstrap,
}

impl Reader {
    pub fn new(config: Arc<ReaderConfig>) -> Self {
        Reader {
            config,
            metadata: None,
            metadata_in_flight: false,
            backing_off: false,
            stale: false,
            positions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            bootstrap: Bootstrap::default(),
        }
    }

    /// A reader that already holds metadata (a warmed-up client): it fetches at once.
    pub fn with_metadata(config: Arc<ReaderConfig>, metadata: ClusterMetadata) -> Self {
        let mut r = Self::new(config);
        r.metadata = Some(metadata);
        r
    }

    pub fn positions(&self) -> &BTreeMap<u32, Offset> {
        &self.positions
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        match self.metadata {
            Some(_) => self.fetch_all(cx),
            None => self.request_metadata(cx),
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::MetadataResponse(md) => {
                self.metadata_in_flight = false;
                cx.cancel_timer(Timer::ClientRequestTimeout);
                ClusterMetadata::keep_newer(&mut self.metadata, md);
                self.stale = false;
                self.fetch_all(cx);
            }
            Message::FetchResponse(resp) => self.on_fetch_response(cx, from, resp),
            _ => {}
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::ClientBackoff => {
                self.backing_off = false;
                self.request_metadata(cx);
            }
            Timer::ClientRequestTimeout if self.metadata_in_flight => self.time_out_bootstrap(cx),
            Timer::ClientRequestTimeout => self.request_metadata(cx),
            Timer::FetchTimeout(tp) => self.on_fetch_timeout(cx, &tp),
            _ => {}
        }
    }

    /// The metadata request went unanswered: the bootstrap broker's connection is closed and
    /// the next broker asked. That connection may carry fetches too (the broker may lead a
    /// partition): they fail with it, rather than wait out their own timeout for answers that
    /// can no longer arrive; the metadata's answer sends them again.
    fn time_out_bootstrap(&mut self, cx: &mut Context) {
        if let Some(closed) = self.bootstrap.time_out(cx, &self.config.bootstrap) {
            self.fail_fetches(cx, closed);
        }
        // Its timer is the one that fired: nothing to cancel.
        self.metadata_in_flight = false;
        self.request_metadata(cx);
    }

    /// A fetch went unanswered: the connection to its broker is closed, as a Kafka consumer
    /// closes one whose request timed out (its answers may be stuck behind a stalled segment;
    /// `Effect::Disconnect`), failing every fetch in flight on it; all are sent again.
    fn on_fetch_timeout(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(&(broker, _)) = self.in_flight.get(&tp.partition) else {
            return self.fetch_all(cx);
        };
        cx.cancel_timer(Timer::FetchTimeout(tp.clone()));
        cx.disconnect(broker);
        self.fail_fetches(cx, broker);
        if self.bootstrap.current(&self.config.bootstrap) == Some(broker) {
            self.ask_bootstrap_again(cx);
        }
        self.fetch_all(cx);
    }

    /// The connection to the current bootstrap broker was closed by another request's timeout:
    /// the metadata request in flight on it (if any) is asked again at once, on a new
    /// connection, rather than left to its own timeout.
    fn ask_bootstrap_again(&mut self, cx: &mut Context) {
        if self.metadata_in_flight {
            self.metadata_in_flight = false;
            cx.cancel_timer(Timer::ClientRequestTimeout);
            self.request_metadata(cx);
        }
    }

    /// The connection to `broker` was closed: every fetch in flight on it failed (its answer
    /// can no longer arrive). The caller sends them again.
    fn fail_fetches(&mut self, cx: &mut Context, broker: NodeId) {
        let failed: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, (b, _))| *b == broker)
            .map(|(p, _)| *p)
            .collect();
        for p in failed {
            self.in_flight.remove(&p);
            let tp = TopicPartition::new(&self.config.topic, p);
            cx.cancel_timer(Timer::FetchTimeout(tp));
        }
    }

    fn on_fetch_response(&mut self, cx: &mut Context, from: NodeId, resp: FetchResponse) {
        let p = resp.tp.partition;
        if self.in_flight.get(&p) != Some(&(from, resp.fetch_offset)) {
            return;
        }
        self.in_flight.remove(&p);
        cx.cancel_timer(Timer::FetchTimeout(resp.tp.clone()));
        let position = self.positions.entry(p).or_insert(0);
        match resp.error {
            None => {
                if let Some(last) = resp.records.last() {
                    *position = last.offset + 1;
                    cx.observe(ClientEvent::Polled {
                        tp: resp.tp.clone(),
                        records: resp.records,
                        group: None,
                    });
                }
                self.fetch_all(cx);
            }
            Some(ErrorCode::OffsetOutOfRange) => {
                // Below the log start, retention removed what we had not read yet; past the log
                // end, an unclean election cut the log below where we had got (retrying there
                // would wait until new records pass it, reading nothing meanwhile). Either way,
                // as Kafka's auto.offset.reset=earliest: continue from the log start, and say
                // where it is (what lies below was deleted, not lost).
                *position = resp.log_start_offset;
                cx.observe(ClientEvent::Reset {
                    tp: resp.tp.clone(),
                    offset: *position,
                    group: None,
                });
                self.fetch_all(cx);
            }
            Some(_) => {
                self.stale = true;
                if self.config.retry_backoff_ms.is_none() {
                    return self.request_metadata(cx);
                }
                if !self.backing_off {
                    self.backing_off = true;
                    cx.set_timer(Timer::ClientBackoff, self.config.retry_backoff_ms);
                }
            }
        }
    }

    fn request_metadata(&mut self, cx: &mut Context) {
        if self.metadata_in_flight {
            return;
        }
        let Some(to) = self.bootstrap.current(&self.config.bootstrap) else {
            return;
        };
        self.metadata_in_flight = true;
        cx.send(to, metadata_request(self.metadata.as_ref(), self.stale));
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
    }

    fn fetch_all(&mut self, cx: &mut Context) {
        if self.backing_off {
            return;
        }
        let Some(md) = &self.metadata else {
            return;
        };
        let topic = &self.config.topic;
        let leaderless = md
            .partitions
            .iter()
            .any(|p| &p.tp.topic == topic && p.leader.is_none());
        let wait = md.partition_count(topic) == 0
            || (leaderless && self.config.retry_backoff_ms.is_some());
        // The partitions that have a leader are read even while another has none, as a Kafka
        // consumer reads them: one partition offline for good (its last in-sync replica lost
        // data) must not stop the others (the final reader of seed 546483251 never read
        // events-0 while events-1 was offline).
        let targets: Vec<(TopicPartition, BrokerId, u32)> = md
            .partitions
            .iter()
            .filter(|ps| &ps.tp.topic == topic && !self.in_flight.contains_key(&ps.tp.partition))
            .filter_map(|ps| ps.leader.map(|l| (ps.tp.clone(), l, ps.leader_epoch)))
            .collect();
        if wait {
            // Metadata from before the topic existed, from a broker that just restarted, or
            // from during an election: wait, then ask for newer.
            self.stale = true;
            self.backing_off = true;
            match self.config.retry_backoff_ms {
                Some(_) => cx.set_timer(Timer::ClientBackoff, self.config.retry_backoff_ms),
                None => {
                    self.backing_off = false;
                    self.request_metadata(cx);
                }
            }
        }
        for (tp, leader, leader_epoch) in targets {
            let p = tp.partition;
            let offset = *self.positions.entry(p).or_insert(0);
            let timeout = Timer::FetchTimeout(tp.clone());
            let req = FetchRequest::by_consumer(tp, offset, leader_epoch);
            self.in_flight.insert(p, (leader, offset));
            cx.send(leader, Message::Fetch(req));
            cx.set_timer(timeout, self.config.request_timeout_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Effect;
    use crate::protocol::{LogEntry, PartitionState, Record};

    /// A reader of partition t-0 (leader 0, epoch 1) at `position`, its first fetch sent.
    fn reading_t0(position: Offset) -> Reader {
        let config = ReaderConfig {
            id: 60,
            bootstrap: vec![0],
            topic: "t".into(),
            request_timeout_ms: None,
            retry_backoff_ms: None,
        };
        let md = ClusterMetadata {
            version: 1,
            brokers: vec![],
            partitions: vec![PartitionState {
                tp: TopicPartition::new("t", 0),
                replicas: vec![0],
                leader: Some(0),
                leader_epoch: 1,
                isr: vec![0],
                partition_epoch: 1,
            }],
        };
        let mut r = Reader::with_metadata(Arc::new(config), md);
        r.positions.insert(0, position);
        r.on_start(&mut Context::new(0));
        r
    }

    /// Leader 0's answer to a fetch of t-0 from `fetch_offset`, from a log holding
    /// `log_start..high_watermark`.
    fn answer(
        fetch_offset: Offset,
        error: Option<ErrorCode>,
        (log_start, high_watermark): (Offset, Offset),
        records: Vec<LogEntry>,
    ) -> Message {
        Message::FetchResponse(FetchResponse {
            tp: TopicPartition::new("t", 0),
            fetch_offset,
            error,
            leader_epoch: 1,
            high_watermark,
            log_start_offset: log_start,
            records,
            diverging_epoch: None,
            producers: Vec::new(),
            connection: 0,
        })
    }

    /// A reader of t-0 whose fetch from `position` was answered OffsetOutOfRange by a log
    /// holding `log_start..high_watermark`; the offset it then reports as reset to, and the
    /// offset of its next fetch.
    fn out_of_range(
        position: Offset,
        log_start: Offset,
        high_watermark: Offset,
    ) -> (Offset, Offset) {
        let mut r = reading_t0(position);
        let resp = answer(
            position,
            Some(ErrorCode::OffsetOutOfRange),
            (log_start, high_watermark),
            Vec::new(),
        );
        let mut cx = Context::new(0);
        r.on_message(&mut cx, 0, resp);
        let fx = cx.take_effects();
        let reset = fx.iter().find_map(|e| match e {
            Effect::Observe(ClientEvent::Reset { offset, .. }) => Some(*offset),
            _ => None,
        });
        let refetch = crate::node::effects::sent_fetch(&fx).map(|f| f.fetch_offset);
        (
            reset.unwrap_or_else(|| panic!("no reset: {fx:?}")),
            refetch.unwrap_or_else(|| panic!("no fetch: {fx:?}")),
        )
    }

    /// Only the answer to the fetch in flight counts, judged by its offset as well as its
    /// broker: an older fetch's answer from the same leader (sent before a reset moved the
    /// reader, and delivered late) would move the position back and poll again what was
    /// skipped or read.
    #[test]
    fn an_answer_to_an_older_fetch_of_the_same_broker_is_ignored() {
        let mut r = reading_t0(0);
        let gone = answer(0, Some(ErrorCode::OffsetOutOfRange), (5, 9), Vec::new());
        r.on_message(&mut Context::new(0), 0, gone);
        assert_eq!(
            r.positions()[&0],
            5,
            "reset to the log start, fetching there"
        );
        let entry = |offset| LogEntry {
            offset,
            epoch: 1,
            record: Record::keyed("k", "v"),
            producer: None,
        };
        let late = answer(0, None, (0, 9), vec![entry(0), entry(1)]);
        let mut cx = Context::new(0);
        r.on_message(&mut cx, 0, late);
        assert_eq!(cx.take_effects(), Vec::new());
        assert_eq!(r.positions()[&0], 5);
    }

    #[test]
    fn a_fetch_below_the_log_start_resets_there_and_reports_the_log_start() {
        // Retention deleted 0..4: the reader moves to 5 and says where the log starts.
        assert_eq!(out_of_range(0, 5, 9), (5, 5));
    }

    #[test]
    fn a_fetch_past_the_log_end_resets_to_the_log_start() {
        // An unclean election cut the log to 0..9 after the reader had read up to 11: waiting
        // at 12 would read nothing until new records pass it; it starts again from the log
        // start, as auto.offset.reset=earliest would.
        assert_eq!(out_of_range(12, 0, 9), (0, 0));
        assert_eq!(out_of_range(12, 3, 9), (3, 3));
    }

    #[test]
    fn a_metadata_request_timeout_closes_that_broker_s_connection() {
        let config = ReaderConfig {
            id: 60,
            bootstrap: vec![0, 1],
            topic: "t".into(),
            request_timeout_ms: Some(1_000),
            retry_backoff_ms: None,
        };
        let mut r = Reader::new(Arc::new(config));
        r.on_start(&mut Context::new(0));
        let mut cx = Context::new(1_000);
        r.on_timer(&mut cx, Timer::ClientRequestTimeout);
        let fx = cx.take_effects();
        assert!(fx.contains(&Effect::Disconnect(0)), "{fx:?}");
        let asked = crate::node::effects::sent_metadata_to(&fx);
        assert_eq!(asked, Some(1), "{fx:?}");
    }

    /// The connection a metadata timeout closes may carry a fetch too (the bootstrap broker
    /// leads the partition): it fails with it, its timer cancelled, and is sent again with
    /// the next metadata rather than after its own timeout.
    #[test]
    fn a_metadata_timeout_fails_the_fetches_on_the_connection_it_closes() {
        let mut r = reading_t0(5);
        assert!(r.in_flight.contains_key(&0));
        let mut cx = Context::new(10);
        r.request_metadata(&mut cx);
        assert!(r.metadata_in_flight);
        let mut cx = Context::new(1_000);
        r.on_timer(&mut cx, Timer::ClientRequestTimeout);
        let fx = cx.take_effects();
        assert!(fx.contains(&Effect::Disconnect(0)), "{fx:?}");
        let timer = Timer::FetchTimeout(TopicPartition::new("t", 0));
        assert!(fx.contains(&Effect::CancelTimer(timer)), "{fx:?}");
        assert!(r.in_flight.is_empty());
        // A late answer to the failed fetch is not taken.
        let mut cx = Context::new(1_001);
        r.on_message(&mut cx, 0, answer(5, None, (0, 9), vec![]));
        assert!(cx.take_effects().is_empty());
        assert_eq!(r.positions.get(&0), Some(&5));
    }

    /// The other way round: a fetch timeout closes the connection to the leader, which is also
    /// the bootstrap broker, and the metadata request in flight on it is asked again at once.
    #[test]
    fn a_fetch_timeout_asks_again_for_the_metadata_in_flight_on_that_connection() {
        let mut r = reading_t0(5);
        let mut cx = Context::new(10);
        r.request_metadata(&mut cx);
        let mut cx = Context::new(1_000);
        r.on_timer(&mut cx, Timer::FetchTimeout(TopicPartition::new("t", 0)));
        let fx = cx.take_effects();
        assert!(fx.contains(&Effect::Disconnect(0)), "{fx:?}");
        let asked = crate::node::effects::sent_metadata_to(&fx);
        assert_eq!(asked, Some(0), "{fx:?}");
        assert!(r.metadata_in_flight);
    }

    #[test]
    fn a_partition_without_a_leader_does_not_stop_the_others() {
        let config = ReaderConfig {
            id: 60,
            bootstrap: vec![0],
            topic: "t".into(),
            request_timeout_ms: None,
            retry_backoff_ms: Some(100),
        };
        let state = |p: u32, leader: Option<u32>| PartitionState {
            tp: TopicPartition::new("t", p),
            replicas: vec![0],
            leader,
            leader_epoch: 1,
            isr: leader.into_iter().collect(),
            partition_epoch: 1,
        };
        let md = ClusterMetadata {
            version: 1,
            brokers: vec![],
            partitions: vec![state(0, Some(0)), state(1, None)],
        };
        let mut r = Reader::with_metadata(Arc::new(config), md);
        let mut cx = Context::new(0);
        r.on_start(&mut cx);
        let fx = cx.take_effects();
        // Partition 1 offline: asks for newer metadata after the backoff, and reads partition
        // 0 meanwhile.
        let fetched = crate::node::effects::sent_fetch(&fx).map(|f| f.tp.partition);
        assert_eq!(fetched, Some(0), "{fx:?}");
        let backoff = fx.iter().any(|e| {
            matches!(
                e,
                Effect::SetTimer {
                    timer: Timer::ClientBackoff,
                    ..
                }
            )
        });
        assert!(backoff, "{fx:?}");
    }
}
