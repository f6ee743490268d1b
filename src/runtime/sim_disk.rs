//! PLACEHOLDER until the disk branch lands: op-level simulated disk.

use super::disk::{Disk, DiskError, Recovered};
use crate::node::{DiskOp, Image};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug)]
pub enum PowerLoss {
    DropPending,
    KeepPrefix(u64),
    TearLast { keep_bytes: u64 },
}

#[derive(Default)]
struct State {
    durable: Vec<DiskOp>,
    pending: Vec<DiskOp>,
}

#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn crash_process(&self) {}
    pub fn power_loss(&self, mode: PowerLoss) {
        let mut s = self.state.lock().unwrap();
        let keep = match mode {
            PowerLoss::DropPending => 0,
            PowerLoss::KeepPrefix(n) => n as usize,
            PowerLoss::TearLast { .. } => s.pending.len().saturating_sub(1),
        };
        let kept: Vec<DiskOp> = s.pending.drain(..).take(keep).collect();
        s.durable.extend(kept);
    }
    pub fn flip_bit_at(&self, _bit: u64) {}
}

impl Disk for SimDisk {
    fn append(&mut self, op: &DiskOp) -> Result<(), DiskError> {
        self.state.lock().unwrap().pending.push(op.clone());
        Ok(())
    }
    fn sync(&mut self) -> Result<(), DiskError> {
        let mut s = self.state.lock().unwrap();
        let p: Vec<DiskOp> = s.pending.drain(..).collect();
        s.durable.extend(p);
        Ok(())
    }
    fn recover(&mut self) -> Result<Recovered, DiskError> {
        let s = self.state.lock().unwrap();
        let mut image = Image::Empty;
        for op in s.durable.iter().chain(s.pending.iter()) {
            image
                .apply(op)
                .map_err(|e| DiskError::Other(e.to_string()))?;
        }
        Ok(Recovered {
            image,
            ops: s.durable.len() + s.pending.len(),
            dropped_bytes: 0,
            note: None,
        })
    }
}
