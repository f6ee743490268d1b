//! `FileDisk`: the real broker's disk, one append-only file of frames (`ops.log`) in the node's
//! data directory. A sync is `fdatasync`; the directory is synced when the file is created, so
//! the file itself survives a power loss. Writes go to the page cache in the caller's step (they
//! are cheap); `start_sync` runs the `fdatasync` on a blocking thread, so the event loop goes on
//! handling messages while the disk works. The driver runs one sync at a time, and each covers
//! every write made before it started: group commit.

use super::disk::{replay, CorruptionPolicy, Disk, DiskError, Recovered, SyncJob};
use super::frame::encode_into;
use crate::node::DiskOp;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LOG_FILE: &str = "ops.log";

pub struct FileDisk {
    path: PathBuf,
    policy: CorruptionPolicy,
    writer: Option<BufWriter<File>>,
    /// A second handle on the same file, for syncs run off the event loop.
    sync_file: Option<Arc<File>>,
    /// Where each operation's frame is encoded before it is written: kept, so an append does
    /// not allocate and grow a buffer of its own.
    scratch: Vec<u8>,
}

impl FileDisk {
    /// Opens (creating if needed) the data directory. Call `recover` before writing.
    pub fn open(dir: &Path, policy: CorruptionPolicy) -> Result<FileDisk, DiskError> {
        let io = |source| DiskError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(LOG_FILE);
        if !path.exists() {
            File::create(&path).map_err(|source| DiskError::Io {
                path: path.display().to_string(),
                source,
            })?;
            // The new directory entry must itself be durable.
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(FileDisk {
            path,
            policy,
            writer: None,
            sync_file: None,
            scratch: Vec::new(),
        })
    }

    fn io_error(&self, source: std::io::Error) -> DiskError {
        DiskError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

impl Disk for FileDisk {
    fn append(&mut self, op: &DiskOp) -> Result<(), DiskError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(DiskError::NotRecovered {
                path: self.path.display().to_string(),
            });
        };
        self.scratch.clear();
        encode_into(op, &mut self.scratch);
        w.write_all(&self.scratch).map_err(|e| DiskError::Io {
            path: self.path.display().to_string(),
            source: e,
        })
    }

    fn start_sync(&mut self) -> SyncJob {
        let path = self.path.display().to_string();
        let io = move |source| DiskError::Io {
            path: path.clone(),
            source,
        };
        // What the buffer holds goes to the kernel now, so the sync below covers it.
        let flushed = match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        };
        let file = self.sync_file.clone();
        Box::pin(async move {
            flushed.map_err(&io)?;
            let Some(file) = file else {
                return Ok(());
            };
            // The simulator has no threads (and never uses real files): sync in place there.
            #[cfg(madsim)]
            let synced = file.sync_data();
            #[cfg(not(madsim))]
            let synced = tokio::task::spawn_blocking(move || file.sync_data())
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            synced.map_err(io)
        })
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let result = w.flush().and_then(|()| w.get_ref().sync_data());
        result.map_err(|e| self.io_error(e))
    }

