//! How a `Record` is serialized.
//!
//! Two forms, chosen by the format:
//! - **compact** (postcard: journals, frames, the simulator's trace hash). Records were first
//!   written as `key: Option<bytes>, value: bytes, timestamp, headers: [(string, bytes)]`, and
//!   every journal and frame of that age must still read. A null value or a null header value
//!   would need a tag of its own, so the first byte — the key's option tag, 0 or 1 — carries
//!   flags instead: bit 0 says a key follows (as before), bit 1 says the value is null (and
//!   is then not written at all), bit 2 says the headers hold null values (written as empty,
//!   followed after the headers by the list of their positions). A record with no null in it
//!   is written byte for byte as before, so no trace hash moved with this change.
//! - **readable** (JSON: histories, reports): the plain struct, `null` for a null value; an old
//!   file's values (arrays of numbers) read as non-null.
//!
//! The compact form is a tuple whose length depends on the flags; it relies on the format
//! reading a tuple's elements one by one as asked (postcard does). No other compact format is
//! used on records.

use super::{Header, Record};
use bytes::Bytes;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const HAS_KEY: u8 = 1;
const NULL_VALUE: u8 = 2;
const NULL_HEADER_VALUES: u8 = 4;
/// The most elements a compact record has: flags, key, value, timestamp, headers, null list.
const MOST_ELEMENTS: usize = 6;

#[derive(Serialize)]
struct ReadableRef<'a> {
    key: &'a Option<Bytes>,
    value: &'a Option<Bytes>,
    timestamp: i64,
    headers: &'a [Header],
}

#[derive(Deserialize)]
struct Readable {
    key: Option<Bytes>,
    value: Option<Bytes>,
    timestamp: i64,
    headers: Vec<Header>,
}

/// Headers in the compact form: `(key, value)` pairs, a null value written as empty.
struct CompactHeaders<'a>(&'a [Header]);

impl Serialize for CompactHeaders<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let empty = Bytes::new();
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for h in self.0 {
            seq.serialize_element(&(&h.key, h.value.as_ref().unwrap_or(&empty)))?;
        }
        seq.end()
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return ReadableRef {
                key: &self.key,
                value: &self.value,
                timestamp: self.timestamp,
                headers: &self.headers,
            }
            .serialize(s);
        }
        let nulls: Vec<u32> = (0u32..)
            .zip(&self.headers)
            .filter(|(_, h)| h.value.is_none())
            .map(|(i, _)| i)
            .collect();
        let mut flags = 0;
        if self.key.is_some() {
            flags |= HAS_KEY;
        }
        if self.value.is_none() {
            flags |= NULL_VALUE;
        }
        if !nulls.is_empty() {
            flags |= NULL_HEADER_VALUES;
        }
        let elements = 3
            + usize::from(self.key.is_some())
            + usize::from(self.value.is_some())
            + usize::from(!nulls.is_empty());
        let mut t = s.serialize_tuple(elements)?;
        t.serialize_element(&flags)?;
        if let Some(key) = &self.key {
            t.serialize_element(key)?;
        }
        if let Some(value) = &self.value {
            t.serialize_element(value)?;
        }
        t.serialize_element(&self.timestamp)?;
        t.serialize_element(&CompactHeaders(&self.headers))?;
        if !nulls.is_empty() {
            t.serialize_element(&nulls)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let r = Readable::deserialize(d)?;
            return Ok(Record {
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
                headers: r.headers,
            });
        }
        d.deserialize_tuple(MOST_ELEMENTS, CompactVisitor)
    }
}

struct CompactVisitor;

fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    what: &'static str,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom(format_args!("a record ends before its {what}")))
}

