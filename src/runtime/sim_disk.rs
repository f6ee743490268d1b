//! `SimDisk`: the simulator's disk. The harness owns it (a clone of the handle), so it outlives
//! the node process it belongs to, and keeps *durable* bytes apart from *pending* writes (the
//! page cache). A process crash keeps pending writes (the kernel still has them, and a restarted
//! node reads them back); a power loss drops them, keeps a prefix, or tears the last one. Bit
//! flips go into the durable bytes, where recovery's checksums find them.
//!
//! Syncs take time: `start_sync` marks the writes made so far and returns a job that, after a
//! latency, makes exactly those durable. Meanwhile the node goes on (deliveries, timers, more
//! writes), and a crash or power loss before the job completes finds them still pending. The
//! latency of each sync is drawn from a splitmix64 stream the harness seeds (`SyncLatency`), so
//! a run stays a function of its seed; a stall (the `slow-disk` fault) adds to every sync that
//! starts while it lasts.

use super::disk::{replay, CorruptionPolicy, Disk, DiskError, Recovered, SyncJob};
use super::frame::encode;
use crate::node::DiskOp;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long syncs take: uniform in `min_ms..=max_ms`, drawn per sync from `seed`'s stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncLatency {
    pub min_ms: u64,
    pub max_ms: u64,
    pub seed: u64,
}

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
    /// Writes not yet durable, oldest first; `pending[0]` is write number `pending_base`.
    pending: VecDeque<Vec<u8>>,
    pending_base: u64,
    /// Bumped when pending writes are dropped or cut (power loss, recovery): a sync job started
    /// before then covers writes that are gone, and does nothing.
    generation: u64,
    latency: SyncLatency,
    /// splitmix64 state of the latency draws.
    rng: u64,
    /// Added to every sync that starts while set (the `slow-disk` fault).
    stall_ms: u64,
    /// Syncs started and not yet completed or abandoned.
    outstanding: u64,
    /// Syncs that started during a stall.
    stalled: u64,
    /// A power loss or a flipped bit changed the disk since its node last recovered from it, or
    /// a restart recovered from it and the new incarnation has not yet taken the old one's place
    /// (`node_installed`): the node's memory and the disk need not agree.
    changed_under_node: bool,
}

impl State {
    /// Makes writes before number `barrier` durable.
    fn make_durable_through(&mut self, barrier: u64) {
        while self.pending_base < barrier {
            let Some(write) = self.pending.pop_front() else {
                break;
            };
            self.durable.extend_from_slice(&write);
            self.pending_base += 1;
        }
    }

