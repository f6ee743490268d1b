//! One frame format for the network and the disk: `[u32 LE payload length][u32 LE crc32c of the
//! payload][payload: postcard bytes]`. The checksum catches bit flips on disk and corruption on
//! the wire; the length lets a reader tell a torn tail (fewer bytes than declared) from a
//! complete frame.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub const HEADER: usize = 8;
/// Larger frames are refused: a length this big is corruption, not data.
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame at byte {at} declares {len} bytes, more than the {MAX_FRAME}-byte limit")]
    TooLarge { at: u64, len: usize },
    #[error(
        "frame at byte {at}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    Checksum { at: u64, stored: u32, computed: u32 },
    #[error("frame at byte {at}: undecodable payload: {detail}")]
    Payload { at: u64, detail: String },
    #[error(
        "frame at byte {at}: cut short ({need} bytes declared with its header, {have} present)"
    )]
    Truncated { at: u64, need: usize, have: usize },
}

/// Encodes one value as a frame. Our message and disk types always serialize; a failure is a
/// bug in a type definition, not bad input.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends one value's frame to `out`, serialized in place behind its header (no intermediate
/// payload buffer to copy: records are most of a broker's frames, and copying each one again
/// showed in profiles).
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    *out = match postcard::to_extend(value, std::mem::take(out)) {
        Ok(buf) => buf,
        Err(e) => panic!("a seedlog type failed to serialize: {e}"),
    };
    let payload = &out[start + HEADER..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + HEADER].copy_from_slice(&crc);
}

/// Where the frame starting at `at` ends, or why it cannot be read.
enum Peek {
    Complete { end: usize },
    Incomplete { need: usize },
    Bad(FrameError),
}

