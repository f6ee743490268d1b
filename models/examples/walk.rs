//! Debug aid: a random walk through a model, printing each step and the final state.
//! `cargo run --release -p models --example walk -- [replication|offsets] SEED STEPS [CRASHES] [CONSUMERS]`
use models::cluster::{build, ModelKind, ModelOptions};
use stateright::Model;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let kind = match args.get(1).map(String::as_str) {
        Some("offsets") => ModelKind::Offsets,
        Some("replication") | None => ModelKind::Replication,
        Some(other) => {
            eprintln!("unknown model '{other}'; expected replication or offsets");
            std::process::exit(2);
        }
    };
    let seed = arg(2, 1);
    let steps = arg(3, 40) as usize;
    let mut o = ModelOptions::defaults(kind);
    o.crashes = arg(4, 0) as usize;
    if kind == ModelKind::Offsets {
        o.consumers = arg(5, 2) as usize;
        o.expiries = o.crashes.min(1);
    } else {
        o.records = 1;
        o.max_changes = 1;
    }
    let m = build(&o);
    let mut s = m.init_states().remove(0);
    let mut rng = seed;
    for i in 0..steps {
        let steps: Vec<_> = m
            .next_steps(&s)
            .into_iter()
            .filter(|(_, st)| models::properties::within_boundary(&m.cfg, st))
            .collect();
        if steps.is_empty() {
            println!("stuck");
            break;
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (a, next) = steps[(rng >> 33) as usize % steps.len()].clone();
        println!(
            "{i:>3} [{} choices] {}",
            steps.len(),
            models::render::action(&m, &a)
        );
        s = next;
    }
    print!("{}", models::render::final_state(&m, &s));
}
