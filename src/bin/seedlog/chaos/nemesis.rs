//! Carrying out the fault schedule on the nodes, in real time.

use super::cluster::Nodes;
use super::schedule::{FaultKind, Schedule};
use std::path::Path;
use std::time::{Duration, Instant};

/// Carries out the schedule from `started`; returns how many faults were injected. Each is
/// logged to stdout and `faults.log`.
pub fn inject(
    nodes: &mut Nodes,
    schedule: &Schedule,
    started: Instant,
    dir: &Path,
) -> anyhow::Result<usize> {
    use std::io::Write as _;
    let mut log = std::fs::File::create(dir.join("faults.log"))?;
    let mut note = |what: String| -> anyhow::Result<()> {
        let line = format!("{:>7.2} s  {what}", started.elapsed().as_secs_f64());
        println!("  {line}");
        writeln!(log, "{line}")?;
        Ok(())
    };
    let wait_until = |ms: u64| {
        let at = started + Duration::from_millis(ms);
        if let Some(left) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    };
    let mut injected = 0;
    for fault in &schedule.faults {
        wait_until(fault.at_ms);
        let node = &mut nodes.0[fault.target];
        let pid = node.pid().unwrap_or(0);
        match fault.kind {
            FaultKind::Kill => node.kill(),
            FaultKind::Pause => node.pause()?,
            FaultKind::Restart => node.stop()?,
        }
        injected += 1;
        let verb = match fault.kind {
            FaultKind::Kill => "kill -9",
            FaultKind::Pause => "SIGSTOP",
            FaultKind::Restart => "stopped (SIGINT)",
        };
        note(format!("{verb} {} (pid {pid})", node.name))?;
        wait_until(fault.at_ms + fault.down_ms);
        let node = &mut nodes.0[fault.target];
        node.heal()?;
        let verb = match fault.kind {
            FaultKind::Pause => "SIGCONT",
            _ => "started",
        };
        note(format!(
            "{verb} {} (pid {})",
            node.name,
            node.pid().unwrap_or(0)
        ))?;
    }
    Ok(injected)
}
