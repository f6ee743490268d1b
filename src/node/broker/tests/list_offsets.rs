//! ListOffsets on the leader: what each spec answers, and when it refuses. Consumers that reset
//! to `latest` and tools that look offsets up by time start from these answers, so an answer
//! past the committed records makes them skip or re-read what others never saw.

use super::{
    fetch_by_follower_1, leader_state, leader_with_age_retention, pair, produce, produce_stamped,
    retention_at, single_leader, started_broker, to_broker, two_broker_controller,
};
use crate::node::Broker;
use crate::protocol::TopicPartition;
use crate::protocol::{ErrorCode, Message, Offset, OffsetSpec};

/// What `b` answers a ListOffsets for `t-0` by `spec`: the offset, and for a lookup by time
/// the timestamp of the record found.
fn list(b: &mut Broker, spec: OffsetSpec) -> (Result<Offset, ErrorCode>, Option<i64>) {
    let tp = TopicPartition::new("t", 0);
    let answers = to_broker(b, 100, Message::ListOffsets { tp, spec });
    match answers.as_slice() {
        [(
            100,
            Message::ListOffsetsResponse {
                result, timestamp, ..
            },
        )] => (*result, *timestamp),
        other => panic!("one ListOffsets answer to the client expected: {other:?}"),
    }
}

/// Broker 1's fetch of `t-0` from `offset`: it then holds everything below it.
fn follower_fetch_from(b: &mut Broker, offset: Offset) {
    let fetch = fetch_by_follower_1(b, offset, 0);
    to_broker(b, 1, fetch);
}

/// `latest` is the high watermark, not the log end: records the ISR has not all taken may
/// still be cut by a failover, and a consumer starting past them would skip their
/// replacements.
#[test]
fn latest_is_the_high_watermark_not_the_log_end() {
    let (_controller, mut leader) = pair();
    // Three records on the leader, stamped 0, 10 and 20; its follower has none of them yet.
    for i in 0..3 {
        let stamp = 10 * i as i64;
        assert_eq!(
            produce_stamped(&mut leader, &format!("v{i}"), i, stamp),
            vec![]
        );
    }
    assert_eq!(list(&mut leader, OffsetSpec::Latest), (Ok(0), None));
    // The follower takes the first one: one record is committed of three written.
    follower_fetch_from(&mut leader, 1);
    let r = &leader.replicas()[&TopicPartition::new("t", 0)];
    assert_eq!((r.log.high_watermark(), r.log.log_end_offset()), (1, 3));
    assert_eq!(list(&mut leader, OffsetSpec::Latest), (Ok(1), None));
    assert_eq!(list(&mut leader, OffsetSpec::Earliest), (Ok(0), None));
    // A lookup by time looks only below the high watermark too: the record at it (offset 1,
    // stamped 10) is not committed, so a lookup it would answer gets the high watermark with
    // no stamp, as one that finds nothing does.
    assert_eq!(
        list(&mut leader, OffsetSpec::Timestamp(0)),
        (Ok(0), Some(0))
    );
    assert_eq!(list(&mut leader, OffsetSpec::Timestamp(1)), (Ok(1), None));
    assert_eq!(list(&mut leader, OffsetSpec::Timestamp(15)), (Ok(1), None));
}

/// By time: the first committed record stamped at or after the time, with its stamp; the
/// high watermark, with no stamp, when there is none. Stamps need not rise with offsets.
#[test]
fn a_lookup_by_time_finds_the_first_record_at_or_after_it() {
    let mut leader = single_leader();
    for (i, ts) in [100, 300, 200, 400].into_iter().enumerate() {
        assert_eq!(
            produce_stamped(&mut leader, &format!("v{i}"), i as u64, ts),
            vec![Ok(i as u64)]
        );
    }
    let at = |b: &mut Broker, t| list(b, OffsetSpec::Timestamp(t));
    assert_eq!(at(&mut leader, 50), (Ok(0), Some(100)));
    assert_eq!(at(&mut leader, 100), (Ok(0), Some(100)));
    assert_eq!(at(&mut leader, 150), (Ok(1), Some(300)));
    assert_eq!(at(&mut leader, 250), (Ok(1), Some(300)));
    assert_eq!(at(&mut leader, 350), (Ok(3), Some(400)));
    assert_eq!(at(&mut leader, 401), (Ok(4), None));
    assert_eq!(list(&mut leader, OffsetSpec::Latest), (Ok(4), None));
}

