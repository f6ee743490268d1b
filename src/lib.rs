//! seedlog: a Kafka-style replicated log whose protocol logic is written once, as deterministic
//! sans-IO state machines, and driven by a model checker, a deterministic simulator and a real
//! runtime. Layers import downwards only: `protocol` <- `log` <- `node`.

pub mod history;
pub mod log;
pub mod node;
pub mod protocol;
pub mod runtime;
