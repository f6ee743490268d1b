//! `seedlog chaos`: a cluster of real processes, real Kafka clients, process faults on a seeded
//! schedule, and the history checker on what the clients saw (docs/chaos.md). Not
//! deterministic (real processes, real time), but the schedule is drawn from the seed and
//! printed, so a failing run names what was done to the cluster and when.

mod cluster;
mod nemesis;
mod schedule;
mod workload;

use crate::layout::FIRST_CONTROLLER_ID;
use anyhow::{bail, Context as _};
use cluster::{free_ports, Node, Nodes};
use nemesis::inject;
use schedule::{FaultKind, Named, Schedule};
use seedlog::history::{check, parse_history};
use seedlog::node::Bug;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use workload::{driver_log_tail, forward, wait_for, Workload};

/// The workload, written into the run's directory and run with `--python`.
const DRIVER: &str = include_str!("driver.py");
const TOPIC: &str = "events";

#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// Seeds the fault schedule (printed before the run).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds of workload under faults; the clients then flush and read everything back.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=3600))]
    duration: u64,
    /// The faults to draw from, comma-separated: kill (SIGKILL, then a restart), pause
    /// (SIGSTOP, then SIGCONT), restart (SIGINT, then a start).
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,restart")]
    faults: Vec<FaultKind>,
    /// Brokers (each a process with a Kafka listener); the topic has min(3, brokers) replicas.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    brokers: u32,
    /// Controllers (a quorum); with 3 or more, faults hit controllers too.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=5))]
    controllers: u32,
    /// Partitions of the topic the clients use.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    partitions: u32,
    /// Producer processes of the workload (each an idempotent confluent-kafka producer).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    producers: u32,
    /// Members of the consumer group `seedlog-chaos-group` (each a confluent-kafka consumer
    /// that subscribes, resumes at the group's committed offsets and commits what it reads).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=8))]
    group_members: u32,
    /// Where to put data directories, logs and the history (kept). Default: a new directory
    /// under the system's temporary directory, removed if the run passes.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A Python with confluent-kafka. Default: target/kafka-venv/bin/python beside this binary's
    /// target directory (tests/kafka/setup.sh makes it).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Start every broker with this bug switch (repeatable; docs/bugs.md), to see the run catch
    /// it.
    #[arg(long = "bug")]
    bugs: Vec<Bug>,
}

/// Runs the chaos test; prints `RESULT ok|violation|error ...` last and returns the exit code
/// (0, 1, 2) as `cargo sim run` does.
pub fn chaos(args: ChaosArgs) -> anyhow::Result<i32> {
    let python = find_python(args.python.as_deref())?;
    let (dir, keep) = match &args.dir {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!(
                "seedlog-chaos-{}-{}",
                args.seed,
                std::process::id()
            )),
            false,
        ),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} is not empty: give a new directory (the nodes' data would be reused)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let outcome = run(&args, &python, &dir);
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            println!("RESULT error seed={} reason=harness", args.seed);
            2
        }
    };
    if code == 0 && !keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept {} (history.jsonl, faults.log, logs/)", dir.display());
    }
    Ok(code)
}

/// The given Python, or the virtual environment tests/kafka/setup.sh makes under the target
/// directory this binary was built in; it must import confluent_kafka.
fn find_python(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let python = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("cannot find this binary")?;
            // target/<profile>/seedlog -> target/kafka-venv/bin/python
            let beside = exe
                .parent()
                .and_then(Path::parent)
                .map(|t| t.join("kafka-venv/bin/python"));
            match beside.filter(|p| p.exists()) {
                Some(p) => p,
                None => bail!(
                    "no Python with confluent-kafka found beside {} (target/kafka-venv): run \
                     tests/kafka/setup.sh or give --python",
                    exe.display()
                ),
            }
        }
    };
    let ok = Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "{} cannot import confluent_kafka: run tests/kafka/setup.sh or give --python",
            python.display()
        );
    }
    Ok(python)
}

