//! `shrink`: the smallest scenario (fewer faults, then fewer clients and a shorter fault phase)
//! that still fails the same way.

use super::ShrinkArgs;
use crate::sim::shrink::shrink;
use std::path::PathBuf;

pub fn main(args: &ShrinkArgs) -> i32 {
    let sc = match args.source.load() {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("error: {e}");
            println!("RESULT error reason=bad-input");
            return 2;
        }
    };
    let before = sc.schedule.events.len();
    let Some(shrunk) = shrink(&sc) else {
        println!("seed {} does not fail: nothing to shrink", sc.seed);
        println!("RESULT ok seed={} faults={before}", sc.seed);
        return 0;
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("shrunk-seed-{}.json", sc.seed)));
    let json = serde_json::to_string_pretty(&shrunk.scenario).unwrap_or_default();
    if let Err(e) = std::fs::write(&out, json + "\n") {
        eprintln!("error: cannot write {}: {e}", out.display());
        println!("RESULT error reason=io");
        return 2;
    }
    println!(
        "still fails with {} after {} runs; fault phase {} ms (was {}); {}",
        shrunk.problem,
        shrunk.runs,
        shrunk.scenario.fault_ms,
        sc.fault_ms,
        shrunk.scenario.summary()
    );
    println!("remaining faults:");
    for f in &shrunk.scenario.schedule.events {
        println!(
            "  at {:>6} ms: {}{}",
            f.at_ms,
            serde_json::to_string(&f.fault).unwrap_or_default(),
            f.until_ms
                .map(|u| format!(" (waits for its role until {u} ms)"))
                .unwrap_or_default()
        );
    }
    println!(
        "saved to {}; replay: cargo sim replay --schedule {} --trace",
        out.display(),
        out.display()
    );
    println!(
        "RESULT violation seed={} problem={} faults_before={before} faults_after={} runs={}",
        sc.seed,
        shrunk.problem,
        shrunk.scenario.schedule.events.len(),
        shrunk.runs
    );
    1
}
