//! `merge FILE...`: the `run --json` files of a sweep's shards summed up as one `run` would
//! print them: every seed's line, each failing seed with its replay command, the coverage table
//! and the `RESULT` line. A seed recorded twice with different results is a determinism failure
//! (or two builds, if the commits differ); seeds of a recorded range that no file holds make the
//! merge incomplete.

use super::record::{self, Origin, SeedRange, SeedRecord, Verdict};
use super::run::{print_seeds, verdict, CoverageTable};
use super::shard::Shard;
use super::MergeArgs;
use std::collections::{BTreeMap, BTreeSet};

/// How many missing seeds are listed by number.
const LIST: usize = 10;

pub fn main(args: &MergeArgs) -> i32 {
    match merge(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            println!("RESULT error reason=bad-input");
            2
        }
    }
}

fn merge(args: &MergeArgs) -> Result<i32, String> {
    let mut records = Vec::new();
    for f in &args.files {
        records.extend(record::read(f)?);
    }
    let Some((first, first_origin)) = records.first() else {
        return Err("the files hold no seed records".into());
    };
    let flags = |r: &SeedRecord| match r.options.scenario_args().map(|a| a.replay_flags()) {
        Ok(f) if f.is_empty() => Ok("no flags".to_string()),
        Ok(f) => Ok(f.trim().to_string()),
        Err(e) => Err(e),
    };
    if let Some((r, o)) = records.iter().find(|(r, _)| r.options != first.options) {
        return Err(format!(
            "{first_origin} and {o} are of different sweeps (run with {} and with {}): merge one \
             sweep's files at a time",
            flags(first)?,
            flags(r)?
        ));
    }
    let replay_flags = first.options.scenario_args()?.replay_flags();
    let commits: BTreeSet<&str> = records.iter().map(|(r, _)| r.commit.as_str()).collect();
    if commits.len() > 1 {
        let list: Vec<&str> = commits.iter().copied().collect();
        println!(
            "note: the records come from {} builds: {}",
            commits.len(),
            list.join(", ")
        );
    }
    let mut by_seed: BTreeMap<u64, Vec<&(SeedRecord, Origin)>> = BTreeMap::new();
    for r in &records {
        by_seed.entry(r.0.seed).or_default().push(r);
    }
    let mut reports = Vec::with_capacity(by_seed.len());
    let mut agreeing = 0;
    for (seed, recs) in &by_seed {
        let (r0, o0) = recs[0];
        let mut report = r0.report()?;
        for (r, o) in &recs[1..] {
            if same_result(r0, r) {
                agreeing += 1;
                continue;
            }
            let kind = if r.commit == r0.commit {
                "nondeterminism"
            } else {
                "build-mismatch"
            };
            report.problems.insert(
                0,
                format!(
                    "{kind}: seed {seed} recorded twice with different results: {o0}: {} | {o}: {}",
                    describe(r0),
                    describe(r)
                ),
            );
        }
        reports.push(report);
    }
    let missing = Missing::of(&records, &by_seed);

    print_seeds(&reports, &replay_flags);
    let wall_secs: f64 = reports.iter().map(|r| r.wall_ms as f64 / 1000.0).sum();
    let shards: BTreeSet<Shard> = records.iter().map(|(r, _)| r.shard).collect();
    let shards: Vec<String> = shards.iter().map(Shard::to_string).collect();
    println!(
        "merged {} file{}: {} records of {} seeds, shards {}; seed wall time summed {wall_secs:.2} s",
        args.files.len(),
        if args.files.len() == 1 { "" } else { "s" },
        records.len(),
        reports.len(),
        shards.join(" ")
    );
    if agreeing > 0 {
        println!("duplicates: {agreeing} records repeat a seed with the same result");
    }
    for line in &missing.lines {
        println!("missing: {line}");
    }
    let coverage = CoverageTable::of(&reports);
    print!("{}", coverage.render());
    let (result, code) = verdict(&reports, &coverage, args.require_coverage, wall_secs);
    let failed = reports.iter().any(|r| !r.problems.is_empty());
    match missing.first {
        Some(seed) if !failed => {
            println!(
                "RESULT error reason=incomplete seeds={} missing={} first_missing_seed={seed}",
                reports.len(),
                missing.total
            );
            Ok(2)
        }
        _ => {
            println!("{result}");
            Ok(code)
        }
    }
}

