//! Walks a request's bytes along its schema before the crate decodes it, so that every count
//! and length the request states is backed by bytes that are there.
//!
//! The crate's decoder reserves an array's stated count before reading its elements: a 24-byte
//! Produce request claiming 2^31 topics made it ask for 200 GB, and the process aborted. This
//! walk reads nothing into memory; it steps over each field (an array element by element) and
//! fails as soon as the bytes run out, so after it passes every array holds as many elements as
//! it claims, and the decoder allocates in proportion to the request's real size. It is a
//! bounds check, not a codec: the values come from the crate.

use kafka_protocol::messages::ApiKey;

/// A field of a request, present in versions `from..=to`.
struct Field {
    from: i16,
    to: i16,
    kind: Kind,
}

enum Kind {
    Fixed(usize),
    /// A string (nullable or not; same wire shape).
    Str,
    /// Bytes (records).
    Bytes,
    /// An array of structs (each followed by its tagged fields when flexible).
    Array(&'static [Field]),
    /// An array of fixed-size numbers (no tagged fields per element).
    Numbers(usize),
    /// An array of strings (no tagged fields per element).
    Strings,
}

const fn f(from: i16, to: i16, kind: Kind) -> Field {
    Field { from, to, kind }
}

const ALL: i16 = i16::MAX;
use Kind::*;

const PRODUCE_PARTITION: &[Field] = &[f(0, ALL, Fixed(4)), f(0, ALL, Bytes)];
const PRODUCE_TOPIC: &[Field] = &[
    f(0, 12, Str),
    f(13, ALL, Fixed(16)),
    f(0, ALL, Array(PRODUCE_PARTITION)),
];
const PRODUCE: &[Field] = &[
    f(3, ALL, Str),
    f(0, ALL, Fixed(2)),
    f(0, ALL, Fixed(4)),
    f(0, ALL, Array(PRODUCE_TOPIC)),
];

const FETCH_PARTITION: &[Field] = &[
    f(0, ALL, Fixed(4)),
    f(9, ALL, Fixed(4)),
    f(0, ALL, Fixed(8)),
    f(12, ALL, Fixed(4)),
    f(5, ALL, Fixed(8)),
    f(0, ALL, Fixed(4)),
];
const FETCH_TOPIC: &[Field] = &[
    f(0, 12, Str),
    f(13, ALL, Fixed(16)),
    f(0, ALL, Array(FETCH_PARTITION)),
];
const FORGOTTEN: &[Field] = &[f(7, 12, Str), f(13, ALL, Fixed(16)), f(7, ALL, Numbers(4))];
const FETCH: &[Field] = &[
    f(0, 14, Fixed(4)),
    f(0, ALL, Fixed(4)),
    f(0, ALL, Fixed(4)),
    f(3, ALL, Fixed(4)),
    f(4, ALL, Fixed(1)),
    f(7, ALL, Fixed(4)),
    f(7, ALL, Fixed(4)),
    f(0, ALL, Array(FETCH_TOPIC)),
    f(7, ALL, Array(FORGOTTEN)),
    f(11, ALL, Str),
];

const LIST_PARTITION: &[Field] = &[
    f(0, ALL, Fixed(4)),
    f(4, ALL, Fixed(4)),
    f(0, ALL, Fixed(8)),
    f(0, 0, Fixed(4)),
];
const LIST_TOPIC: &[Field] = &[f(0, ALL, Str), f(0, ALL, Array(LIST_PARTITION))];
const LIST_OFFSETS: &[Field] = &[
    f(0, ALL, Fixed(4)),
    f(2, ALL, Fixed(1)),
    f(0, ALL, Array(LIST_TOPIC)),
    f(10, ALL, Fixed(4)),
];

const METADATA_TOPIC: &[Field] = &[f(10, ALL, Fixed(16)), f(0, ALL, Str)];
const METADATA: &[Field] = &[
    f(0, ALL, Array(METADATA_TOPIC)),
    f(4, ALL, Fixed(1)),
    f(8, 10, Fixed(1)),
    f(8, ALL, Fixed(1)),
];

const API_VERSIONS: &[Field] = &[f(3, ALL, Str), f(3, ALL, Str)];

const INIT_PRODUCER_ID: &[Field] = &[
    f(0, ALL, Str),
    f(0, ALL, Fixed(4)),
    f(3, ALL, Fixed(8)),
    f(3, ALL, Fixed(2)),
];

const FIND_COORDINATOR: &[Field] = &[f(0, 3, Str), f(1, ALL, Fixed(1)), f(4, ALL, Strings)];

const JOIN_PROTOCOL: &[Field] = &[f(0, ALL, Str), f(0, ALL, Bytes)];
const JOIN_GROUP: &[Field] = &[
    f(0, ALL, Str),
    f(0, ALL, Fixed(4)),
    f(1, ALL, Fixed(4)),
    f(0, ALL, Str),
    f(5, ALL, Str),
    f(0, ALL, Str),
    f(0, ALL, Array(JOIN_PROTOCOL)),
    f(8, ALL, Str),
];

const SYNC_ASSIGNMENT: &[Field] = &[f(0, ALL, Str), f(0, ALL, Bytes)];
const SYNC_GROUP: &[Field] = &[
    f(0, ALL, Str),
    f(0, ALL, Fixed(4)),
    f(0, ALL, Str),
    f(3, ALL, Str),
    f(5, ALL, Str),
    f(5, ALL, Str),
    f(0, ALL, Array(SYNC_ASSIGNMENT)),
];

const HEARTBEAT: &[Field] = &[
    f(0, ALL, Str),
    f(0, ALL, Fixed(4)),
    f(0, ALL, Str),
    f(3, ALL, Str),
];

const LEAVE_MEMBER: &[Field] = &[f(0, ALL, Str), f(0, ALL, Str), f(5, ALL, Str)];
const LEAVE_GROUP: &[Field] = &[f(0, ALL, Str), f(0, 2, Str), f(3, ALL, Array(LEAVE_MEMBER))];

const COMMIT_PARTITION: &[Field] = &[
    f(0, ALL, Fixed(4)),
    f(0, ALL, Fixed(8)),
    f(6, ALL, Fixed(4)),
    f(1, 1, Fixed(8)),
    f(0, ALL, Str),
];
const COMMIT_TOPIC: &[Field] = &[f(0, ALL, Str), f(0, ALL, Array(COMMIT_PARTITION))];
const OFFSET_COMMIT: &[Field] = &[
    f(0, ALL, Str),
    f(1, ALL, Fixed(4)),
    f(1, ALL, Str),
    f(7, ALL, Str),
    f(2, 4, Fixed(8)),
    f(0, ALL, Array(COMMIT_TOPIC)),
];

const FETCH_OFFSETS_TOPIC: &[Field] = &[f(0, ALL, Str), f(0, ALL, Numbers(4))];
const FETCH_OFFSETS_GROUP: &[Field] = &[
    f(8, ALL, Str),
    f(9, ALL, Str),
    f(9, ALL, Fixed(4)),
    f(8, ALL, Array(FETCH_OFFSETS_TOPIC)),
];
const OFFSET_FETCH: &[Field] = &[
    f(0, 7, Str),
    f(0, 7, Array(FETCH_OFFSETS_TOPIC)),
    f(8, ALL, Array(FETCH_OFFSETS_GROUP)),
    f(7, ALL, Fixed(1)),
];

const CREATE_ASSIGNMENT: &[Field] = &[f(0, ALL, Fixed(4)), f(0, ALL, Numbers(4))];
const CREATE_CONFIG: &[Field] = &[f(0, ALL, Str), f(0, ALL, Str)];
const CREATE_TOPIC: &[Field] = &[
    f(0, ALL, Str),
    f(0, ALL, Fixed(4)),
    f(0, ALL, Fixed(2)),
    f(0, ALL, Array(CREATE_ASSIGNMENT)),
    f(0, ALL, Array(CREATE_CONFIG)),
];
const CREATE_TOPICS: &[Field] = &[
    f(0, ALL, Array(CREATE_TOPIC)),
    f(0, ALL, Fixed(4)),
    f(1, ALL, Fixed(1)),
];

/// The schema of `key`'s request body and the first version in the flexible encoding (compact
/// lengths, tagged fields); `None` for APIs we do not serve.
fn schema(key: ApiKey) -> Option<(&'static [Field], i16)> {
    Some(match key {
        ApiKey::Produce => (PRODUCE, 9),
        ApiKey::Fetch => (FETCH, 12),
        ApiKey::ListOffsets => (LIST_OFFSETS, 6),
        ApiKey::Metadata => (METADATA, 9),
        ApiKey::ApiVersions => (API_VERSIONS, 3),
        ApiKey::InitProducerId => (INIT_PRODUCER_ID, 2),
        ApiKey::FindCoordinator => (FIND_COORDINATOR, 3),
        ApiKey::JoinGroup => (JOIN_GROUP, 6),
        ApiKey::SyncGroup => (SYNC_GROUP, 4),
        ApiKey::Heartbeat => (HEARTBEAT, 4),
        ApiKey::LeaveGroup => (LEAVE_GROUP, 4),
        ApiKey::OffsetCommit => (OFFSET_COMMIT, 8),
        ApiKey::OffsetFetch => (OFFSET_FETCH, 6),
        ApiKey::CreateTopics => (CREATE_TOPICS, 5),
        _ => return None,
    })
}

/// Checks a whole request frame (header and body) of `key` at `version`; returns how many bytes
/// follow the body (ignored, as Kafka's brokers ignore them; the tests expect none).
pub fn check(key: ApiKey, version: i16, frame: &[u8]) -> Result<usize, String> {
    let Some((fields, flexible_from)) = schema(key) else {
        return Err(format!("{key:?} is not served"));
    };
    let flexible = version >= flexible_from;
    let mut w = Walk { b: frame, flexible };
    // Header: api key, version, correlation id, client id (always an i16-length string), and
    // in the flexible header (v2) tagged fields.
    w.take(8)?;
    w.plain_string()?;
    if flexible {
        w.tags()?;
    }
    w.fields(fields, version)?;
    Ok(w.b.len())
}

struct Walk<'a> {
    b: &'a [u8],
    flexible: bool,
}