fn peek(bytes: &[u8], at: usize, base: u64) -> Peek {
    let rest = &bytes[at..];
    if rest.len() < HEADER {
        return Peek::Incomplete { need: HEADER };
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if len > MAX_FRAME {
        return Peek::Bad(FrameError::TooLarge {
            at: base + at as u64,
            len,
        });
    }
    if rest.len() < HEADER + len {
        return Peek::Incomplete { need: HEADER + len };
    }
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let computed = crc32c::crc32c(&rest[HEADER..HEADER + len]);
    if stored != computed {
        return Peek::Bad(FrameError::Checksum {
            at: base + at as u64,
            stored,
            computed,
        });
    }
    Peek::Complete {
        end: at + HEADER + len,
    }
}

fn decode_payload<T: DeserializeOwned>(frame: &[u8], at: u64) -> Result<T, FrameError> {
    postcard::from_bytes(&frame[HEADER..]).map_err(|e| FrameError::Payload {
        at,
        detail: e.to_string(),
    })
}

/// Decodes a byte stream (a TCP connection) frame by frame.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the undecoded bytes in `buf`; consumed bytes are dropped in bulk, not per frame.
    start: usize,
    /// Stream position of `buf[start]`, for error messages.
    base: u64,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` if more bytes are needed. After an error the stream is
    /// unusable (frame boundaries are lost) and should be closed.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let pending = &self.buf[self.start..];
        match peek(pending, 0, self.base) {
            Peek::Incomplete { .. } => Ok(None),
            Peek::Bad(e) => Err(e),
            Peek::Complete { end } => {
                let value = decode_payload(&pending[..end], self.base);
                self.start += end;
                self.base += end as u64;
                value.map(Some)
            }
        }
    }
}

/// The result of reading a whole file of frames (disk recovery).
#[derive(Debug)]
pub struct Scan<T> {
    pub values: Vec<T>,
    /// Bytes from the start that hold complete, valid frames.
    pub valid_len: usize,
    pub stop: Option<ScanStop>,
}

/// Why a scan stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// The last frame is cut short or damaged and nothing follows it: what a crash in the middle
    /// of a write leaves behind.
    TornTail { at: u64, detail: String },
    /// A damaged frame with data after it: the disk corrupted bytes that were once good.
    Corrupt { at: u64, error: FrameError },
}

/// Reads every valid frame from the start of `bytes`.
pub fn scan<T: DeserializeOwned>(bytes: &[u8]) -> Scan<T> {
    let mut values = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let error = match peek(bytes, at, 0) {
            Peek::Complete { end } => match decode_payload(&bytes[at..end], at as u64) {
                Ok(v) => {
                    values.push(v);
                    at = end;
                    continue;
                }
                // The checksum holds, so these bytes were written whole: a format problem,
                // never a torn write.
                Err(error) => Err(error),
            },
            // A torn write leaves a short or damaged last frame; an absurd length is not that.
            Peek::Bad(error @ FrameError::TooLarge { .. }) => Err(error),
            Peek::Bad(error) => Ok(error),
            Peek::Incomplete { need } => Ok(FrameError::Truncated {
                at: at as u64,
                need,
                have: bytes.len() - at,
            }),
        };
        // A damaged frame is a torn tail only if nothing valid follows it; a valid frame after
        // it means bytes that were once good went bad (a flipped length bit can make a frame
        // in the middle look cut short).
        let stop = match error {
            Ok(error) if !valid_frame_after::<T>(bytes, at + 1) => ScanStop::TornTail {
                at: at as u64,
                detail: error.to_string(),
            },
            Ok(error) | Err(error) => ScanStop::Corrupt {
                at: at as u64,
                error,
            },
        };
        return Scan {
            values,
            valid_len: at,
            stop: Some(stop),
        };
    }
    Scan {
        values,
        valid_len: at,
        stop: None,
    }
}

/// Whether a complete, decodable frame starts anywhere at or after `from`.
fn valid_frame_after<T: DeserializeOwned>(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len()).any(|i| match peek(bytes, i, 0) {
        Peek::Complete { end } => decode_payload::<T>(&bytes[i..end], i as u64).is_ok(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(values: &[Vec<u8>]) -> Vec<u8> {
        values.iter().flat_map(encode).collect()
    }

    #[test]
    fn frames_encoded_in_place_are_the_format_back_to_back() {
        let values = vec![b"one".to_vec(), vec![7; 300], vec![]];
        let mut appended = b"prefix".to_vec();
        for v in &values {
            encode_into(v, &mut appended);
        }
        assert_eq!(&appended[..6], b"prefix");
        assert_eq!(appended[6..], stream(&values)[..]);
        // The format: payload length, CRC-32C of the payload, the postcard payload.
        let payload = postcard::to_allocvec(&values[1]).expect("serializes");
        let frame = encode(&values[1]);
        assert_eq!(frame[..4], (payload.len() as u32).to_le_bytes());
        assert_eq!(frame[4..HEADER], crc32c::crc32c(&payload).to_le_bytes());
        assert_eq!(frame[HEADER..], payload[..]);
    }

    #[test]
    fn round_trip_through_the_stream_decoder_in_small_pieces() {
        let values = vec![b"a".to_vec(), vec![], b"hello".to_vec()];
        let bytes = stream(&values);
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            d.push(chunk);
            while let Some(v) = d.next_frame::<Vec<u8>>().expect("valid stream") {
                out.push(v);
            }
        }
        assert_eq!(out, values);
    }

    #[test]
    fn torn_tail_and_middle_corruption_are_told_apart() {
        let values = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let bytes = stream(&values);
        // Cut in the middle of the last frame: a torn tail.
        let cut = &bytes[..bytes.len() - 2];
        let s = scan::<Vec<u8>>(cut);
        assert_eq!(s.values, values[..2].to_vec());
        assert!(
            matches!(s.stop, Some(ScanStop::TornTail { .. })),
            "{:?}",
            s.stop
        );
        // A flipped bit in the first frame's payload, with good frames after it: corruption.
        let mut flipped = bytes.clone();
        flipped[HEADER + 1] ^= 0x10;
        let s = scan::<Vec<u8>>(&flipped);
        assert!(s.values.is_empty());
        match s.stop {
            Some(ScanStop::Corrupt {
                at: 0,
                error: FrameError::Checksum { .. },
            }) => {}
            other => panic!("expected a checksum error at 0, got {other:?}"),
        }
        // A flipped bit in the last frame's payload: indistinguishable from a torn write.
        let mut last = bytes.clone();
        let n = last.len();
        last[n - 1] ^= 1;
        let s = scan::<Vec<u8>>(&last);
        assert_eq!(s.values.len(), 2);
        assert!(matches!(s.stop, Some(ScanStop::TornTail { .. })));
    }

    #[test]
    fn a_flipped_length_bit_in_the_middle_is_corruption_not_a_torn_tail() {
        let values = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let mut bytes = stream(&values);
        // The first frame now declares ~16 MiB minus a bit: past the end of the file, as a torn
        // write would look, but valid frames follow it.
        bytes[2] ^= 0x80;
        let s = scan::<Vec<u8>>(&bytes);
        assert!(s.values.is_empty());
        match s.stop {
            Some(ScanStop::Corrupt {
                at: 0,
                error: FrameError::Truncated { .. },
            }) => {}
            other => panic!("expected corruption at 0, got {other:?}"),
        }
    }

    #[test]
    fn absurd_lengths_are_refused() {
        let mut bytes = (u32::MAX).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 12]);
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert!(matches!(
            d.next_frame::<Vec<u8>>(),
            Err(FrameError::TooLarge { at: 0, .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_yield_only_encoded_values(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = stream(&values);
            if !bytes.is_empty() {
                let i = flip.index(bytes.len());
                bytes[i] ^= 0x04;
                bytes.truncate(cut.index(bytes.len()) + 1);
            }
            bytes.extend_from_slice(&garbage);
            let s = scan::<Vec<u8>>(&bytes);
            for v in &s.values {
                prop_assert!(values.contains(v));
            }
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            while let Ok(Some(v)) = d.next_frame::<Vec<u8>>() {
                prop_assert!(values.contains(&v));
            }
        }
    }
}