impl<'de> Visitor<'de> for CompactVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record: flags, key, value, timestamp, headers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Record, A::Error> {
        let flags: u8 = next(&mut seq, "flags")?;
        if flags & !(HAS_KEY | NULL_VALUE | NULL_HEADER_VALUES) != 0 {
            return Err(de::Error::custom(format_args!(
                "a record's flags byte is {flags}, which names no known form"
            )));
        }
        let key = match flags & HAS_KEY {
            0 => None,
            _ => Some(next::<Bytes, _>(&mut seq, "key")?),
        };
        let value = match flags & NULL_VALUE {
            0 => Some(next::<Bytes, _>(&mut seq, "value")?),
            _ => None,
        };
        let timestamp = next(&mut seq, "timestamp")?;
        let pairs: Vec<(String, Bytes)> = next(&mut seq, "headers")?;
        let mut headers: Vec<Header> = pairs
            .into_iter()
            .map(|(key, value)| Header {
                key,
                value: Some(value),
            })
            .collect();
        if flags & NULL_HEADER_VALUES != 0 {
            let nulls: Vec<u32> = next(&mut seq, "null header list")?;
            if nulls.is_empty() {
                return Err(de::Error::custom("a record's null header list is empty"));
            }
            for i in nulls {
                match headers.get_mut(i as usize) {
                    Some(h) if h.value.as_ref().is_some_and(Bytes::is_empty) => h.value = None,
                    _ => {
                        return Err(de::Error::custom(format_args!(
                            "a record names header {i} as null, which is not an empty header \
                             of its {}",
                            headers.len()
                        )))
                    }
                }
            }
        }
        Ok(Record {
            key,
            value,
            timestamp,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Record` as it was first declared, with plain `Vec<u8>` bytes and no nulls: every file
    /// and frame written then must read the same now, and records without nulls must be
    /// written as they were (the same files, frames and trace hashes).
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct PlainRecord {
        key: Option<Vec<u8>>,
        value: Vec<u8>,
        timestamp: i64,
        headers: Vec<(String, Vec<u8>)>,
    }

    fn header(key: &str, value: Option<&'static [u8]>) -> Header {
        Header {
            key: key.into(),
            value: value.map(Bytes::from_static),
        }
    }

    #[test]
    fn records_without_nulls_encode_as_they_first_did() {
        let record = Record {
            key: Some(Bytes::from_static(b"key")),
            value: Some((0..=255).collect()),
            timestamp: -5,
            headers: vec![header("h", Some(&[0, 200, 7]))],
        };
        let plain = PlainRecord {
            key: Some(b"key".to_vec()),
            value: (0..=255).collect(),
            timestamp: record.timestamp,
            headers: vec![("h".into(), vec![0, 200, 7])],
        };
        let bytes = postcard::to_stdvec(&record).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&plain).unwrap());
        assert_eq!(postcard::from_bytes::<Record>(&bytes).unwrap(), record);
        let keyless = Record {
            key: None,
            ..record.clone()
        };
        let plain_keyless = PlainRecord { key: None, ..plain };
        let bytes = postcard::to_stdvec(&plain_keyless).unwrap();
        assert_eq!(postcard::to_stdvec(&keyless).unwrap(), bytes);
        assert_eq!(postcard::from_bytes::<Record>(&bytes).unwrap(), keyless);
        // JSON (histories, reports) shows bytes as arrays of numbers, and reads them back.
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"key\":[107,101,121]"), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
    }

    #[test]
    fn null_values_are_kept_apart_from_empty_ones() {
        let null = Record {
            key: Some(Bytes::from_static(b"k")),
            value: None,
            timestamp: 9,
            headers: vec![header("a", None), header("b", Some(b"")), header("c", None)],
        };
        let empty = Record {
            value: Some(Bytes::new()),
            headers: vec![
                header("a", Some(b"")),
                header("b", Some(b"")),
                header("c", Some(b"")),
            ],
            ..null.clone()
        };
        let (null_bytes, empty_bytes) = (
            postcard::to_stdvec(&null).unwrap(),
            postcard::to_stdvec(&empty).unwrap(),
        );
        assert_ne!(null_bytes, empty_bytes);
        assert_eq!(postcard::from_bytes::<Record>(&null_bytes).unwrap(), null);
        assert_eq!(postcard::from_bytes::<Record>(&empty_bytes).unwrap(), empty);
        let json = serde_json::to_string(&null).unwrap();
        assert!(json.contains("\"value\":null"), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), null);
        // Inside a larger value, what follows a record still reads in place.
        let pair = (null.clone(), 77u32, empty.clone());
        let bytes = postcard::to_stdvec(&pair).unwrap();
        assert_eq!(
            postcard::from_bytes::<(Record, u32, Record)>(&bytes).unwrap(),
            pair
        );
    }

    #[test]
    fn bad_flags_and_null_lists_are_refused_by_name() {
        let record = Record {
            key: None,
            value: None,
            timestamp: 1,
            headers: vec![header("a", Some(b"x")), header("b", None)],
        };
        let good = postcard::to_stdvec(&record).unwrap();
        assert_eq!(good[0], NULL_VALUE | NULL_HEADER_VALUES);
        let refused = |bytes: &[u8]| postcard::from_bytes::<Record>(bytes).is_err();
        let mut bad = good.clone();
        bad[0] = 8;
        assert!(refused(&bad), "an unknown flag");
        // The null list ends the frame: [count, index]. Point it at the non-empty header, then
        // past the end.
        let n = good.len();
        assert_eq!(&good[n - 2..], &[1, 1]);
        for index in [0u8, 2] {
            let mut bad = good.clone();
            bad[n - 1] = index;
            assert!(refused(&bad), "null header index {index}");
        }
        let mut empty_list = good.clone();
        empty_list.truncate(n - 1);
        empty_list[n - 2] = 0;
        assert!(refused(&empty_list), "an empty null list");
        assert!(refused(&good[..n - 1]), "a cut frame");
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4).prop_map(Bytes::from))
    }

    proptest! {
        #[test]
        fn every_record_reads_back_as_written(
            key in arb_bytes(),
            value in arb_bytes(),
            timestamp in any::<i64>(),
            headers in proptest::collection::vec(("[a-c]{0,2}", arb_bytes()), 0..4),
        ) {
            let record = Record {
                key,
                value,
                timestamp,
                headers: headers
                    .into_iter()
                    .map(|(key, value)| Header { key, value })
                    .collect(),
            };
            let bytes = postcard::to_stdvec(&record).unwrap();
            prop_assert_eq!(&postcard::from_bytes::<Record>(&bytes).unwrap(), &record);
            let json = serde_json::to_string(&record).unwrap();
            prop_assert_eq!(&serde_json::from_str::<Record>(&json).unwrap(), &record);
        }
    }
}
