//! `run`: a sweep over seeds, in parallel simulators, with a progress bar on a terminal.

use super::record::{self, JsonWriter, RunContext, RunOptions, SeedRange};
use super::shard::{self, Shard};
use super::RunArgs;
use crate::scenario::Scenario;
use crate::sim::run::{problem_name, run, Outcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use seedlog::node::Situation;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a sweep keeps of one seed's run.
pub struct SeedReport {
    pub seed: u64,
    pub hash: u64,
    pub events: usize,
    pub sim_ms: u64,
    /// Wall time of the seed's run(s), in milliseconds.
    pub wall_ms: u64,
    pub problems: Vec<String>,
    pub coverage: BTreeMap<Situation, u64>,
}

/// Runs one seed (twice when checking determinism) and reduces it to a report.
pub fn run_seed(sc: &Scenario, check_determinism: bool) -> SeedReport {
    let wall = Instant::now();
    let first = run(sc, check_determinism);
    let mut problems = first.problems.clone();
    if check_determinism {
        let second = run(sc, true);
        if let Some(d) = divergence(&first, &second) {
            problems.insert(0, d);
        }
    }
    SeedReport {
        seed: sc.seed,
        hash: first.trace_hash,
        events: first.events,
        sim_ms: first.sim_ms,
        wall_ms: wall.elapsed().as_millis() as u64,
        problems,
        coverage: first.coverage,
    }
}

/// Names the first event where two runs of one scenario part, if they do.
pub fn divergence(a: &Outcome, b: &Outcome) -> Option<String> {
    let i = a.trace.first_divergence(&b.trace)?;
    let show = |o: &Outcome| {
        o.trace
            .events()
            .and_then(|e| e.get(i))
            .map(|e| format!("{} ms {} {}", e.time_ms, e.node, e.what))
            .unwrap_or_else(|| "(run ended)".into())
    };
    Some(format!(
        "nondeterminism: the two runs part at event #{i}: first run: {} | second run: {}",
        show(a),
        show(b)
    ))
}

pub fn main(args: &RunArgs) -> i32 {
    let opts = args.scenario.options();
    let range = SeedRange {
        first: args.first,
        seeds: args.seeds,
    };
    // Lossy: a variable that is not UTF-8 is then refused as not a number, not a panic.
    let env = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect();
    let sharding = match shard::resolve(args.shard, args.shard_count, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            println!("RESULT error reason=bad-shard");
            return 2;
        }
    };
    let shard = sharding.as_ref().map_or(Shard::WHOLE, |s| s.shard);
    let seeds: Vec<u64> = range.seeds().filter(|&s| shard.holds(s)).collect();
    if let Some(s) = &sharding {
        println!(
            "shard {shard} (from {}): {} of the seeds {range}, those with seed % {} = {}",
            s.from,
            seeds.len(),
            shard.count,
            shard.index
        );
    }
    let replay_flags = args.scenario.replay_flags();
    let json = match &args.json {
        None => None,
        Some(path) => {
            let (commit, commit_from) = record::commit();
            let ctx = RunContext {
                commit,
                commit_from,
                shard,
                range,
                options: RunOptions::of(&args.scenario),
                replay_flags: replay_flags.clone(),
            };
            match JsonWriter::create(path, ctx) {
                Ok(w) => Some(w),
                Err(e) => {
                    eprintln!("error: {e}");
                    println!("RESULT error reason=json-unwritable");
                    return 2;
                }
            }
        }
    };
    let bar = ProgressBar::with_draw_target(
        Some(seeds.len() as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} [{elapsed_precise}]")
    {
        bar.set_style(style);
    }
    let wall = Instant::now();
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(seeds.len() as u64) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= seeds.len() || stop.load(Ordering::SeqCst) {
                    return;
                }
                let sc = Scenario::from_seed(seeds[i], &opts);
                let report = run_seed(&sc, args.check_determinism);
                if let Some(json) = &json {
                    json.write(&report);
                }
                if !report.problems.is_empty() {
                    let k = failed.fetch_add(1, Ordering::SeqCst) + 1;
                    bar.set_message(format!("{k} failed"));
                    if args.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                bar.inc(1);
                reports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(report);
            });
        }
    });
    bar.finish_and_clear();
    let wall_secs = wall.elapsed().as_secs_f64();
    let mut reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    reports.sort_by_key(|r| r.seed);
    print_seeds(&reports, &replay_flags);
    let events: usize = reports.iter().map(|r| r.events).sum();
    println!(
        "throughput: {:.0} seeds/min, {:.0} events/s, {} jobs",
        reports.len() as f64 * 60.0 / wall_secs.max(1e-9),
        events as f64 / wall_secs.max(1e-9),
        args.jobs
    );
    if let Some(kb) = peak_resident_kb() {
        println!("memory: peak resident {} MB", kb / 1024);
    }
    let coverage = CoverageTable::of(&reports);
    print!("{}", coverage.render());
    if let Some(path) = &args.coverage_json {
        let json = serde_json::to_string_pretty(&coverage.to_json()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            println!("RESULT error reason=coverage-json-unwritable");
            return 2;
        }
    }
    if let Some(Err(e)) = json.map(JsonWriter::finish) {
        eprintln!("error: {e}");
        println!("RESULT error reason=json-unwritable");
        return 2;
    }
    let (result, code) = verdict(&reports, &coverage, args.require_coverage, wall_secs);
    match sharding {
        Some(_) => println!("{result} shard={shard}"),
        None => println!("{result}"),
    }
    code
}

