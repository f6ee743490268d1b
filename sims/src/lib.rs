//! The deterministic simulation harness: seeded scenarios (cluster, workload, fault schedule),
//! runs of the real node code under madsim, histories, checks, replay.
//!
//! Scenario and schedule generation are plain code and build everywhere; running a scenario needs
//! madsim's simulator, which exists only in `--cfg madsim` builds (`cargo sim ...`, see README).

pub mod cli;
pub mod faults;
pub mod rng;
pub mod scenario;

#[cfg(madsim)]
pub mod sim;
