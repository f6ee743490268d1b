//! The APIs and versions the listener advertises, and ApiVersions' answer.
//!
//! Only what is implemented is listed, within ranges measured to work with kcat (librdkafka
//! 2.0.2), confluent-kafka 2.16, kafka-python 3.0, aiokafka 0.14 and kafkajs 2.2. The crate's full
//! ranges would make some clients pick versions whose shapes we do not fill. Produce must include
//! 3 and Fetch 4: librdkafka before 2.11.1 turns on record batches (message format v2) only then.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// (API, lowest, highest version) as advertised.
pub const ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::CreateTopics, 2, 7),
];

/// Kafka's UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Whether we serve `key` at `version`.
pub fn supported(key: ApiKey, version: i16) -> bool {
    ADVERTISED
        .iter()
        .any(|(k, lo, hi)| *k == key && (*lo..=*hi).contains(&version))
}

/// ApiVersions' answer. No supported or finalized features and no tagged fields: Debian's kcat
/// (librdkafka 2.0.2) fails on any non-empty tagged field here.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = if error_code == UNSUPPORTED_VERSION {
        // Kafka's answer to a version it does not know: the v0 body, listing only ApiVersions'
        // range, so the client can retry with a version both sides speak.
        ADVERTISED
            .iter()
            .filter(|(k, _, _)| *k == ApiKey::ApiVersions)
            .map(|(k, lo, hi)| api_version(*k, *lo, *hi))
            .collect()
    } else {
        ADVERTISED
            .iter()
            .map(|(k, lo, hi)| api_version(*k, *lo, *hi))
            .collect()
    };
    response
}

fn api_version(key: ApiKey, min: i16, max: i16) -> ApiVersion {
    let mut v = ApiVersion::default();
    v.api_key = key as i16;
    v.min_version = min;
    v.max_version = max;
    v
}
