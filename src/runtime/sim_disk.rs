//! `SimDisk`: the simulator's disk. The harness owns it (a clone of the handle), so it outlives
//! the node process it belongs to, and keeps *durable* bytes apart from *pending* writes (the
//! page cache). A process crash keeps pending writes (the kernel still has them, and a restarted
//! node reads them back); a power loss drops them, keeps a prefix, or tears the last one. Bit
//! flips go into the durable bytes, where recovery's checksums find them. No randomness inside:
//! the harness passes every choice in.

use super::disk::{replay, CorruptionPolicy, Disk, DiskError, Recovered};
use super::frame::encode;
use crate::node::DiskOp;
use std::sync::{Arc, Mutex, MutexGuard};

/// What of the pending writes reaches the platter when the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerLoss {
    DropPending,
    /// The first `n` pending writes made it.
    KeepPrefix(u64),
    /// All pending writes but the last `n` made it (the flusher was just behind).
    DropLast(u64),
    /// All pending writes but the last made it; of the last, only its first `keep_bytes`.
    TearLast {
        keep_bytes: u64,
    },
}

#[derive(Debug, Default)]
struct State {
    durable: Vec<u8>,
    pending: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
    policy: CorruptionPolicy,
    name: String,
}

impl SimDisk {
    pub fn new(name: impl Into<String>, policy: CorruptionPolicy) -> Self {
        SimDisk {
            state: Arc::default(),
            policy,
            name: name.into(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        super::lock(&self.state)
    }

    /// The process died; the page cache survives, so nothing changes on the disk.
    pub fn crash_process(&self) {}

    /// Returns how many unsynced writes were lost or torn.
    pub fn power_loss(&self, mode: PowerLoss) -> usize {
        let mut s = self.state();
        let pending = std::mem::take(&mut s.pending);
        let n = pending.len();
        let lost = match mode {
            PowerLoss::DropPending => n,
            PowerLoss::KeepPrefix(k) => n.saturating_sub(k as usize),
            PowerLoss::DropLast(k) => n.min(k as usize),
            PowerLoss::TearLast { .. } => n.min(1),
        };
        for (i, write) in pending.into_iter().enumerate() {
            match mode {
                PowerLoss::DropPending => {}
                PowerLoss::KeepPrefix(k) if (i as u64) < k => s.durable.extend_from_slice(&write),
                PowerLoss::KeepPrefix(_) => {}
                PowerLoss::DropLast(k) if ((n - i) as u64) > k => {
                    s.durable.extend_from_slice(&write)
                }
                PowerLoss::DropLast(_) => {}
                PowerLoss::TearLast { .. } if i + 1 < n => s.durable.extend_from_slice(&write),
                PowerLoss::TearLast { keep_bytes } => {
                    let keep = (keep_bytes as usize).min(write.len().saturating_sub(1));
                    s.durable.extend_from_slice(&write[..keep]);
                }
            }
        }
        lost
    }

    /// Flips one durable bit, chosen by `choice` modulo the number of bits; returns the byte
    /// position, or `None` if nothing is durable yet.
    pub fn flip_bit_at(&self, choice: u64) -> Option<u64> {
        let mut s = self.state();
        let bits = s.durable.len() as u64 * 8;
        if bits == 0 {
            return None;
        }
        let bit = choice % bits;
        s.durable[(bit / 8) as usize] ^= 1 << (bit % 8);
        Some(bit / 8)
    }

    pub fn durable_len(&self) -> usize {
        self.state().durable.len()
    }

    pub fn pending_writes(&self) -> usize {
        self.state().pending.len()
    }
}

impl Disk for SimDisk {
    fn append(&mut self, op: &DiskOp) -> Result<(), DiskError> {
        self.state().pending.push(encode(op));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let mut s = self.state();
        let pending = std::mem::take(&mut s.pending);
        for write in pending {
            s.durable.extend_from_slice(&write);
        }
        Ok(())
    }

    fn recover(&mut self) -> Result<Recovered, DiskError> {
        let mut s = self.state();
        // What a restarted process reads: the disk, overlaid with the page cache.
        let mut visible = s.durable.clone();
        for w in &s.pending {
            visible.extend_from_slice(w);
        }
        let (recovered, keep) = replay(&visible, self.policy, &self.name)?;
        if keep < s.durable.len() {
            s.durable.truncate(keep);
            s.pending.clear();
        } else {
            // Pending writes are whole frames: keep those that fit in the valid prefix.
            let mut room = keep - s.durable.len();
            s.pending.retain(|w| {
                let fits = w.len() <= room;
                room = room.saturating_sub(w.len());
                fits
            });
        }
        Ok(recovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ControllerImage, Image};
    use crate::protocol::{LogEntry, Record, TopicPartition};

    fn op(offset: u64) -> DiskOp {
        DiskOp::Append {
            tp: TopicPartition::new("t", 0),
            entries: vec![LogEntry {
                offset,
                epoch: 1,
                record: Record::keyed("k", format!("v{offset}")),
                producer: None,
            }],
        }
    }

    fn leo(r: &Recovered) -> u64 {
        match &r.image {
            Image::Broker(b) => b
                .logs
                .get(&TopicPartition::new("t", 0))
                .map_or(0, |l| l.log_end_offset()),
            _ => 0,
        }
    }

    /// Two synced writes, then three pending.
    fn disk(policy: CorruptionPolicy) -> SimDisk {
        let mut d = SimDisk::new("test", policy);
        d.append(&op(0)).expect("append");
        d.append(&op(1)).expect("append");
        d.sync().expect("sync");
        for i in 2..5 {
            d.append(&op(i)).expect("append");
        }
        d
    }

    #[test]
    fn a_process_crash_keeps_the_page_cache() {
        let mut d = disk(CorruptionPolicy::Refuse);
        d.crash_process();
        assert_eq!(leo(&d.recover().expect("recover")), 5);
        assert_eq!(d.pending_writes(), 3, "still not durable");
    }

    #[test]
    fn power_loss_modes() {
        let cases = [
            (PowerLoss::DropPending, 2, false),
            (PowerLoss::KeepPrefix(2), 4, false),
            (PowerLoss::DropLast(1), 4, false),
            (PowerLoss::DropLast(3), 2, false),
            (PowerLoss::DropLast(9), 2, false),
            (PowerLoss::TearLast { keep_bytes: 5 }, 4, true),
        ];
        for (mode, expected, torn) in cases {
            let mut d = disk(CorruptionPolicy::Refuse);
            d.power_loss(mode);
            let r = d.recover().expect("recover");
            assert_eq!(leo(&r), expected, "{mode:?}");
            assert_eq!(r.note.is_some(), torn, "{mode:?}: {:?}", r.note);
            // Writes after recovery follow valid data.
            d.append(&op(expected)).expect("append");
            d.sync().expect("sync");
            assert_eq!(leo(&d.recover().expect("recover")), expected + 1);
        }
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let mut d = disk(CorruptionPolicy::Refuse);
        d.sync().expect("sync");
        // Bit 20 lies in the first frame's header or payload: corruption with data after it.
        assert_eq!(d.flip_bit_at(20 * 8 + 3), Some(20));
        let err = d.recover().expect_err("refused");
        assert!(err.to_string().contains("checksum"), "{err}");
        let mut d2 = disk(CorruptionPolicy::Truncate);
        d2.sync().expect("sync");
        d2.flip_bit_at(20 * 8 + 3);
        let r = d2.recover().expect("truncated");
        assert_eq!(leo(&r), 0);
        assert!(r.note.expect("reported").contains("dropped"));
    }

    #[test]
    fn the_controller_image_round_trips() {
        let mut d = SimDisk::new("controller", CorruptionPolicy::Refuse);
        let image = ControllerImage {
            next_broker_epoch: 7,
            ..Default::default()
        };
        d.append(&DiskOp::ControllerState(image.clone()))
            .expect("append");
        d.sync().expect("sync");
        assert_eq!(
            d.recover().expect("recover").image,
            Image::Controller(image)
        );
    }
}
