//! Consumer groups on the wire: coordinator discovery, membership (join, sync, heartbeat, leave),
//! offset commit and fetch, and the records the coordinator keeps in the internal
//! `__consumer_offsets` topic.
//!
//! A group's coordinator is the leader of the `__consumer_offsets` partition its id hashes to
//! (Kafka's `abs(groupId.hashCode) % partitions`). Every request names the group; the coordinator
//! fences stale members by member id and generation.

use super::{BrokerId, ErrorCode, NodeId, Offset, Record, TopicPartition};
use serde::{Deserialize, Serialize};

/// The internal, replicated topic holding committed offsets and group generations.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A group member's id, assigned by the coordinator at its first join.
pub type MemberId = String;
/// Bumped by the coordinator at every completed rebalance; commits name the generation they
/// belong to, so a member that missed a rebalance is fenced.
pub type Generation = u32;

/// Java's `String.hashCode` over the id's UTF-16 code units, as Kafka computes it.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that holds `group`: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions` (`abs` maps `i32::MIN` to 0).
pub fn group_partition(group: &str, partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
    abs % partitions
}

/// How the coordinator spreads a topic's partitions over the group's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Assignor {
    /// Kafka's `range`: per topic, contiguous ranges of partitions, the first members getting one
    /// more when the division is uneven.
    Range,
    /// Kafka's `roundrobin`: all partitions, sorted, dealt to the members in turn.
    RoundRobin,
}

impl std::str::FromStr for Assignor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "range" => Ok(Assignor::Range),
            "roundrobin" | "round-robin" => Ok(Assignor::RoundRobin),
            _ => Err(format!(
                "unknown assignor '{s}'; expected 'range' or 'roundrobin'"
            )),
        }
    }
}

/// Who computes a group's assignment. Every member of a group must agree (a join that does not
/// is refused `InconsistentGroupProtocol`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssignBy {
    /// The coordinator computes it from the members' topics, as KIP-848's coordinators do.
    Coordinator(Assignor),
    /// Kafka's classic protocol: the coordinator chooses one protocol every member offers (by
    /// the members' first preferences) and a leader member; the leader receives every member's
    /// metadata for that protocol, computes the assignment, and hands it to the coordinator in
    /// its Sync. The coordinator never reads the metadata or the assignment: both are opaque
    /// bytes it carries (so any assignor a client implements works, sticky ones included).
    Leader {
        /// The kind of group (`consumer` for Kafka consumers); all members must name the same.
        protocol_type: String,
        /// In the member's order of preference.
        protocols: Vec<ProtocolOffer>,
    },
}

/// One assignment protocol a member offers: its name and the member's metadata for it (for a
/// Kafka consumer, its subscription).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProtocolOffer {
    pub name: String,
    pub metadata: Vec<u8>,
}

/// What a member learns from a completed join of a group whose leader assigns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaderJoin {
    /// The protocol chosen for this generation.
    pub protocol: String,
    pub leader: MemberId,
    /// Every member with its metadata for `protocol`, sorted by id: only in the leader's answer
    /// (empty for the others).
    pub members: Vec<(MemberId, Vec<u8>)>,
}

