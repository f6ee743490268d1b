//! Helpers shared by the simulator's CLI test binaries.

use std::process::Command;

/// Runs the `sims` binary with `args`: its stdout and stderr together, and its exit code.
pub fn sims(args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_sims"))
        .args(args)
        .output()
        .expect("run sims");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}
