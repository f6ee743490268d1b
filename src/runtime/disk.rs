//! The disk a driver carries `Persist`/`Sync` effects to: an append-only log of frames, one per
//! `DiskOp`, from which a restarted node's `Image` is rebuilt.
//!
//! Recovery policy. A damaged *last* frame (cut short, or with a bad checksum and nothing after
//! it) is what a crash in the middle of a write leaves: it is cut off, the cut is reported in
//! `Recovered::note`, and recovery goes on. A damaged frame *followed by more data* means bytes
//! that were once good went bad: under `CorruptionPolicy::Refuse` (the default, and what a real
//! broker does unless told otherwise) recovery fails with the position and reason; under
//! `CorruptionPolicy::Truncate` the log is cut at the damaged frame, as Kafka's log recovery
//! does, and the note says how much was dropped (a replica then re-fetches it from its leader).
//! Nothing is dropped silently.

use super::frame::{scan, FrameError, ScanStop};
use crate::node::{DiskOp, Image};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt data at byte {position} with {after} more bytes after it: {error} (refusing to start; move the file away or allow truncation)")]
    Corrupt {
        path: String,
        position: u64,
        after: u64,
        error: FrameError,
    },
    #[error("{path}: operation {index} cannot be applied to the image rebuilt so far: {detail}")]
    BadOperation {
        path: String,
        index: usize,
        detail: String,
    },
    #[error(
        "{path}: write before recovery (recover() must run first so writes follow valid data)"
    )]
    NotRecovered { path: String },
}

/// What to do with a damaged frame in the middle of the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CorruptionPolicy {
    #[default]
    Refuse,
    Truncate,
}

/// A rebuilt image and what recovery had to do to get it.
#[derive(Debug)]
pub struct Recovered {
    pub image: Image,
    /// Operations replayed.
    pub ops: usize,
    /// Bytes cut off the end of the log (a torn tail, or everything from a corrupt frame on).
    pub dropped_bytes: u64,
    /// What was cut and why, if anything was.
    pub note: Option<String>,
    /// Durable records were cut (corruption truncated under `CorruptionPolicy::Truncate`), not
    /// only a torn tail: the node may lack data it once acknowledged holding.
    pub lost_durable: bool,
}

/// A sync under way: resolves once every append made before it started is durable. Dropping it
/// (the node's process died) abandons it; what it had not made durable is not.
pub type SyncJob = Pin<Box<dyn Future<Output = Result<(), DiskError>> + Send>>;

pub trait Disk {
    /// Writes an operation; it is durable only after a later sync completes.
    fn append(&mut self, op: &DiskOp) -> Result<(), DiskError>;
    /// Starts making every earlier `append` durable, off the caller's path: the returned job
    /// completes later (a simulated latency, or an `fdatasync` on another thread), and the
    /// caller goes on meanwhile. Writes made after the start are not covered.
    fn start_sync(&mut self) -> SyncJob;
    /// Makes every earlier `append` durable before returning (recovery, tools, tests).
    fn sync(&mut self) -> Result<(), DiskError>;
    /// Rebuilds the image from what the disk holds, cutting off a torn tail (and, when allowed,
    /// a corrupt suffix) so that later appends follow valid data.
    fn recover(&mut self) -> Result<Recovered, DiskError>;
}

/// Replays a log's bytes. Returns the image and the number of bytes to keep.
pub(crate) fn replay(
    bytes: &[u8],
    policy: CorruptionPolicy,
    path: &str,
) -> Result<(Recovered, usize), DiskError> {
    let s = scan::<DiskOp>(bytes);
    let dropped = (bytes.len() - s.valid_len) as u64;
    let lost_durable = matches!(s.stop, Some(ScanStop::Corrupt { .. }));
    let note = match s.stop {
        None => None,
        Some(ScanStop::TornTail { at, detail }) => Some(format!(
            "cut a torn tail of {dropped} bytes at byte {at} ({detail})"
        )),
        Some(ScanStop::Corrupt { at, error }) => match policy {
            CorruptionPolicy::Refuse => {
                return Err(DiskError::Corrupt {
                    path: path.to_string(),
                    position: at,
                    after: dropped,
                    error,
                })
            }
            CorruptionPolicy::Truncate => Some(format!(
                "truncated at corrupt data at byte {at} ({error}); {dropped} bytes after it dropped"
            )),
        },
    };
    let mut image = Image::Empty;
    for (index, op) in s.values.iter().enumerate() {
        image.apply(op).map_err(|e| DiskError::BadOperation {
            path: path.to_string(),
            index,
            detail: e.to_string(),
        })?;
    }
    Ok((
        Recovered {
            image,
            ops: s.values.len(),
            dropped_bytes: dropped,
            note,
            lost_durable,
        },
        s.valid_len,
    ))
}