    /// Takes the pending writes out (they were lost, or cut), and abandons syncs in flight.
    fn take_pending(&mut self) -> VecDeque<Vec<u8>> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_base += pending.len() as u64;
        self.generation += 1;
        self.outstanding = 0;
        pending
    }

    fn next_latency_ms(&mut self) -> u64 {
        let SyncLatency { min_ms, max_ms, .. } = self.latency;
        let span = max_ms.saturating_sub(min_ms) + 1;
        min_ms + splitmix64(&mut self.rng) % span + self.stall_ms
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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

    /// Syncs take `latency` from now on (zero latency until set).
    pub fn with_latency(self, latency: SyncLatency) -> Self {
        {
            let mut s = self.state();
            s.latency = latency;
            s.rng = latency.seed;
        }
        self
    }

    /// Every sync that starts from now until `stall(0)` takes `extra_ms` longer.
    pub fn stall(&self, extra_ms: u64) {
        self.state().stall_ms = extra_ms;
    }

    /// Syncs started and not completed: the process dying now abandons them.
    pub fn outstanding_syncs(&self) -> u64 {
        self.state().outstanding
    }

    /// Syncs that started while the disk was stalled.
    pub fn stalled_syncs(&self) -> u64 {
        self.state().stalled
    }

    /// The process died; the page cache survives, so nothing changes on the disk. Syncs it had
    /// started die with it: what they had not made durable stays pending.
    pub fn crash_process(&self) {
        let mut s = self.state();
        s.generation += 1;
        s.outstanding = 0;
    }

    /// Returns how many unsynced writes were lost or torn.
    pub fn power_loss(&self, mode: PowerLoss) -> usize {
        let mut s = self.state();
        s.changed_under_node = true;
        let pending = s.take_pending();
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
        s.changed_under_node = true;
        s.durable[(bit / 8) as usize] ^= 1 << (bit % 8);
        Some(bit / 8)
    }

    /// The node recovered from this disk now runs in place of the one before: its memory is
    /// what the disk holds again.
    pub fn node_installed(&self) {
        self.state().changed_under_node = false;
    }

    /// What a node recovering now would read (the disk overlaid with the page cache), replayed
    /// without changing anything; `None` once a power loss or a flipped bit has changed the disk
    /// under its running node (until a node recovered from it runs: `node_installed`). A harness
    /// compares it with the node's memory: they must agree whenever this answers.
    pub fn image_under_node(&self) -> Option<Result<Recovered, DiskError>> {
        let s = self.state();
        if s.changed_under_node {
            return None;
        }
        let mut visible = s.durable.clone();
        for w in &s.pending {
            visible.extend_from_slice(w);
        }
        Some(replay(&visible, self.policy, &self.name).map(|(recovered, _)| recovered))
    }

    /// What a node would recover after a power loss that dropped every write not yet synced:
    /// the durable bytes alone, replayed without changing anything. `None`, like
    /// `image_under_node`, once the disk changed under the running node.
    pub fn durable_image(&self) -> Option<Result<Recovered, DiskError>> {
        let s = self.state();
        if s.changed_under_node {
            return None;
        }
        Some(replay(&s.durable, self.policy, &self.name).map(|(recovered, _)| recovered))
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
        self.state().pending.push_back(encode(op));
        Ok(())
    }

    fn start_sync(&mut self) -> SyncJob {
        let (barrier, generation, latency) = {
            let mut s = self.state();
            s.outstanding += 1;
            if s.stall_ms > 0 {
                s.stalled += 1;
            }
            let latency = s.next_latency_ms();
            (
                s.pending_base + s.pending.len() as u64,
                s.generation,
                latency,
            )
        };
        let state = self.state.clone();
        Box::pin(async move {
            if latency > 0 {
                tokio::time::sleep(Duration::from_millis(latency)).await;
            }
            let mut s = super::lock(&state);
            if s.generation == generation {
                s.make_durable_through(barrier);
                s.outstanding = s.outstanding.saturating_sub(1);
            }
            Ok(())
        })
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let mut s = self.state();
        let end = s.pending_base + s.pending.len() as u64;
        s.make_durable_through(end);
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
        // Until the node built from this image replaces the one that crashed.
        s.changed_under_node = true;
        if keep < s.durable.len() {
            s.durable.truncate(keep);
            s.take_pending();
        } else {
            // Pending writes are whole frames: keep those that fit in the valid prefix.
            let mut room = keep - s.durable.len();
            s.pending.retain(|w| {
                let fits = w.len() <= room;
                room = room.saturating_sub(w.len());
                fits
            });
            s.generation += 1;
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

    /// What a running node's disk holds is readable beside it, pending writes included, until a
    /// power loss or a flipped bit changes the disk under the node; the node's recovery from
    /// what is left makes it readable again. Reading it changes nothing.
    #[test]
    fn the_image_under_a_running_node_is_withheld_once_the_disk_changed_under_it() {
        let read = |d: &SimDisk| d.image_under_node().map(|r| leo(&r.expect("replays")));
        for lose in [true, false] {
            let mut d = disk(CorruptionPolicy::Truncate);
            assert_eq!(read(&d), Some(5));
            d.crash_process();
            assert_eq!(read(&d), Some(5), "a process crash changes no byte");
            assert_eq!((d.durable_len() > 0, d.pending_writes()), (true, 3));
            if lose {
                d.power_loss(PowerLoss::DropLast(1));
            } else {
                d.flip_bit_at(12).expect("durable bytes");
            }
            assert_eq!(read(&d), None);
            let recovered = d.recover().expect("recovers");
            assert_eq!(read(&d), None, "not before the recovered node runs");
            d.node_installed();
            assert_eq!(read(&d), Some(leo(&recovered)));
        }
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

    #[tokio::test]
    async fn a_sync_covers_only_the_writes_made_before_it_started() {
        let mut d = SimDisk::new("test", CorruptionPolicy::Refuse);
        d.append(&op(0)).expect("append");
        let job = d.start_sync();
        d.append(&op(1)).expect("append");
        assert_eq!(d.outstanding_syncs(), 1);
        job.await.expect("sync");
        assert_eq!(d.outstanding_syncs(), 0);
        d.power_loss(PowerLoss::DropPending);
        assert_eq!(leo(&d.recover().expect("recover")), 1);
    }

    #[tokio::test]
    async fn a_crash_before_the_sync_completes_abandons_it() {
        // Power loss: the writes the sync was to make durable are gone, and the late job does
        // not bring them back.
        let mut d = SimDisk::new("test", CorruptionPolicy::Refuse);
        d.append(&op(0)).expect("append");
        let job = d.start_sync();
        d.power_loss(PowerLoss::DropPending);
        job.await.expect("sync");
        assert_eq!(leo(&d.recover().expect("recover")), 0);
        // Process crash: the writes stay in the page cache but are not durable.
        let mut d = SimDisk::new("test", CorruptionPolicy::Refuse);
        d.append(&op(0)).expect("append");
        let job = d.start_sync();
        d.crash_process();
        assert_eq!(d.outstanding_syncs(), 0);
        job.await.expect("sync");
        assert_eq!(d.pending_writes(), 1, "still not durable");
    }

    #[tokio::test]
    async fn latency_and_stalls_are_drawn_from_the_seed() {
        let latency = SyncLatency {
            min_ms: 1,
            max_ms: 5,
            seed: 9,
        };
        let draws = |stall: u64| {
            let d = SimDisk::new("test", CorruptionPolicy::Refuse).with_latency(latency);
            d.stall(stall);
            let mut s = d.state();
            (0..20).map(|_| s.next_latency_ms()).collect::<Vec<_>>()
        };
        let a = draws(0);
        assert_eq!(a, draws(0));
        assert!(a.iter().all(|ms| (1..=5).contains(ms)), "{a:?}");
        assert!(a.iter().any(|ms| *ms != a[0]), "{a:?}");
        let stalled = draws(300);
        assert!(stalled.iter().zip(&a).all(|(s, n)| *s == n + 300));
        let mut d = SimDisk::new("test", CorruptionPolicy::Refuse).with_latency(latency);
        d.stall(300);
        let _job = d.start_sync();
        assert_eq!(d.stalled_syncs(), 1);
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
            next_producer_id: 3_000,
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
