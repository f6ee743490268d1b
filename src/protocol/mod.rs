//! Everything that crosses a wire: record types, node-to-node and client-to-broker messages, error
//! codes, and the partitioners clients use to pick a partition. Pure data, serde-serialisable; every
//! type is `Ord + Hash` so states built from them hash canonically for the model checker.

mod display;
pub mod entry_block;
mod error;
mod group;
mod message;
pub mod partitioner;
mod quorum;
mod record;
mod record_serde;

pub use error::ErrorCode;
pub use group::*;
pub use message::*;
pub use quorum::*;
pub use record::*;
