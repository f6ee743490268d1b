//! Debug aid: a random walk through a model, printing each step.
use models::cluster::{build, ModelKind, ModelOptions};
use stateright::Model;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut o = ModelOptions::defaults(ModelKind::Replication);
    o.records = 1;
    o.crashes = 0;
    o.max_changes = 1;
    let m = build(&o);
    let mut s = m.init_states().remove(0);
    let mut rng = seed;
    for i in 0..steps {
        let steps = m.next_steps(&s);
        let steps: Vec<_> = steps
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