    fn recover(&mut self) -> Result<Recovered, DiskError> {
        // Anything buffered from before is part of the file we are about to read.
        self.sync()?;
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| self.io_error(e))?;
        let (recovered, keep) = replay(&bytes, self.policy, &self.path.display().to_string())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io_error(e))?;
        if keep < bytes.len() {
            file.set_len(keep as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| self.io_error(e))?;
        }
        let sync_file = file.try_clone().map_err(|e| self.io_error(e))?;
        self.sync_file = Some(Arc::new(sync_file));
        self.writer = Some(BufWriter::new(file));
        Ok(recovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Image;
    use crate::protocol::{LogEntry, Record, TopicPartition};

    fn append_op(offset: u64, value: &str) -> DiskOp {
        DiskOp::Append {
            tp: TopicPartition::new("t", 0),
            entries: vec![LogEntry {
                offset,
                epoch: 1,
                record: Record::keyed("k", value),
                producer: None,
            }],
        }
    }

    fn end_offset(image: &Image) -> u64 {
        match image {
            Image::Broker(b) => b
                .logs
                .get(&TopicPartition::new("t", 0))
                .map_or(0, |l| l.log_end_offset()),
            _ => 0,
        }
    }

    fn written(dir: &Path, n: u64) -> PathBuf {
        let mut d = FileDisk::open(dir, CorruptionPolicy::Refuse).expect("open");
        d.recover().expect("recover empty");
        for i in 0..n {
            d.append(&append_op(i, &format!("v{i}"))).expect("append");
        }
        d.sync().expect("sync");
        dir.join(LOG_FILE)
    }

    #[test]
    fn round_trip_and_appends_after_recovery() {
        let dir = tempfile::tempdir().expect("tempdir");
        written(dir.path(), 3);
        let mut d = FileDisk::open(dir.path(), CorruptionPolicy::Refuse).expect("open");
        let r = d.recover().expect("recover");
        assert_eq!((r.ops, end_offset(&r.image), r.note), (3, 3, None));
        d.append(&append_op(3, "v3")).expect("append");
        d.sync().expect("sync");
        let r = FileDisk::open(dir.path(), CorruptionPolicy::Refuse)
            .and_then(|mut d| d.recover())
            .expect("recover again");
        assert_eq!(end_offset(&r.image), 4);
    }

    #[test]
    fn a_quorum_voters_snapshots_survive_a_restart() {
        use crate::protocol::{MetadataRecord, QuorumEntry, QuorumSnapshot};
        let entry = |broker| QuorumEntry {
            epoch: 1,
            record: MetadataRecord::RegisterBroker { broker, epoch: 1 },
        };
        let snapshot = |end_offset| QuorumSnapshot {
            end_offset,
            last_epoch: 1,
            records: vec![entry(9).record],
        };
        let recovered = |dir: &Path| match FileDisk::open(dir, CorruptionPolicy::Refuse)
            .and_then(|mut d| d.recover())
            .expect("recover")
            .image
        {
            Image::Quorum(q) => q,
            other => panic!("not a voter's image: {other:?}"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut d = FileDisk::open(dir.path(), CorruptionPolicy::Refuse).expect("open");
        d.recover().expect("recover empty");
        let ops = [
            DiskOp::QuorumAppend {
                start: 0,
                entries: vec![entry(0), entry(1), entry(2)],
            },
            DiskOp::QuorumSnapshot {
                snapshot: snapshot(2),
            },
            DiskOp::QuorumAppend {
                start: 3,
                entries: vec![entry(3)],
            },
        ];
        for op in &ops {
            d.append(op).expect("append");
        }
        d.sync().expect("sync");
        // The snapshot replaced the entries below its end; the rest follows it, at the same
        // absolute offsets.
        let q = recovered(dir.path());
        assert_eq!(q.snapshot, Some(snapshot(2)));
        assert_eq!(q.log, vec![entry(2), entry(3)]);
        assert_eq!((q.start_offset(), q.end_offset()), (2, 4));
        // An installed snapshot replaces the whole log, past its end too.
        d.append(&DiskOp::QuorumInstallSnapshot {
            snapshot: snapshot(3),
        })
        .expect("append");
        d.sync().expect("sync");
        let q = recovered(dir.path());
        assert_eq!((q.start_offset(), q.end_offset()), (3, 3));
        assert!(q.log.is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = written(dir.path(), 3);
        let len = std::fs::metadata(&path).expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len - 3))
            .expect("tear");
        let mut d = FileDisk::open(dir.path(), CorruptionPolicy::Refuse).expect("open");
        let r = d.recover().expect("a torn tail is not an error");
        assert_eq!(end_offset(&r.image), 2);
        assert!(
            r.note.as_deref().is_some_and(|n| n.contains("torn tail")),
            "{:?}",
            r.note
        );
        assert!(
            std::fs::metadata(&path).expect("meta").len() < len - 3,
            "the file was cut"
        );
    }

    #[test]
    fn corruption_in_the_middle_is_refused_or_truncated_as_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = written(dir.path(), 3);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[10] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let err = FileDisk::open(dir.path(), CorruptionPolicy::Refuse)
            .and_then(|mut d| d.recover())
            .expect_err("corruption must be refused");
        let msg = err.to_string();
        assert!(
            msg.contains("corrupt data at byte 0") && msg.contains("checksum"),
            "{msg}"
        );
        let r = FileDisk::open(dir.path(), CorruptionPolicy::Truncate)
            .and_then(|mut d| d.recover())
            .expect("truncation allowed");
        assert_eq!(end_offset(&r.image), 0);
        assert!(r.note.as_deref().is_some_and(|n| n.contains("dropped")));
    }

    #[test]
    fn garbage_and_unwritable_directories_get_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(LOG_FILE),
            b"this is not a seedlog file at all",
        )
        .expect("write");
        let err = FileDisk::open(dir.path(), CorruptionPolicy::Refuse)
            .and_then(|mut d| d.recover())
            .expect_err("garbage");
        assert!(err.to_string().contains(LOG_FILE), "{err}");
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").expect("write");
        let err = FileDisk::open(&file.join("sub"), CorruptionPolicy::Refuse)
            .err()
            .expect("a data dir under a file cannot be created");
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