/// Whether two records of one seed tell the same run.
fn same_result(a: &SeedRecord, b: &SeedRecord) -> bool {
    let key = |r: &SeedRecord| {
        (
            r.verdict,
            r.hash.clone(),
            r.events,
            r.sim_ms,
            r.problems.clone(),
            r.coverage.clone(),
        )
    };
    key(a) == key(b)
}

fn describe(r: &SeedRecord) -> String {
    let verdict = match r.verdict {
        Verdict::Ok => "ok",
        Verdict::Failed => "failed",
    };
    format!(
        "{verdict} hash={} events={} sim_ms={} commit={}",
        r.hash, r.events, r.sim_ms, r.commit
    )
}

/// Seeds of the recorded ranges that no record holds.
struct Missing {
    total: u64,
    first: Option<u64>,
    lines: Vec<String>,
}

impl Missing {
    fn of(
        records: &[(SeedRecord, Origin)],
        by_seed: &BTreeMap<u64, Vec<&(SeedRecord, Origin)>>,
    ) -> Self {
        // Each range with the shard counts its records were run with.
        let mut ranges: BTreeMap<SeedRange, BTreeSet<u64>> = BTreeMap::new();
        for (r, _) in records {
            ranges.entry(r.range).or_default().insert(r.shard.count);
        }
        let mut out = Missing {
            total: 0,
            first: None,
            lines: Vec::new(),
        };
        for (range, counts) in &ranges {
            let present: Vec<u64> = by_seed.range(range.seeds()).map(|(s, _)| *s).collect();
            let total = range.seeds - present.len() as u64;
            if total == 0 {
                continue;
            }
            // The first missing seeds: a walk that meets at most present + LIST seeds.
            let mut listed = Vec::new();
            let mut have = present.iter().peekable();
            for s in range.seeds() {
                if have.next_if_eq(&&s).is_none() {
                    listed.push(s);
                    if listed.len() == LIST {
                        break;
                    }
                }
            }
            out.first = out.first.into_iter().chain(listed.first().copied()).min();
            let mut shown: Vec<String> = listed.iter().map(u64::to_string).collect();
            if (listed.len() as u64) < total {
                shown.push("...".into());
            }
            let shards = counts
                .iter()
                .map(|&n| Self::by_shard(*range, n, &present))
                .collect::<Vec<_>>()
                .join("; ");
            out.lines.push(format!(
                "{total} of the {} seeds of {range} have no record ({}){shards}",
                range.seeds,
                shown.join(", ")
            ));
            out.total += total;
        }
        out
    }

    /// The shards (of `count`) short of seeds, for up to 10,000 shards.
    fn by_shard(range: SeedRange, count: u64, present: &[u64]) -> String {
        if count > 10_000 {
            return String::new();
        }
        let mut have: BTreeMap<u64, u64> = BTreeMap::new();
        for s in present {
            *have.entry(s % count).or_default() += 1;
        }
        let (mut empty, mut short) = (Vec::new(), Vec::new());
        for index in 0..count {
            let shard = Shard { index, count };
            let expected = in_shard(range, shard);
            match have.get(&index).copied().unwrap_or(0) {
                _ if expected == 0 => {}
                0 => empty.push(shard.to_string()),
                n if n < expected => {
                    short.push(format!("{shard} ({} of {expected})", expected - n))
                }
                _ => {}
            }
        }
        let mut parts = Vec::new();
        if !empty.is_empty() {
            parts.push(format!("shards with no record: {}", empty.join(" ")));
        }
        if !short.is_empty() {
            parts.push(format!("shards missing some: {}", short.join(" ")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {}", parts.join("; "))
        }
    }
}

/// How many seeds of `range` fall in `shard`.
fn in_shard(range: SeedRange, shard: Shard) -> u64 {
    // Seeds below x in the shard.
    let below = |x: u64| x / shard.count + u64::from(x % shard.count > shard.index);
    let r = range.seeds();
    below(r.end) - below(r.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_in_a_shard_are_counted() {
        for (first, seeds) in [(0, 100), (3, 10), (7, 1), (5, 0), (0, 3)] {
            for count in 1..6 {
                let range = SeedRange { first, seeds };
                let mut total = 0;
                for index in 0..count {
                    let shard = Shard { index, count };
                    let n = in_shard(range, shard);
                    assert_eq!(n, range.seeds().filter(|&s| shard.holds(s)).count() as u64);
                    total += n;
                }
                assert_eq!(total, seeds);
            }
        }
    }
}
