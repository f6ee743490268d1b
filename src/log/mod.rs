//! One partition's log as a pure data structure: records at offsets, the leader-epoch cache, log
//! start / high watermark / log end, truncation and retention. No I/O: the broker turns changes into
//! disk effects, and the same type is the durable image a replica recovers from.

mod epoch_cache;
mod invariant;
mod partition_log;
mod producer_state;
#[cfg(test)]
mod proptests;
mod retention;

pub use crate::protocol::BatchMeta;
pub use epoch_cache::{EpochCache, EpochStart};
pub use invariant::{ensure, Checked, Violation};
pub use partition_log::{LogError, PartitionLog};
pub use producer_state::{BatchCheck, ProducerState, SequenceRules, PRODUCER_WINDOW};
pub use retention::RetentionPolicy;
