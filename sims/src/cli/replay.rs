//! `replay`: one run, reproduced exactly from its seed or from a saved scenario, with its trace as
//! a timeline and its history written to a file.

use super::run::divergence;
use super::ReplayArgs;
use crate::sim::run::{problem_name, run};
use std::path::PathBuf;

pub fn main(args: &ReplayArgs) -> i32 {
    let sc = match args.source.load() {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("error: {e}");
            println!("RESULT error reason=bad-input");
            return 2;
        }
    };
    if let Some(path) = &args.save_schedule {
        let json = serde_json::to_string_pretty(&sc).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            println!("RESULT error reason=io");
            return 2;
        }
        println!("scenario saved to {}", path.display());
    }
    println!("seed {}: {}", sc.seed, sc.summary());
    if let Some(m) = &sc.from_model {
        println!("exported from the model checker: {}", m.command);
        println!(
            "model property {}; the same violation here: {}",
            m.property,
            if m.expect.is_empty() {
                "none (no simulator check sees it)".to_string()
            } else {
                m.expect.join(" or ")
            }
        );
        for step in &m.steps {
            println!("  model step {step}");
        }
        for w in &m.warnings {
            println!("warning: {w}");
        }
    }
    let clocks = sc.clocks_line();
    if !clocks.is_empty() {
        println!("  clocks (offset from true time at the start, drift): {clocks}");
    }
    for f in &sc.schedule.events {
        println!(
            "  fault at {:>6} ms: {}{}",
            f.at_ms,
            serde_json::to_string(&f.fault).unwrap_or_default(),
            f.until_ms
                .map(|u| format!(" (waits for its role until {u} ms)"))
                .unwrap_or_default()
        );
    }
    let keep = args.trace || args.check_determinism;
    let outcome = run(&sc, keep);
    if args.trace {
        print_timeline(&outcome.trace, &args.nodes);
    }
    let history_path = args
        .history
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("history-seed-{}.jsonl", sc.seed)));
    match crate::sim::history::write(&history_path, &outcome.observed, &sc) {
        Ok(n) => println!("history: {n} events written to {}", history_path.display()),
        Err(e) => eprintln!("warning: cannot write the history: {e}"),
    }
    let mut problems = outcome.problems.clone();
    if args.check_determinism {
        let again = run(&sc, true);
        match divergence(&outcome, &again) {
            Some(d) => problems.insert(0, d),
            None => println!(
                "determinism: both runs identical ({} events)",
                outcome.events
            ),
        }
    }
    for p in &problems {
        println!("{p}");
    }
    println!(
        "trace hash {:016x} ({} events, {} simulated ms)",
        outcome.trace_hash, outcome.events, outcome.sim_ms
    );
    // An exported model counterexample: did the same violation happen?
    let model = sc.from_model.as_ref().map(|m| {
        let found = m.matching(&problems);
        match found {
            Some(p) => println!("model property {} reproduced: {p}", m.property),
            None => println!(
                "model property {} NOT reproduced (expected {})",
                m.property,
                if m.expect.is_empty() {
                    "a check the simulator does not have".to_string()
                } else {
                    m.expect.join(" or ")
                }
            ),
        }
        format!(
            " model_property={} reproduced={}",
            m.property,
            if found.is_some() { "yes" } else { "no" }
        )
    });
    let model = model.unwrap_or_default();
    match problems.first() {
        None => {
            println!(
                "RESULT ok seed={} hash={:016x} events={} sim_secs={:.1}{model}",
                sc.seed,
                outcome.trace_hash,
                outcome.events,
                outcome.sim_ms as f64 / 1000.0
            );
            0
        }
        Some(p) => {
            let name = problem_name(p);
            println!(
                "RESULT violation seed={} problem={name} problems={} hash={:016x}{model}",
                sc.seed,
                problems.len(),
                outcome.trace_hash
            );
            1
        }
    }
}

/// The trace as a timeline: one line per event, time first, then the node, optionally filtered.
fn print_timeline(trace: &seedlog::runtime::trace::Trace, nodes: &[String]) {
    let Some(events) = trace.events() else {
        return;
    };
    for e in events {
        if nodes.is_empty() || nodes.iter().any(|n| n == &e.node) {
            println!(
                "{:>6}.{:03}s  {:<12} {}",
                e.time_ms / 1000,
                e.time_ms % 1000,
                e.node,
                e.what
            );
        }
    }
}
