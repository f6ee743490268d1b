//! The Kafka wire protocol in front of a broker (real mode only; never in the simulated build).
//!
//! A thin adapter, as `quinn` is over `quinn-proto`: it decodes Kafka requests with the
//! `kafka-protocol` crate, turns each into the broker state machine's own messages, injects them
//! into the broker's driver as if a seedlog client had sent them (every Kafka request is a
//! synthetic client of its own, `Net::attach_local`), and encodes the broker's answers back.
//! Leadership, offsets, high watermarks, acknowledgements and errors all come from the broker;
//! the adapter only translates shapes and codes (docs/kafka-listener.md).
//!
//! `versions` is what we advertise, `errors` the code mapping, `batch` and `encode` record
//! batches in and out, `topic_id` the topic ids, `metadata`, `produce`, `fetch`, `list_offsets`,
//! `producer_id`, `create_topics` and `groups` one API (or family) each, `group_api` the group
//! requests' exchange with the broker (pure translation, unit-tested), `conn` a connection and
//! `listener` the socket; `walk` checks a request's stated sizes before the crate decodes it.

mod batch;
mod conn;
mod create_topics;
mod encode;
mod errors;
mod fetch;
#[cfg(test)]
mod fuzz;
mod group_api;
mod groups;
mod list_offsets;
mod listener;
mod metadata;
mod produce;
mod producer_id;
#[cfg(test)]
mod tests;
mod topic_id;
mod versions;
mod walk;

pub use listener::{serve, KafkaLayout};
pub use versions::ADVERTISED;
