//! `sims`: the simulator's command line. See `cli` and the README.

fn main() {
    std::process::exit(sims::cli::main());
}
