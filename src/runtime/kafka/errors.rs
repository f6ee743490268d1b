//! Our error codes as Kafka's numbers (the broker decides the error; this only names it).

use crate::protocol::ErrorCode;

pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
pub const INVALID_REQUEST: i16 = 42;
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const INVALID_RECORD: i16 = 87;

/// The outcome of a request the broker answers with an offset (a produce's base offset, a
/// listed offset), as Kafka names it: the offset, the broker's error, or REQUEST_TIMED_OUT when
/// no answer came in time (the outcome is unknown).
pub fn offset_outcome(
    answer: Option<&Result<crate::protocol::Offset, ErrorCode>>,
) -> Result<crate::protocol::Offset, i16> {
    match answer {
        Some(Ok(offset)) => Ok(*offset),
        Some(Err(e)) => Err(kafka_code(*e)),
        None => Err(REQUEST_TIMED_OUT),
    }
}

/// Kafka's number for one of our errors.
pub fn kafka_code(e: ErrorCode) -> i16 {
    match e {
        ErrorCode::NotLeaderOrFollower => 6,
        ErrorCode::FencedLeaderEpoch => 74,
        ErrorCode::UnknownLeaderEpoch => 75,
        ErrorCode::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::NotEnoughReplicas => 19,
        ErrorCode::NotEnoughReplicasAfterAppend => 20,
        ErrorCode::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        ErrorCode::OffsetNotAvailable => 78,
        ErrorCode::StaleBrokerEpoch => 77,
        ErrorCode::InvalidUpdateVersion => 95,
        ErrorCode::NotCoordinator => 16,
        ErrorCode::CoordinatorLoadInProgress => 14,
        ErrorCode::CoordinatorNotAvailable => 15,
        ErrorCode::UnknownMemberId => 25,
        ErrorCode::IllegalGeneration => 22,
        ErrorCode::InconsistentGroupProtocol => 23,
        ErrorCode::RebalanceInProgress => 27,
        ErrorCode::InvalidTopic => 17,
        ErrorCode::InvalidRecord => INVALID_RECORD,
        ErrorCode::OutOfOrderSequence => 45,
        // An idempotent producer's batch of an older epoch: Kafka's INVALID_PRODUCER_EPOCH
        // (PRODUCER_FENCED, 90, belongs to transactional producers).
        ErrorCode::ProducerFenced => 47,
        ErrorCode::TopicAlreadyExists => 36,
        ErrorCode::InvalidPartitions => 37,
        ErrorCode::InvalidReplicationFactor => 38,
        ErrorCode::RequestTimedOut => 7,
        ErrorCode::NotController => 41,
        ErrorCode::OffsetMetadataTooLarge => 12,
        ErrorCode::MessageTooLarge => MESSAGE_TOO_LARGE,
    }
}
