//! Stateright models over seedlog's sans-IO state machines. `actor` adapts any node to
//! stateright, `cluster` builds the models, `properties` names what must hold, `render` turns a
//! counterexample into readable steps, `check` runs a model and summarises the outcome, and
//! `export` turns a replication counterexample into a simulator scenario.

pub mod actor;
pub mod check;
pub mod cluster;
pub mod export;
pub mod history;
pub mod properties;
pub mod quorum;
pub mod reduce;
pub mod render;
pub mod script;
pub mod symmetry;
