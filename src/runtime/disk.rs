//! PLACEHOLDER until the disk branch lands.

use crate::node::{DiskOp, Image};

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk: {0}")]
    Other(String),
}

pub struct Recovered {
    pub image: Image,
    pub ops: usize,
    pub dropped_bytes: u64,
    pub note: Option<String>,
}

pub trait Disk {
    fn append(&mut self, op: &DiskOp) -> Result<(), DiskError>;
    fn sync(&mut self) -> Result<(), DiskError>;
    fn recover(&mut self) -> Result<Recovered, DiskError>;
}
