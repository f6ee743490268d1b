//! The simulator's command line: `run` sweeps seeds (or one shard of them), `merge` sums up the
//! `--json` files of a sharded sweep, `replay` reproduces one run from its seed or its saved
//! schedule, `check-history` checks any history file. Every command ends with one
//! `RESULT ...` line and exits 0 (ok), 1 (a violation was found) or 2 (bad usage or input).

mod check_history;
#[cfg(madsim)]
mod merge;
#[cfg(madsim)]
mod record;
#[cfg(madsim)]
mod replay;
#[cfg(madsim)]
mod run;
pub mod shard;
#[cfg(madsim)]
mod shrink;

use crate::faults::nemesis::Nemesis;
use clap::{Args, Parser, Subcommand};
use seedlog::node::{Bug, Durability};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sims",
    about = "Deterministic simulation of seedlog clusters under madsim"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run many seeds; report every failing seed with the command that replays it.
    Run(RunArgs),
    /// Sum up the `run --json` files of a sweep (its shards): the seeds, the failing ones with
    /// their replay commands, and the RESULT line, as `run` prints them.
    Merge(MergeArgs),
    /// Reproduce one run (from a seed or a saved schedule), print its trace, write its history.
    Replay(ReplayArgs),
    /// Check a history file (JSON lines, or Jepsen's EDN) for the anomalies listed in
    /// docs/architecture.md.
    CheckHistory {
        /// The history file.
        file: PathBuf,
    },
    /// Print the scenario (cluster, workload, fault schedule) a seed derives, as JSON.
    Schedule(ScheduleArgs),
    /// Remove faults from a failing run while it still fails the same way; save the result.
    Shrink(ShrinkArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// Reintroduce a historical bug (repeatable): truncate-to-hw, unclean-election, ack-before-isr,
    /// hw-from-stale-epoch, isr-before-epoch-start, last-replica-standing, commit-before-process,
    /// accept-stale-generation, ack-before-sync, dedup-window-1, no-sequence-gap-check,
    /// retry-out-of-order, producer-id-reuse, sync-before-assignment, preferred-out-of-isr (the
    /// controller then rebalances leaders every 0.5-2 s), stale-broker-epoch,
    /// hw-ignores-pending-isr, producers-not-journaled, latest-is-log-end,
    /// recovery-counts-unsynced, reset-to-high-watermark, no-epoch-bump-after-refusal,
    /// replay-keeps-highest-offset, keep-stale-list-offsets, time-lookup-strict,
    /// time-lookup-past-hw, max-timestamp-last-tie, the availability bugs lag-from-high-watermark and
    /// min-insync-exclusive, member-session-not-renewed (a liveness bug only the calm after the
    /// run sees), rebalance-not-rearmed (leaders are moved back to their preferred replicas once
    /// per controller term only; the check after the calm sees it), parked-fetch-not-woken
    /// (acks=all writes wait out the fetch long-poll; the timed probe round sees it),
    /// offset-fetch-from-cache (a deposed group coordinator answers offset fetches), and the
    /// controller quorum's
    /// vote-without-log-check, vote-by-log-length, commit-previous-epoch-by-count,
    /// vote-not-durable, no-prevote, snapshot-past-commit, keep-stalled-links (an availability
    /// bug), and create-topic-before-commit (the admin then creates a topic every 250 ms). The run then hunts for it (a failover mix, a group mix, or the bug's targeted
    /// nemesis, which then must be the only --bug).
    #[arg(long = "bug", value_parser = parse_bug)]
    pub bugs: Vec<Bug>,
    /// Draw the fault schedule from a targeted nemesis instead of a random mix, with no bug
    /// switch needed: stale-hw-rejoin, last-replica-cut, lone-leader-power-loss,
    /// controller-storm, figure-8, lossy-rejoin, lost-replica, deposed-controller or
    /// stale-coordinator (the faults each one aims at a
    /// switch's window; on code without the switch they hunt the same class of bug;
    /// lost-replica also holds the cluster to availability while one replica is lost).
    #[arg(long, value_parser = parse_nemesis)]
    pub nemesis: Option<Nemesis>,
    /// Simulated seconds of the fault phase (the liveness phase follows).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sim_secs: u64,
    /// Force the durability setting instead of drawing it from the seed.
    #[arg(long, value_parser = parse_durability)]
    pub durability: Option<Durability>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Seeds run in parallel (one simulator per thread).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Run every seed twice and compare the traces event by event.
    #[arg(long)]
    pub check_determinism: bool,
    /// Stop at the first failing seed.
    #[arg(long)]
    pub fail_fast: bool,
    /// Also write the coverage table (seeds and times each protocol situation was reached) as
    /// JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub coverage_json: Option<PathBuf>,
    /// Fail (exit 1) if any named protocol situation was reached by no seed.
    #[arg(long)]
    pub require_coverage: bool,
    /// Run only shard K of N: the seeds of the range equal to K modulo N (K counts from 0).
    /// Without it, Kubernetes' JOB_COMPLETION_INDEX (with SEEDLOG_SHARD_COUNT or --shard-count)
    /// or Buildkite's BUILDKITE_PARALLEL_JOB / _COUNT name the shard when set.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<shard::Shard>,
    /// The number of shards, for an index taken from the environment (JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "N", conflicts_with = "shard",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_count: Option<u64>,
    /// Write one JSON line per seed to this file (verdict, problems, trace hash, times, commit,
    /// shard), as each seed ends; `merge` reads them.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The `run --json` files (one per shard, in any order).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Fail (exit 1) if any named protocol situation was reached by no seed of all the files.
    #[arg(long)]
    pub require_coverage: bool,
}

