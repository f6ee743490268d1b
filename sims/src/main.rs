fn main() {
    #[cfg(madsim)]
    {
        let seeds: u64 = std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        for seed in 0..seeds {
            let sc = sims::scenario::Scenario::from_seed(seed, &Default::default());
            let t = std::time::Instant::now();
            let o = sims::sim::run::run(&sc, std::env::var("TRACE").is_ok());
            if let (Ok(who), Some(ev)) = (std::env::var("TRACE"), o.trace.events()) {
                for e in ev.iter().filter(|e| e.node.contains(&who)) {
                    println!("{:>7} {:<12} {}", e.time_ms, e.node, e.what);
                }
            }
            println!(
                "seed {seed} {} hash={:016x} events={} sim_ms={} wall={:?} problems={:?} observed={}",
                sc.summary(),
                o.trace_hash,
                o.events,
                o.sim_ms,
                t.elapsed(),
                o.problems,
                o.observed.len()
            );
        }
    }
}
