//! The async driver: runs any node on tokio (through `madsim-tokio`, so the same code runs
//! simulated and real), carries out its effects, and talks to peers over TCP. `frame` is the one
//! byte format of the network and the disk; `disk` the durable-log contract with a real
//! (`file_disk`) and a simulated (`sim_disk`) implementation; `sim_clock` the simulator's
//! per-node clocks; `kafka` the Kafka wire protocol in front of a broker (real mode only).

pub mod disk;
pub mod driver;
pub mod file_disk;
pub mod frame;
#[cfg(not(madsim))]
pub mod kafka;
pub mod net;
pub mod sim_clock;
pub mod sim_disk;
pub mod timers;
pub mod trace;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, surviving a panic elsewhere: everything the runtime shares (node state, traces,
/// routes, histories) is updated in whole steps, so a poisoned lock still guards a sound value.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// For command-line tools that print to standard output: end quietly, as `cat` does, when the
/// reader of a pipe has gone (`sims schedule ... | head`). Rust starts a program with SIGPIPE
/// ignored, so the write fails instead and `println!` panics on the failure; this restores the
/// signal's default action. Not for a process that writes to sockets (a broker, a controller):
/// a peer that hangs up must be an error it handles, not the end of the process.
pub fn end_quietly_on_a_closed_pipe() {
    // SAFETY: sets a signal's disposition to its default; called early in `main`, before any
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