impl Walk<'_> {
    fn take(&mut self, n: usize) -> Result<(), String> {
        if n > self.b.len() {
            return Err(format!("{n} bytes stated, {} left", self.b.len()));
        }
        self.b = &self.b[n..];
        Ok(())
    }

    fn int(&mut self, n: usize) -> Result<i64, String> {
        let bytes = self.b.get(..n).ok_or("request ends inside a length")?;
        let v = bytes.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b));
        self.b = &self.b[n..];
        // Sign-extend.
        let shift = 64 - 8 * n as u32;
        Ok((v << shift) >> shift)
    }

    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *self.b.get(i).ok_or("request ends inside a varint")?;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.b = &self.b[i + 1..];
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    /// A length: `None` for null. Compact lengths are stored plus one.
    fn length(&mut self, plain_bytes: usize) -> Result<Option<usize>, String> {
        let n = if self.flexible {
            self.uvarint()? as i64 - 1
        } else {
            self.int(plain_bytes)?
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(format!("negative length {n}")),
            n => Ok(Some(n as usize)),
        }
    }

    fn plain_string(&mut self) -> Result<(), String> {
        match self.int(2)? {
            -1 => Ok(()),
            n if n < 0 => Err(format!("negative length {n}")),
            n => self.take(n as usize),
        }
    }

    fn tags(&mut self) -> Result<(), String> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.take(usize::try_from(size).map_err(|_| "tag too large")?)?;
        }
        Ok(())
    }

    fn fields(&mut self, fields: &[Field], version: i16) -> Result<(), String> {
        for field in fields {
            if !(field.from..=field.to).contains(&version) {
                continue;
            }
            match &field.kind {
                Fixed(n) => self.take(*n)?,
                Str => {
                    if let Some(n) = self.length(2)? {
                        self.take(n)?;
                    }
                }
                Bytes => {
                    if let Some(n) = self.length(4)? {
                        self.take(n)?;
                    }
                }
                Strings => {
                    let count = self.length(4)?.unwrap_or(0);
                    for _ in 0..count {
                        if let Some(n) = self.length(2)? {
                            self.take(n)?;
                        }
                    }
                }
                Numbers(size) => {
                    let count = self.length(4)?.unwrap_or(0);
                    self.take(count.checked_mul(*size).ok_or("array too large")?)?;
                }
                Array(elements) => {
                    let count = self.length(4)?.unwrap_or(0);
                    for _ in 0..count {
                        self.fields(elements, version)?;
                    }
                }
            }
        }
        if self.flexible {
            self.tags()?;
        }
        Ok(())
    }
}