/// Which run: a seed (with the flags of the run that failed) or a saved scenario file.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// The seed (with the same --bug/--sim-secs/--durability as the run).
    #[arg(
        long,
        conflicts_with = "schedule",
        required_unless_present = "schedule"
    )]
    pub seed: Option<u64>,
    /// A scenario saved with `schedule --out`, `replay --save-schedule` or `shrink`.
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

impl SourceArgs {
    /// The scenario to run, or why it cannot be had.
    pub fn load(&self) -> Result<crate::scenario::Scenario, String> {
        match (&self.schedule, self.seed) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("{} is not a saved scenario: {e}", path.display()))
            }
            (None, Some(seed)) => Ok(crate::scenario::Scenario::from_seed(
                seed,
                &self.scenario.options(),
            )),
            (None, None) => Err("give --seed or --schedule".into()),
        }
    }
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print every event (deliveries, timers, disk writes, client operations, faults).
    #[arg(long)]
    pub trace: bool,
    /// Only show these nodes in the trace (e.g. b0, controller, p1); repeatable.
    #[arg(long = "node")]
    pub nodes: Vec<String>,
    /// Where to write the run's history (JSON lines).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Save the scenario as JSON, to replay it later with --schedule.
    #[arg(long)]
    pub save_schedule: Option<PathBuf>,
    /// Run twice and compare the traces event by event.
    #[arg(long)]
    pub check_determinism: bool,
}

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where to save the shrunk scenario (default shrunk-seed-S.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[arg(long)]
    pub seed: u64,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

fn parse_shard(s: &str) -> Result<shard::Shard, String> {
    s.parse()
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    s.parse()
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

pub(crate) fn parse_nemesis(s: &str) -> Result<Nemesis, String> {
    Nemesis::ALL
        .into_iter()
        .find(|n| n.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = Nemesis::ALL.iter().map(|n| n.name()).collect();
            format!("unknown nemesis {s:?}; one of: {}", names.join(", "))
        })
}

impl ScenarioArgs {
    /// A bug hunted by its own nemesis gets the whole run: with other switches on, either hunt
    /// would be silently dropped.
    pub fn check(&self) -> Result<(), String> {
        let hunted = self.bugs.iter().find(|b| Nemesis::for_bug(**b).is_some());
        match hunted {
            Some(b) if self.bugs.len() > 1 => Err(format!(
                "{} is hunted by its own nemesis: give it as the only --bug",
                b.name()
            )),
            Some(b)
                if self
                    .nemesis
                    .is_some_and(|n| Nemesis::for_bug(*b) != Some(n)) =>
            {
                Err(format!(
                    "{} is hunted by its own nemesis, {}: leave out --nemesis or give that one",
                    b.name(),
                    Nemesis::for_bug(*b).map_or("", Nemesis::name)
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn options(&self) -> crate::scenario::ScenarioOptions {
        crate::scenario::ScenarioOptions {
            fault_ms: Some(self.sim_secs * 1000),
            bugs: self.bugs.clone(),
            durability: self.durability,
            nemesis: self.nemesis,
        }
    }

    /// The flags that must accompany `--seed` to reproduce a run.
    pub fn replay_flags(&self) -> String {
        let mut s = String::new();
        for b in &self.bugs {
            s.push_str(&format!(" --bug {b}"));
        }
        if self.sim_secs != 20 {
            s.push_str(&format!(" --sim-secs {}", self.sim_secs));
        }
        if let Some(d) = self.durability {
            s.push_str(&format!(" --durability {d}"));
        }
        if let Some(n) = self.nemesis {
            s.push_str(&format!(" --nemesis {}", n.name()));
        }
        s
    }
}

/// Parses the arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let scenario = match &cli.command {
        Command::Run(a) => Some(&a.scenario),
        Command::Replay(a) => Some(&a.source.scenario),
        Command::Shrink(a) => Some(&a.source.scenario),
        Command::Schedule(a) => Some(&a.scenario),
        Command::CheckHistory { .. } | Command::Merge(_) => None,
    };
    if let Some(Err(e)) = scenario.map(ScenarioArgs::check) {
        eprintln!("error: {e}");
        println!("RESULT error reason=bad-arguments");
        return 2;
    }
    match cli.command {
        Command::CheckHistory { file } => check_history::main(&file),
        Command::Schedule(args) => schedule(&args),
        #[cfg(madsim)]
        Command::Run(args) => run::main(&args),
        #[cfg(madsim)]
        Command::Merge(args) => merge::main(&args),
        #[cfg(madsim)]
        Command::Replay(args) => replay::main(&args),
        #[cfg(madsim)]
        Command::Shrink(args) => shrink::main(&args),
        #[cfg(not(madsim))]
        Command::Run(_) | Command::Merge(_) | Command::Replay(_) | Command::Shrink(_) => {
            eprintln!(
                "error: this binary was built without madsim's simulator; use `cargo sim run ...` \
                 (an alias that builds with --cfg madsim in target/sim)"
            );
            println!("RESULT error reason=not-a-simulator-build");
            2
        }
    }
}

fn schedule(args: &ScheduleArgs) -> i32 {
    let sc = crate::scenario::Scenario::from_seed(args.seed, &args.scenario.options());
    let json = match serde_json::to_string_pretty(&sc) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot encode the scenario: {e}");
            return 2;
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, json + "\n") {
                eprintln!("error: cannot write {}: {e}", path.display());
                println!("RESULT error reason=io");
                return 2;
            }
            println!(
                "wrote the scenario of seed {} to {}",
                args.seed,
                path.display()
            );
        }
        None => println!("{json}"),
    }
    println!(
        "RESULT ok seed={} faults={}",
        args.seed,
        sc.schedule.events.len()
    );
    0
}