/// Max timestamp: the first committed record holding the largest timestamp, with it (a later
/// record stamped the same does not move the answer); only committed records count, so a
/// larger stamp the followers have not taken is not the answer yet, and with nothing committed
/// the answer is the high watermark with no stamp.
#[test]
fn max_timestamp_is_the_first_committed_record_with_the_largest_stamp() {
    let mut leader = single_leader();
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), (Ok(0), None));
    for (i, ts) in [100, 400, 200, 400, 300].into_iter().enumerate() {
        assert_eq!(
            produce_stamped(&mut leader, &format!("v{i}"), i as u64, ts),
            vec![Ok(i as u64)]
        );
    }
    assert_eq!(
        list(&mut leader, OffsetSpec::MaxTimestamp),
        (Ok(1), Some(400))
    );

    let (_controller, mut leader) = pair();
    for (i, ts) in [100, 50, 900].into_iter().enumerate() {
        assert_eq!(
            produce_stamped(&mut leader, &format!("v{i}"), i as u64, ts),
            vec![]
        );
    }
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), (Ok(0), None));
    // Offsets 0 and 1 committed; 2, stamped 900, is not.
    follower_fetch_from(&mut leader, 2);
    assert_eq!(
        list(&mut leader, OffsetSpec::MaxTimestamp),
        (Ok(0), Some(100))
    );
    follower_fetch_from(&mut leader, 3);
    assert_eq!(
        list(&mut leader, OffsetSpec::MaxTimestamp),
        (Ok(2), Some(900))
    );
}

/// Max timestamp looks only at what the leader still has: with every record deleted by
/// retention, the answer is the log start (the high watermark) with no stamp.
#[test]
fn max_timestamp_after_retention_is_of_what_is_left() {
    let mut leader = leader_with_age_retention([5_000, 30_000, 20_000]);
    let max = (Ok(1), Some(30_000));
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), max);
    assert_eq!(retention_at(&mut leader, 16_000), 1);
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), max);
    assert_eq!(retention_at(&mut leader, 50_000), 3);
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), (Ok(3), None));
}

/// `earliest` follows the log start as retention moves it.
#[test]
fn earliest_is_the_log_start_after_retention() {
    let mut leader = leader_with_age_retention([0, 5_000, 20_000]);
    assert_eq!(list(&mut leader, OffsetSpec::Earliest), (Ok(0), None));
    let start = retention_at(&mut leader, 16_000);
    assert_eq!(start, 2);
    assert_eq!(list(&mut leader, OffsetSpec::Earliest), (Ok(2), None));
    assert_eq!(list(&mut leader, OffsetSpec::Latest), (Ok(3), None));
    // Nothing left below the time's first record: the log start's record is the answer.
    assert_eq!(
        list(&mut leader, OffsetSpec::Timestamp(0)),
        (Ok(2), Some(20_000))
    );
}

/// A follower answers no spec; a new leader that has not yet committed an entry of its own
/// epoch cannot tell where the committed records end, so it answers `latest` and by time with
/// `OffsetNotAvailable` (its log start it knows).
#[test]
fn a_follower_refuses_and_a_new_leader_waits_for_its_epoch() {
    let controller = two_broker_controller();
    let mut follower = started_broker(&controller, 1);
    for spec in [
        OffsetSpec::Earliest,
        OffsetSpec::Latest,
        OffsetSpec::Timestamp(0),
        OffsetSpec::MaxTimestamp,
    ] {
        assert_eq!(
            list(&mut follower, spec),
            (Err(ErrorCode::NotLeaderOrFollower), None)
        );
    }
    let (_controller, mut leader) = pair();
    for i in 0..2 {
        produce(&mut leader, &format!("v{i}"), i);
    }
    follower_fetch_from(&mut leader, 1);
    // As if its epoch had begun at offset 2, above the high watermark 1.
    leader_state(&mut leader).epoch_start = 2;
    let unavailable = (Err(ErrorCode::OffsetNotAvailable), None);
    assert_eq!(list(&mut leader, OffsetSpec::Latest), unavailable);
    assert_eq!(list(&mut leader, OffsetSpec::Timestamp(0)), unavailable);
    assert_eq!(list(&mut leader, OffsetSpec::MaxTimestamp), unavailable);
    assert_eq!(list(&mut leader, OffsetSpec::Earliest), (Ok(0), None));
    // Once the high watermark reaches the epoch's start, it answers.
    leader_state(&mut leader).epoch_start = 1;
    assert_eq!(list(&mut leader, OffsetSpec::Latest), (Ok(1), None));
}
