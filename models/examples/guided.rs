//! Debug aid: walks a model along a script, one step per line of stdin, each naming a substring of
//! the rendered action to take (the first enabled action containing it), and prints which safety
//! properties fail at the end. Used to check by hand that a scenario from docs/bugs.md is
//! reachable before asking the checker to find it. Model options as in the CLI, e.g.
//! `cargo run --release -p models --example guided -- --bug isr-before-epoch-start --crashes 1`.
use models::cluster::{build, ModelKind, ModelOptions};
use seedlog::node::Durability;
use std::io::BufRead;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = ModelOptions::defaults(ModelKind::Replication);
    o.reader = false;
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--brokers" => o.brokers = v.parse().expect("number"),
            "--records" => o.records = v.parse().expect("number"),
            "--crashes" => o.crashes = v.parse().expect("number"),
            "--expiries" => o.expiries = v.parse().expect("number"),
            "--evictions" => o.evictions = v.parse().expect("number"),
            "--max-changes" => o.max_changes = v.parse().expect("number"),
            "--min-insync" => o.min_insync_replicas = v.parse().expect("number"),
            "--durability" => o.durability = v.parse::<Durability>().expect("durability"),
            "--bug" => o.bugs.push(v.parse().expect("bug")),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    let m = build(&o);
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| l.expect("stdin").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let steps: Vec<&str> = lines.iter().map(String::as_str).collect();
    match models::script::walk(&m, &steps) {
        Ok(path) => {
            let last = path.last_state().clone();
            print!("{}", models::render::path(&m, path));
            println!("violated: {:?}", models::properties::violated(&m, &last));
        }
        Err(e) => println!("{e}"),
    }
}
