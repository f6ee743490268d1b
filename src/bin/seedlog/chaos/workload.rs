//! The workload's process: killed if the run ends early, its output copied to `driver.log`,
//! waited for under a deadline.

use super::cluster::signal;
use anyhow::{bail, Context as _};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The workload's process, killed if the run ends early (a node that would not start again).
pub struct Workload(pub Child);

impl Drop for Workload {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Copies the driver's output to `driver.log` (and its progress to our stdout); the thread
/// returns its `DRIVER done` line.
pub fn forward(
    driver: &mut Child,
    dir: &Path,
) -> anyhow::Result<std::thread::JoinHandle<Option<String>>> {
    use std::io::Write as _;
    let stdout = driver.stdout.take().context("no stdout")?;
    let stderr = driver.stderr.take().context("no stderr")?;
    let mut log = std::fs::File::create(dir.join("driver.log"))?;
    let mut err_log = log.try_clone()?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(err_log, "{line}");
        }
    });
    Ok(std::thread::spawn(move || {
        let mut done = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if line.starts_with("DRIVER done") {
                done = Some(line);
            } else if line.starts_with("t=") || line.starts_with("DRIVER") {
                println!("  workload {line}");
            }
        }
        done
    }))
}

/// Waits for the driver to exit. Past `deadline` it first asks for the driver's thread stacks
/// (SIGUSR1, into `driver.log`), then kills it.
pub fn wait_for(
    driver: &mut Child,
    deadline: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = driver.try_wait()? {
            return Ok(status);
        }
        if started.elapsed() > deadline {
            let _ = signal(driver.id(), "USR1");
            std::thread::sleep(Duration::from_secs(2));
            let _ = driver.kill();
            let _ = driver.wait();
            bail!("the workload was still running after {deadline:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of `driver.log` the driver itself wrote (librdkafka's own log lines,
/// which start with `%`, left out): where a failed workload was, for the run's error.
pub fn driver_log_tail(dir: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read_to_string(dir.join("driver.log")) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('%')).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