/// Each seed's line, and for a failing seed its first problems and the command that replays it.
pub fn print_seeds(reports: &[SeedReport], replay_flags: &str) {
    for r in reports {
        let verdict = if r.problems.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!(
            "seed={} {verdict} hash={:016x} events={} sim_ms={}",
            r.seed, r.hash, r.events, r.sim_ms
        );
        for p in r.problems.iter().take(5) {
            println!("    {p}");
        }
        if r.problems.len() > 5 {
            println!("    ... and {} more", r.problems.len() - 5);
        }
        if !r.problems.is_empty() {
            println!(
                "    replay: cargo sim replay --seed {}{replay_flags} --trace",
                r.seed
            );
        }
    }
}

/// A sweep's `RESULT` line and exit code: the first failing seed if any failed, else the
/// situations nobody reached if `require_coverage`, else ok.
pub fn verdict(
    reports: &[SeedReport],
    coverage: &CoverageTable,
    require_coverage: bool,
    wall_secs: f64,
) -> (String, i32) {
    let sim_secs: f64 = reports.iter().map(|r| r.sim_ms as f64 / 1000.0).sum();
    let unreached = coverage.unreached();
    let failing: Vec<&SeedReport> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    match failing.first() {
        None if require_coverage && !unreached.is_empty() => (
            format!(
                "RESULT violation seeds={} failed=0 problem=coverage unreached={}",
                reports.len(),
                unreached.join(",")
            ),
            1,
        ),
        None => (
            format!(
                "RESULT ok seeds={} failed=0 sim_secs={sim_secs:.0} wall_secs={wall_secs:.2} accel={:.0}",
                reports.len(),
                sim_secs / wall_secs.max(1e-9)
            ),
            0,
        ),
        Some(first) => (
            format!(
                "RESULT violation seeds={} failed={} first_failing_seed={} problem={}",
                reports.len(),
                failing.len(),
                first.seed,
                problem_name(&first.problems[0])
            ),
            1,
        ),
    }
}

/// The process's peak resident memory (Linux's `VmHWM`), if the system reports it: a sweep's
/// memory must not grow with its number of seeds.
fn peak_resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// For each named situation: how many seeds reached it, and how often in all.
pub struct CoverageTable {
    seeds: usize,
    rows: Vec<(Situation, usize, u64)>,
}

impl CoverageTable {
    pub fn of(reports: &[SeedReport]) -> Self {
        let rows = Situation::ALL
            .iter()
            .map(|&s| {
                let counts = reports.iter().filter_map(|r| r.coverage.get(&s));
                let (seeds, times) = counts.fold((0, 0), |(n, t), c| (n + 1, t + c));
                (s, seeds, times)
            })
            .collect();
        CoverageTable {
            seeds: reports.len(),
            rows,
        }
    }

    /// Situations no seed reached, by name: `--require-coverage` requires every one.
    pub fn unreached(&self) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|(_, seeds, _)| *seeds == 0)
            .map(|(s, _, _)| s.name())
            .collect()
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "coverage over {} seeds: situation, seeds reaching it, times\n",
            self.seeds
        );
        for (s, seeds, times) in &self.rows {
            let flag = if *seeds == 0 { "  NEVER REACHED" } else { "" };
            out.push_str(&format!("  {:<32} {seeds:>6} {times:>8}{flag}\n", s.name()));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rows: serde_json::Map<String, serde_json::Value> = self
            .rows
            .iter()
            .map(|(s, seeds, times)| {
                let v = serde_json::json!({ "seeds": seeds, "times": times });
                (s.name().to_string(), v)
            })
            .collect();
        serde_json::json!({ "seeds": self.seeds, "situations": rows })
    }
}
