//! The sans-IO state machines: broker, controller and clients. Each is a plain struct driven through
//! four entry points — `on_start`, `on_message`, `on_timer`, `on_persisted` — that take a
//! [`Context`] carrying `now` and collecting [`Effect`]s. Nothing here touches time, I/O, threads,
//! global state or OS randomness, and every collection iterates in a fixed order, so the model
//! checker, the simulator and the real runtime all drive exactly this code.

pub mod admin;
mod any;
pub mod broker;
mod bugs;
mod client;
mod config;
pub mod consumer;
pub mod controller;
pub mod controller_quorum;
pub mod coordinator;
mod coverage;
mod disk;
mod effects;
mod observe;
pub mod producer;
pub mod quorum;
pub mod reader;

pub use admin::{Admin, AdminConfig, Created, TopicToCreate};
pub use any::{AnyNode, Image};
pub use broker::{run_incarnation, Broker, Role};
pub use bugs::{Bug, BugSet};
pub use config::{
    BrokerConfig, ConsumerConfig, ControllerConfig, Durability, OffsetReset, ProducerConfig,
    ReaderConfig, Rewind, TopicSpec, PRODUCER_ID_BLOCK_SIZE,
};
pub use consumer::Consumer;
pub use controller::Controller;
pub use controller_quorum::{apply_record, QuorumController, BOOTSTRAP_EPOCH};
pub use coverage::Situation;
pub use disk::{BrokerImage, ControllerImage, ControllerImageV1, DiskOp, QuorumImage};
pub use effects::{Context, Effect, SyncToken, Timer};
pub use observe::{ClientEvent, Stage};
pub use producer::Producer;
pub use quorum::{QuorumClient, QuorumClientConfig, QuorumConfig, QuorumNode, QuorumRole};
pub use reader::Reader;
