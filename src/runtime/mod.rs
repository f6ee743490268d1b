//! The async driver: runs any node on tokio (through `madsim-tokio`, so the same code runs
//! simulated and real), carries out its effects, and talks to peers over TCP.

pub mod disk;
pub mod driver;
pub mod frame;
pub mod net;
pub mod sim_disk;
pub mod trace;
