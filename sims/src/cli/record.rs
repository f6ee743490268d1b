//! `run --json FILE`: one JSON line per seed, written as each seed ends (a shard killed halfway
//! keeps the seeds it finished), and read back by `merge`.

use super::run::SeedReport;
use super::shard::Shard;
use super::ScenarioArgs;
use crate::sim::run::problem_name;
use seedlog::node::Situation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One seed's result, as a line of `--json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SeedRecord {
    pub seed: u64,
    pub verdict: Verdict,
    pub problems: Vec<Problem>,
    /// The trace hash, 16 hex digits as `run` prints it.
    pub hash: String,
    pub events: usize,
    pub sim_ms: u64,
    pub wall_ms: u64,
    /// The commit the simulator was built from (`commit_from: "build"`), or `$SEEDLOG_COMMIT`.
    pub commit: String,
    pub commit_from: String,
    /// The shard that ran the seed (`{"index":0,"count":1}` for an unsharded run) and the range
    /// the sweep was given: together they say which seeds the sweep's files should hold.
    pub shard: Shard,
    pub range: SeedRange,
    pub options: RunOptions,
    /// The command that reproduces this seed on any machine.
    pub replay: String,
    /// Named protocol situations the run reached, with how often (see `run`'s coverage table).
    pub coverage: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Failed,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub name: String,
    pub message: String,
}

/// `--first` and `--seeds` of the sweep.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeedRange {
    pub first: u64,
    pub seeds: u64,
}

impl SeedRange {
    pub fn seeds(self) -> std::ops::Range<u64> {
        self.first..self.first.saturating_add(self.seeds)
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.seeds();
        write!(f, "{}..{}", r.start, r.end)
    }
}

/// The flags that shape every seed's scenario: records of different options are different
/// sweeps and are not merged.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    pub bugs: Vec<String>,
    pub sim_secs: u64,
    pub durability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<String>,
}

impl RunOptions {
    pub fn of(args: &ScenarioArgs) -> Self {
        RunOptions {
            bugs: args.bugs.iter().map(|b| b.to_string()).collect(),
            sim_secs: args.sim_secs,
            durability: args.durability.map(|d| d.to_string()),
            nemesis: args.nemesis.map(|n| n.name().to_string()),
        }
    }

    pub fn scenario_args(&self) -> Result<ScenarioArgs, String> {
        Ok(ScenarioArgs {
            bugs: self
                .bugs
                .iter()
                .map(|b| b.parse())
                .collect::<Result<_, _>>()?,
            sim_secs: self.sim_secs,
            durability: self.durability.as_deref().map(str::parse).transpose()?,
            nemesis: self
                .nemesis
                .as_deref()
                .map(super::parse_nemesis)
                .transpose()?,
        })
    }
}

/// What every record of one run shares.
pub struct RunContext {
    pub commit: String,
    pub commit_from: String,
    pub shard: Shard,
    pub range: SeedRange,
    pub options: RunOptions,
    pub replay_flags: String,
}

/// The commit to record and where it came from: `$SEEDLOG_COMMIT` when set (a build without
/// git, or a label of one's own), else the commit `build.rs` found when the simulator was built
/// (`-dirty` if tracked files differed from it), else `unknown`.
pub fn commit() -> (String, String) {
    match std::env::var("SEEDLOG_COMMIT") {
        Ok(c) if !c.trim().is_empty() => (c.trim().to_string(), "SEEDLOG_COMMIT".into()),
        _ => match option_env!("SEEDLOG_BUILD_COMMIT") {
            Some(c) if c != "unknown" => (c.to_string(), "build".into()),
            _ => ("unknown".into(), "unknown".into()),
        },
    }
}