/// The nodes' arguments: controllers first, then brokers, each with a data directory and a
/// Kafka listener for brokers. Returns them with the Kafka bootstrap list.
fn layout(args: &ChaosArgs, dir: &Path) -> anyhow::Result<(Vec<Node>, String)> {
    let (c, b) = (args.controllers as usize, args.brokers as usize);
    let ports = free_ports(c + 2 * b)?;
    let controllers = ports[..c].join(",");
    let brokers = ports[c..c + b].join(",");
    let kafka = ports[c + b..].join(",");
    let replication = b.min(3);
    let common = |kind: &str, id: u32, name: &str| -> Vec<String> {
        let mut a: Vec<String> = vec![kind.into(), "--id".into(), id.to_string()];
        a.extend(["--brokers".into(), brokers.clone()]);
        a.extend(["--controllers".into(), controllers.clone()]);
        a.extend(["--data-dir".into(), dir.join(name).display().to_string()]);
        a
    };
    let logs = dir.join("logs");
    let mut nodes = Vec::new();
    for i in 0..c as u32 {
        let id = FIRST_CONTROLLER_ID + i;
        let name = format!("controller {id}");
        let mut a = common("controller", id, &format!("controller{id}"));
        a.extend([
            "--topic".into(),
            format!("{TOPIC}:{}:{replication}", args.partitions),
        ]);
        a.extend(["--session-timeout-ms".into(), "2000".into()]);
        a.extend(["--seed".into(), args.seed.to_string()]);
        nodes.push(Node::new(name, a, &logs));
    }
    for id in 0..b as u32 {
        let mut a = common("broker", id, &format!("broker{id}"));
        a.extend([
            "--min-insync-replicas".into(),
            replication.min(2).to_string(),
        ]);
        a.extend(["--kafka-listeners".into(), kafka.clone()]);
        for bug in &args.bugs {
            a.extend(["--bug".into(), bug.name().into()]);
        }
        nodes.push(Node::new(format!("broker {id}"), a, &logs));
    }
    Ok((nodes, kafka))
}

fn run(args: &ChaosArgs, python: &Path, dir: &Path) -> anyhow::Result<i32> {
    let (nodes, bootstrap) = layout(args, dir)?;
    let mut nodes = Nodes(nodes);
    let names: Vec<String> = nodes.0.iter().map(|n| n.name.clone()).collect();
    // A quorum of controllers survives one down; a single controller is left alone.
    let targets: Vec<usize> = (0..names.len())
        .filter(|&i| args.controllers >= 3 || i >= args.controllers as usize)
        .collect();
    let duration_ms = args.duration * 1_000;
    let schedule = Schedule::draw(args.seed, duration_ms, &args.faults, &targets);
    print!("{}", Named(&schedule, &names));
    for node in &mut nodes.0 {
        node.start()?;
    }
    println!(
        "cluster up: {} controllers, {} brokers (Kafka on {bootstrap}); data in {}",
        args.controllers,
        args.brokers,
        dir.display()
    );
    let history = dir.join("history.jsonl");
    let script = dir.join("driver.py");
    std::fs::write(&script, DRIVER)?;
    let mut driver = Workload(
        Command::new(python)
            .arg(&script)
            .args(["--bootstrap", &bootstrap, "--topic", TOPIC])
            .args(["--partitions", &args.partitions.to_string()])
            .args(["--producers", &args.producers.to_string()])
            .args(["--group-members", &args.group_members.to_string()])
            .args(["--duration", &args.duration.to_string(), "--history"])
            .arg(&history)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", python.display()))?,
    );
    let lines = forward(&mut driver.0, dir)?;
    let started = Instant::now();
    let injected = inject(&mut nodes, &schedule, started, dir)?;
    // Every node back, for the final reads.
    for node in &mut nodes.0 {
        node.heal()?;
    }
    // The driver's own budgets after the fault phase add up to about 3 minutes (driver.py).
    let waited = wait_for(&mut driver.0, Duration::from_secs(args.duration + 240));
    let summary = lines
        .join()
        .map_err(|_| anyhow::anyhow!("the driver's output reader panicked"))?;
    drop(nodes);
    let failed = |what: String| {
        anyhow::anyhow!(
            "{what}; the end of {} (without librdkafka's lines):\n{}",
            dir.join("driver.log").display(),
            driver_log_tail(dir, 60)
        )
    };
    let status = waited.map_err(|e| failed(e.to_string()))?;
    if !status.success() {
        return Err(failed(format!("the workload failed ({status})")));
    }
    let Some(summary) = summary else {
        return Err(failed(
            "the workload ended without its DRIVER done line".into(),
        ));
    };
    println!("{summary}");
    println!("history: {}", history.display());
    let text = std::fs::read_to_string(&history)
        .with_context(|| format!("cannot read {}", history.display()))?;
    let events = match parse_history(&text) {
        Ok(events) => events,
        Err(e) => bail!("{}: {e}", history.display()),
    };
    let report = check(&events);
    if report.stats.sends_ok == 0 || report.stats.records_read == 0 {
        bail!(
            "nothing to check: {} sends acknowledged, {} records read",
            report.stats.sends_ok,
            report.stats.records_read
        );
    }
    for anomaly in &report.anomalies {
        println!("{anomaly}");
    }
    // The checker's line, with the seed and the faults in front.
    let line = report.result_line();
    let rest = line
        .strip_prefix("RESULT ")
        .and_then(|r| r.split_once(' '))
        .map(|(status, rest)| {
            format!(
                "RESULT {status} seed={} faults={injected} {rest}",
                args.seed
            )
        })
        .unwrap_or(line);
    println!("{rest}");
    Ok(if report.is_ok() { 0 } else { 1 })
}
