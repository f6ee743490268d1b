//! `sims`: the simulator's command line. See `cli` and the README.

/// A sweep allocates and frees millions of small buffers (messages, log entries, trace
/// records): mimalloc makes that markedly cheaper than the system allocator. Addresses never
/// reach the simulation's decisions, so runs stay deterministic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    seedlog::runtime::end_quietly_on_a_closed_pipe();
    std::process::exit(sims::cli::main());
}