impl SeedRecord {
    pub fn new(r: &SeedReport, ctx: &RunContext) -> Self {
        SeedRecord {
            seed: r.seed,
            verdict: if r.problems.is_empty() {
                Verdict::Ok
            } else {
                Verdict::Failed
            },
            problems: r
                .problems
                .iter()
                .map(|p| Problem {
                    name: problem_name(p).to_string(),
                    message: p.clone(),
                })
                .collect(),
            hash: format!("{:016x}", r.hash),
            events: r.events,
            sim_ms: r.sim_ms,
            wall_ms: r.wall_ms,
            commit: ctx.commit.clone(),
            commit_from: ctx.commit_from.clone(),
            shard: ctx.shard,
            range: ctx.range,
            options: ctx.options.clone(),
            replay: format!("cargo sim replay --seed {}{}", r.seed, ctx.replay_flags),
            coverage: r
                .coverage
                .iter()
                .map(|(s, n)| (s.name().to_string(), *n))
                .collect(),
        }
    }

    /// The report `run` would have kept of this seed. Situations this build does not know (a
    /// record of another commit) are left out of the coverage.
    pub fn report(&self) -> Result<SeedReport, String> {
        let hash = u64::from_str_radix(&self.hash, 16)
            .ok()
            .filter(|_| self.hash.len() == 16)
            .ok_or_else(|| format!("hash '{}' is not 16 hex digits", self.hash))?;
        let coverage = Situation::ALL
            .iter()
            .filter_map(|s| self.coverage.get(s.name()).map(|n| (*s, *n)))
            .collect();
        Ok(SeedReport {
            seed: self.seed,
            hash,
            events: self.events,
            sim_ms: self.sim_ms,
            wall_ms: self.wall_ms,
            problems: self.problems.iter().map(|p| p.message.clone()).collect(),
            coverage,
        })
    }

    /// Checks that hold for every record `run` writes.
    fn validate(&self) -> Result<(), String> {
        Shard::new(self.shard.index, self.shard.count)?;
        if !self.shard.holds(self.seed) {
            return Err(format!("seed {} is not in shard {}", self.seed, self.shard));
        }
        if !self.range.seeds().contains(&self.seed) {
            return Err(format!(
                "seed {} is outside its range {}",
                self.seed, self.range
            ));
        }
        if (self.verdict == Verdict::Failed) == self.problems.is_empty() {
            return Err(format!(
                "verdict {:?} with {} problems",
                self.verdict,
                self.problems.len()
            ));
        }
        self.options.scenario_args()?;
        self.report().map(|_| ())
    }
}

/// Where a record was read: file and line (from 1).
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.file.display(), self.line)
    }
}

/// Every record of a `--json` file (blank lines skipped), or the first thing wrong with it,
/// naming the file and the line.
pub fn read(path: &Path) -> Result<Vec<(SeedRecord, Origin)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            file: path.to_path_buf(),
            line: i + 1,
        };
        let record: SeedRecord = serde_json::from_str(line)
            .map_err(|e| format!("{origin}: not a seed record of `run --json`: {e}"))?;
        record
            .validate()
            .map_err(|e| format!("{origin}: not a valid seed record: {e}"))?;
        out.push((record, origin));
    }
    Ok(out)
}

/// The `--json` file of a running sweep: each seed's line is written and flushed when it ends.
pub struct JsonWriter {
    path: PathBuf,
    ctx: RunContext,
    out: Mutex<(std::io::BufWriter<std::fs::File>, Option<String>)>,
}

impl JsonWriter {
    pub fn create(path: &Path, ctx: RunContext) -> Result<Self, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(JsonWriter {
            path: path.to_path_buf(),
            ctx,
            out: Mutex::new((std::io::BufWriter::new(file), None)),
        })
    }

    pub fn write(&self, report: &SeedReport) {
        let encoded = serde_json::to_string(&SeedRecord::new(report, &self.ctx))
            .map_err(|e| format!("cannot encode seed {}: {e}", report.seed));
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.1.is_some() {
            return;
        }
        let written = encoded.and_then(|line| {
            writeln!(out.0, "{line}")
                .and_then(|_| out.0.flush())
                .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
        });
        if let Err(e) = written {
            out.1 = Some(e);
        }
    }

    /// The first write error, if any.
    pub fn finish(self) -> Result<(), String> {
        match self.out.into_inner().unwrap_or_else(|p| p.into_inner()).1 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
