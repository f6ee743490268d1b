//! The cluster of `seedlog chaos` as child processes of this very binary: start a node and wait
//! for its READY line, kill it (SIGKILL), stop it cleanly (SIGINT), pause and resume it
//! (SIGSTOP, SIGCONT), start it again from its data directory. Each node's output is appended to
//! `logs/<name>.log` in the run's directory.

use anyhow::{bail, Context as _};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One node: how to start it, and its process while it runs.
pub struct Node {
    pub name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// `count` free ports on 127.0.0.1 (bound while the scan goes on, so none twice, then
/// released), from 20000..32000. That is below Linux's ephemeral range (32768 and up): a port
/// the kernel picked would be free for anyone's outgoing connection to take while its node is
/// down between a kill and its restart, and the restart would fail to bind. The scan starts at
/// a point spread from the process id, so two runs at once rarely probe the same ports.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<String>> {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    let mut held = Vec::with_capacity(count);
    for i in 0..SPAN {
        if held.len() == count {
            break;
        }
        let port = (LOW + (start + i) % SPAN) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    if held.len() < count {
        bail!(
            "cannot find {count} free ports on 127.0.0.1 in {LOW}..{}",
            LOW + SPAN
        );
    }
    held.iter()
        .map(|l| Ok(l.local_addr()?.to_string()))
        .collect()
}

fn open_log(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Sends `signal` (a name `kill` knows: STOP, CONT, INT, USR1) to `pid`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed: {status}");
    }
    Ok(())
}

impl Node {
    pub fn new(name: String, args: Vec<String>, logs: &Path) -> Node {
        let log = logs.join(format!("{}.log", name.replace(' ', "")));
        Node {
            name,
            args,
            log,
            child: None,
            paused: false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and waits (up to 30 s) for its READY line.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let mut log = open_log(&self.log)?;
        writeln!(log, "=== start {}", self.args.join(" "))?;
        // Named in the error: a binary rebuilt while the run goes on shows as "... (deleted)".
        let mut child = Command::new(&exe)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.name, exe.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = ready_tx.send(());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        self.child = Some(child);
        self.paused = false;
        if ready.recv_timeout(Duration::from_secs(30)).is_err() {
            self.kill();
            bail!(
                "{} did not print READY within 30 s (its log: {})",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// SIGKILL (a paused process dies too) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGINT, as Ctrl-C: the node stops by itself; SIGKILL after 5 s if it has not.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if self.paused {
            signal(child.id(), "CONT")?;
            self.paused = false;
        }
        signal(child.id(), "INT")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn pause(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP")?;
            self.paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        if let (Some(pid), true) = (self.pid(), self.paused) {
            signal(pid, "CONT")?;
            self.paused = false;
        }
        Ok(())
    }

    /// Back to running: resumed if paused, started if down.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        if self.paused {
            self.resume()
        } else if self.child.is_none() {
            self.start()
        } else {
            Ok(())
        }
    }
}

/// The nodes; each is killed when this is dropped, however the run ends.
pub struct Nodes(pub Vec<Node>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.0 {
            node.kill();
        }
    }
}