/// A request to a group's coordinator (or, for `FindCoordinator`, to any broker).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupRequest {
    FindCoordinator,
    /// Join (or rejoin) the group. `member` is `None` at the first join; the coordinator answers
    /// with a new id. `topics` are what the member reads (the coordinator's assignors use them).
    Join {
        member: Option<MemberId>,
        topics: Vec<String>,
        assign: AssignBy,
        /// A first join (no id) is only given an id (`GroupAnswer::MemberIdRequired`), and the
        /// client joins again with it (Kafka's KIP-394, JoinGroup v4 on). A join without an id
        /// that the network repeats or delivers late then adds no member: without this, each
        /// such copy was a member of its own that no client heartbeats for, and the group
        /// rebalanced once to take it in and again when its session ran out.
        #[serde(default)]
        require_known_member_id: bool,
    },
    /// Ask for this member's assignment in `generation`; answered once the generation is stored
    /// (and, when the leader assigns, once the leader's Sync brought the assignment).
    /// `assignments` is the leader's assignment for every member (opaque bytes), empty from
    /// every other member and in groups the coordinator assigns.
    Sync {
        member: MemberId,
        generation: Generation,
        assignments: Vec<(MemberId, Vec<u8>)>,
    },
    Heartbeat {
        member: MemberId,
        generation: Generation,
    },
    Leave {
        member: MemberId,
    },
    /// Commit `offset` (the next offset to read) for `tp`. Answered once the commit record is
    /// committed in `__consumer_offsets` under the configured durability. An empty `member`
    /// commits outside any generation (a Kafka consumer that reads with `assign`, generation
    /// -1): accepted only while the group has no members, so it cannot overwrite a live
    /// member's progress. `metadata` is the client's own string, kept with the offset and given
    /// back by `FetchOffset` (at most `MAX_COMMIT_METADATA` bytes).
    Commit {
        member: MemberId,
        generation: Generation,
        tp: TopicPartition,
        offset: Offset,
        metadata: String,
    },
    /// The group's committed offset for `tp`.
    FetchOffset {
        tp: TopicPartition,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupMessage {
    pub group: String,
    /// Chosen by the client; echoed in the response so a late answer is not taken for a new one.
    pub correlation: u64,
    pub request: GroupRequest,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupAnswer {
    Coordinator(BrokerId),
    Joined {
        member: MemberId,
        generation: Generation,
        /// `Some` in groups whose leader assigns.
        leader: Option<LeaderJoin>,
    },
    /// This member's share: `partitions` when the coordinator assigns, `data` (the leader's
    /// opaque bytes for this member) when the leader does.
    Assignment {
        generation: Generation,
        partitions: Vec<TopicPartition>,
        data: Vec<u8>,
    },
    /// A first join asked for an id (`require_known_member_id`): this is it, to join with. The
    /// coordinator holds it as pending (not a member: it takes no part in a rebalance) until the
    /// join with it arrives or a session timeout passes. Kafka's MEMBER_ID_REQUIRED error.
    MemberIdRequired {
        member: MemberId,
    },
    HeartbeatOk,
    Left,
    Committed,
    /// The committed offset (`None`: nothing committed) and the metadata committed with it.
    Offset {
        offset: Option<Offset>,
        metadata: String,
    },
}

/// The longest commit metadata a coordinator keeps, in bytes (Kafka's default
/// `offset.metadata.max.bytes`); a longer one is refused with `OffsetMetadataTooLarge`.
pub const MAX_COMMIT_METADATA: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupResponse {
    pub group: String,
    pub correlation: u64,
    pub result: Result<GroupAnswer, ErrorCode>,
}

/// The key of a record in `__consumer_offsets`. Compaction keeps the latest record per key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OffsetsKey {
    /// The group's committed offset for one partition.
    Offset { group: String, tp: TopicPartition },
    /// The group's latest generation: a new coordinator continues from the last one stored. A
    /// generation handed out but not yet stored when its coordinator failed can be handed out
    /// again; members are fenced by member id too, and ids name the coordinator's leader epoch.
    Group { group: String },
    /// A read barrier: an offset fetch is answered once the barrier appended after it commits.
    /// A coordinator deposed without knowing it cannot commit anything, so it cannot answer
    /// from a cache a newer coordinator has moved past. Replay and compaction skip it.
    Barrier { group: String },
}

/// The value of a record in `__consumer_offsets`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OffsetsValue {
    Offset {
        offset: Offset,
        /// Who committed it, for reading the log by eye.
        member: MemberId,
        generation: Generation,
        /// The client's commit metadata; left out of the record when empty (so records from
        /// before it existed read the same).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        metadata: String,
    },
    Group {
        generation: Generation,
    },
    /// The value of a `Barrier` record (not empty, so no reader takes it for a tombstone).
    Barrier,
}

impl OffsetsKey {
    /// The `__consumer_offsets` record of this key with `value`.
    pub fn record(&self, value: &OffsetsValue) -> Record {
        Record::keyed(self.encode(), value.encode())
    }

    /// The key and the value of a `__consumer_offsets` record, each `None` where it does not
    /// decode (a record this version does not understand).
    pub fn read(record: &Record) -> (Option<OffsetsKey>, Option<OffsetsValue>) {
        let key = record.key.as_deref().and_then(OffsetsKey::decode);
        (key, record.value.as_deref().and_then(OffsetsValue::decode))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl OffsetsValue {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Which client a waiting group request came from.
pub type Client = NodeId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values of "".hashCode(), "a".hashCode(), "hello".hashCode() in Java.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // "polygenelubricants".hashCode() is Integer.MIN_VALUE in Java: abs() gives 0 in Kafka.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(group_partition("polygenelubricants", 50), 0);
        assert_eq!(group_partition("hello", 50), 99_162_322 % 50);
    }

    #[test]
    fn offsets_records_round_trip() {
        let k = OffsetsKey::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 1),
        };
        assert_eq!(OffsetsKey::decode(&k.encode()), Some(k));
        assert_eq!(OffsetsKey::decode(b"not json"), None);
    }

    #[test]
    fn offset_records_without_metadata_read_and_write_as_before_it_existed() {
        let before = br#"{"Offset":{"offset":7,"member":"m","generation":2}}"#;
        let value = OffsetsValue::decode(before).expect("a record from before");
        assert_eq!(
            value,
            OffsetsValue::Offset {
                offset: 7,
                member: "m".into(),
                generation: 2,
                metadata: String::new(),
            }
        );
        assert_eq!(value.encode(), before.to_vec());
        let with = OffsetsValue::Offset {
            offset: 7,
            member: "m".into(),
            generation: 2,
            metadata: "md".into(),
        };
        assert_eq!(OffsetsValue::decode(&with.encode()), Some(with));
    }
}
