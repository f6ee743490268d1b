//! Running one scenario under madsim: build the cluster (`cluster`), inject the schedule's faults
//! (`supervisor`), then heal, wait for convergence, probe that producers still write (`probe`)
//! and check (`checks`), then leave the cluster alone for a while (`calm`). `run` ties them
//! together.

pub mod availability;
pub mod calm;
pub mod checks;
pub mod cluster;
pub mod committed;
pub mod copies;
pub mod cross_checks;
pub mod disk_check;
pub mod history;
pub mod holds;
pub mod latency;
pub mod probe;
pub mod run;
pub mod shrink;
pub mod supervisor;
