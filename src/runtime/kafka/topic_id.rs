//! Topic ids (KIP-516). Our metadata names topics only, so a topic's id is derived from its
//! name: the same on every broker and across restarts, with no state to keep. A topic deleted
//! and created again under the same name would get the same id; seedlog deletes no topics.

use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// A version-8 (custom) UUID from two CRC-32C-seeded FNV-1a passes over the name: stable,
/// spread, never the nil id Kafka reserves for "no id".
pub fn topic_id(name: &str) -> Uuid {
    let a = fnv1a(0xcbf2_9ce4_8422_2325, name.as_bytes());
    let b = fnv1a(
        0x8422_2325_cbf2_9ce4 ^ u64::from(crc32c::crc32c(name.as_bytes())),
        name.as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    data.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The topic whose id is `id` among `names`.
pub fn topic_by_id<'a>(id: Uuid, names: impl IntoIterator<Item = &'a str>) -> Option<StrBytes> {
    names
        .into_iter()
        .find(|n| topic_id(n) == id)
        .map(|n| StrBytes::from_string(n.to_string()))
}
