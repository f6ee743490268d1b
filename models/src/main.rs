//! `models check <model>` runs the model checker; `models explore <model>` serves stateright's
//! Explorer. Exit codes: 0 all properties hold, 1 a violation (or an unreached `sometimes`),
//! 2 bad usage.

use clap::{Args, Parser, Subcommand, ValueEnum};
use models::check::{check, Outcome, RunOptions, Search, Violation};
use models::cluster::{build, ModelKind, ModelOptions};
use models::quorum::Start;
use seedlog::node::{Bug, Durability};
use stateright::Model;
use std::io::Write;
use std::process::ExitCode;

// The checker clones and drops whole system states for every successor: with the system
// allocator, malloc and free were over a third of its time (perf, README measurements).
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, asked for an alignment only when it needs one. (`mimalloc::MiMalloc` calls
/// `mi_malloc_aligned` for every allocation, whose slower paths were a tenth of the checker's
/// instructions, callgrind; `mi_malloc` aligns every block to at least a pointer's size.)
struct Mimalloc;

/// The alignment every `mi_malloc` block has.
const MI_MIN_ALIGN: usize = std::mem::size_of::<usize>();

// SAFETY: every block comes from mimalloc with at least the layout's alignment (`mi_malloc` and
// `mi_zalloc` blocks are pointer-aligned; larger alignments go to the aligned functions) and is
// freed or resized by mimalloc, as `GlobalAlloc` requires.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_malloc, mi_malloc_aligned};
        match layout.align() <= MI_MIN_ALIGN {
            true => unsafe { mi_malloc(layout.size()) as *mut u8 },
            false => unsafe { mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
        match layout.align() <= MI_MIN_ALIGN {
            true => unsafe { mi_zalloc(layout.size()) as *mut u8 },
            false => unsafe { mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        unsafe { libmimalloc_sys::mi_free(ptr as *mut std::ffi::c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        use libmimalloc_sys::{mi_realloc, mi_realloc_aligned};
        let ptr = ptr as *mut std::ffi::c_void;
        match layout.align() <= MI_MIN_ALIGN {
            true => unsafe { mi_realloc(ptr, new) as *mut u8 },
            false => unsafe { mi_realloc_aligned(ptr, new, layout.align()) as *mut u8 },
        }
    }
}

#[derive(Parser)]
#[command(
    name = "models",
    about = "Model-check seedlog's state machines with stateright"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explore every reachable state within the bounds and check the properties.
    Check {
        #[command(flatten)]
        model: ModelArgs,
        /// Checker threads.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
        threads: u32,
        /// Stop exploring paths longer than this (the run is then not exhaustive).
        #[arg(long)]
        max_depth: Option<usize>,
        /// Search order: bfs finds shortest counterexamples, dfs uses less memory, random runs
        /// seeded random walks (not exhaustive; a counterexample found is shrunk). Default bfs;
        /// with `--preset`, dfs with `--symmetry`.
        #[arg(long, value_enum)]
        search: Option<SearchArg>,
        /// Seed of `--search random`.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop after this many states (the run is then not exhaustive). `--search random`
        /// defaults to 5000000.
        #[arg(long)]
        max_states: Option<usize>,
        /// Quorum model with `--search dfs`: remember one state per class of states equal up to
        /// renaming the voters (symmetry reduction). On with `--preset` unless `--search` is given.
        #[arg(long)]
        symmetry: bool,
        /// Replication model: write the counterexample, if one is found, as a simulator
        /// scenario to this file (`cargo sim replay --schedule FILE` runs it; README, *Model
        /// counterexamples in the simulator*).
        #[arg(long, value_name = "FILE")]
        export_schedule: Option<std::path::PathBuf>,
    },
    /// Serve stateright's Explorer (a web UI to step through the model) on 127.0.0.1.
    Explore {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

#[derive(Args)]
struct ModelArgs {
    #[arg(value_enum)]
    model: ModelArg,
    /// Brokers (default: 3 for replication, 2 for partitioning and offsets).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=7))]
    brokers: Option<u32>,
    /// Records the producer sends (default: 1 for replication, 4 for partitioning); for offsets,
    /// records pre-filled in each data partition (default 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    records: Option<u32>,
    /// Crash-restarts allowed in a run, each with or without loss of unsynced data.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    crashes: Option<u32>,
    /// Session expiries the controller may act on (fencing a crashed or cut-off broker); in the
    /// quorum model, election timeouts (default 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    expiries: Option<u32>,
    /// Times a leader may evict a lagging follower from the ISR.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    evictions: Option<u32>,
    /// Retention runs that may delete records (each deletes every committed record of the data
    /// topic, at any moment); 0 turns retention off.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=4))]
    retentions: Option<u32>,
    /// Bound on committed controller changes (fencings, elections, ISR changes).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=32))]
    max_changes: Option<u64>,
    /// min.insync.replicas.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=7))]
    min_insync: Option<u32>,
    /// Turn on a historical bug (repeatable).
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// When a write counts as committed: replicated (Kafka's default) or fsync.
    #[arg(long, value_parser = parse_durability)]
    durability: Option<Durability>,
    /// Offsets model: partitions of the data topic (default 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4))]
    partitions: Option<u32>,
    /// Offsets model: members of the consumer group (default 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4))]
    consumers: Option<u32>,
    /// Offsets model: group member sessions the coordinator may expire (default 0).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    member_expiries: Option<u32>,
    /// Offsets model: group requests that may be refused to members, in all (default 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=16))]
    refusals: Option<u32>,
    /// Offsets model: only consumers crash (brokers keep running).
    #[arg(long)]
    consumer_crashes_only: bool,
    /// Leave out the reader (replication model): consumed-stable and hw-monotonic are then not
    /// checked, in exchange for far fewer interleavings in deep bug searches.
    #[arg(long)]
    no_reader: bool,
    /// The producer's max.in.flight (default 1). Above 1 the producer is idempotent, as Kafka
    /// requires for ordering.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    max_in_flight: Option<u32>,
    /// An idempotent producer (producer id, sequence numbers, the leader's window of batches)
    /// even with one batch in flight; adds the properties no-duplicates and acked-in-order.
    #[arg(long)]
    idempotent: bool,
    /// Replication model: controllers (default 1, the single standalone controller). More run
    /// a controller quorum of that many voters, the first leading and active at start; their
    /// election timeouts count against --expiries, their crashes against --crashes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    controllers: Option<u32>,
    /// Quorum model: no voter may go past this epoch (default 2): bounds the elections.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8))]
    max_epoch: Option<u32>,
    /// Quorum model: the voters' state at the first start: empty (a new quorum), formed (the
    /// state a new quorum reaches once voter 0 is elected and every voter holds its committed
    /// leader change), or figure-8 (Raft's Figure 8 after its first two elections; see
    /// docs/quorum.md). Default empty; formed with `--preset target`.
    #[arg(long, value_enum)]
    start: Option<StartArg>,
    /// Quorum model: named bounds. `target`: the bounds that hold exhaustively in minutes with
    /// all three `sometimes` reached — a formed quorum, 2 records, 1 crash, 1 election timeout,
    /// max epoch 2, searched depth-first with the symmetry reduction (docs/quorum.md). Any
    /// bound given as well overrides the preset's.
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Quorum model: any message in flight may be delivered next (stateright's unordered,
    /// non-duplicating network), not only the oldest of its channel.
    #[arg(long)]
    unordered: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PresetArg {
    Target,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StartArg {
    Empty,
    #[value(name = "figure-8")]
    Figure8,
    Formed,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Replication,
    Partitioning,
    Offsets,
    Quorum,
}

#[derive(Clone, Copy, ValueEnum)]
enum SearchArg {
    Bfs,
    Dfs,
    Random,
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    s.parse()
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

impl ModelArgs {
    fn options(&self) -> Result<ModelOptions, String> {
        let kind = match self.model {
            ModelArg::Replication => ModelKind::Replication,
            ModelArg::Partitioning => ModelKind::Partitioning,
            ModelArg::Offsets => ModelKind::Offsets,
            ModelArg::Quorum => ModelKind::Quorum,
        };
        let mut o = ModelOptions::defaults(kind);
        match (kind, self.preset) {
            (ModelKind::Quorum, Some(PresetArg::Target)) => o = ModelOptions::quorum_target(),
            (_, Some(_)) => return Err("--preset applies to the quorum model only".into()),
            (_, None) => {}
        }
        if let Some(b) = self.brokers {
            o.brokers = b as usize;
            o.min_insync_replicas = o.min_insync_replicas.min(o.brokers);
        }
        if let Some(r) = self.records {
            o.records = r as usize;
        }
        if let Some(c) = self.crashes {
            o.crashes = c as usize;
        }
        if let Some(e) = self.expiries {
            o.expiries = e as usize;
        }
        if let Some(e) = self.evictions {
            o.evictions = e as usize;
        }
        if let Some(r) = self.retentions {
            o.retentions = r as usize;
        }
        if let Some(m) = self.max_changes {
            o.max_changes = m;
        }
        if let Some(m) = self.min_insync {
            if m as usize > o.brokers {
                return Err(format!(
                    "--min-insync {m} is more than the {} brokers",
                    o.brokers
                ));
            }
            o.min_insync_replicas = m as usize;
        }
        if let Some(d) = self.durability {
            o.durability = d;
        }
        if let Some(p) = self.partitions {
            o.partitions = p;
        }
        if let Some(c) = self.consumers {
            o.consumers = c as usize;
        }
        if let Some(e) = self.member_expiries {
            o.member_expiries = e as usize;
        }
        if let Some(r) = self.refusals {
            o.refusals = r as usize;
        }
        if self.consumer_crashes_only {
            o.broker_crashes = false;
        }
        if o.kind != ModelKind::Offsets
            && (self.partitions.is_some()
                || self.consumers.is_some()
                || self.member_expiries.is_some()
                || self.refusals.is_some()
                || self.consumer_crashes_only)
        {
            return Err(
                "--partitions, --consumers, --member-expiries, --refusals and --consumer-crashes-only apply to the offsets model only"
                    .into(),
            );
        }
        o.bugs = self.bugs.clone();
        if let Some(m) = self.max_in_flight {
            o.max_in_flight = m as usize;
        }
        o.idempotent = self.idempotent || o.max_in_flight > 1;
        match (o.kind, self.max_epoch) {
            (ModelKind::Quorum, Some(e)) => o.max_epoch = e,
            (ModelKind::Quorum, None) => {}
            (_, Some(_)) => return Err("--max-epoch applies to the quorum model only".into()),
            (_, None) => {}
        }
        if self.no_reader {
            o.reader = false;
        }
        if self.unordered && o.kind != ModelKind::Quorum {
            return Err("--unordered applies to the quorum model only".into());
        }
        o.unordered = self.unordered;
        match (o.kind, self.start) {
            (ModelKind::Quorum, Some(StartArg::Empty)) => o.quorum_start = Start::Empty,
            (ModelKind::Quorum, Some(StartArg::Figure8)) => o.quorum_start = Start::Figure8,
            (ModelKind::Quorum, Some(StartArg::Formed)) => o.quorum_start = Start::Formed,
            (_, None | Some(StartArg::Empty)) => {}
            (_, Some(StartArg::Figure8 | StartArg::Formed)) => {
                return Err("--start applies to the quorum model only".into())
            }
        }
        match (o.kind, self.controllers) {
            (ModelKind::Replication, Some(c)) => o.controllers = c as usize,
            (_, Some(_)) => {
                return Err("--controllers applies to the replication model only".into())
            }
            (_, None) => {}
        }
        Ok(o)
    }
}

fn describe(o: &ModelOptions) -> String {
    let bugs: Vec<&str> = o.bugs.iter().map(|b| b.name()).collect();
    if o.kind == ModelKind::Quorum {
        let bugs = if bugs.is_empty() {
            "none".to_string()
        } else {
            bugs.join(",")
        };
        let start = match o.quorum_start {
            Start::Empty => "",
            Start::Figure8 => " start=figure-8",
            Start::Formed => " start=formed",
        };
        let start = match o.unordered {
            false => start.to_string(),
            true => format!("{start} network=unordered"),
        };
        return format!(
            "model=quorum voters={} records={} crashes={} election_timeouts={} max_epoch={}{start} bugs={bugs}",
            o.brokers, o.records, o.crashes, o.expiries, o.max_epoch
        );
    }
    format!(
        "model={} brokers={}{} records={} crashes={} expiries={} evictions={}{} max_changes={} min_insync={} durability={} bugs={}{}",
        o.kind.name(),
        o.brokers,
        if o.controllers > 1 {
            format!(" controllers={}", o.controllers)
        } else {
            String::new()
        },
        o.records,
        o.crashes,
        o.expiries,
        o.evictions,
        if o.retentions > 0 {
            format!(" retentions={}", o.retentions)
        } else {
            String::new()
        },
        o.max_changes,
        o.min_insync_replicas,
        match (o.idempotent, o.max_in_flight) {
            (false, _) => o.durability.to_string(),
            (true, m) => format!("{} idempotent max_in_flight={m}", o.durability),
        },
        if bugs.is_empty() { "none".to_string() } else { bugs.join(",") },
        match o.kind {
            ModelKind::Offsets => format!(
                " partitions={} consumers={} member_expiries={} refusals={}{}",
                o.partitions,
                o.consumers,
                o.member_expiries,
                o.refusals,
                if o.broker_crashes {
                    ""
                } else {
                    " consumer_crashes_only"
                }
            ),
            _ if o.reader => String::new(),
            _ => " reader=none".to_string(),
        }
    )
}

fn report(o: &Outcome) -> ExitCode {
    println!(
        "explored: {} unique states ({} total), max depth {}, {:.1}s",
        o.unique_states, o.states, o.max_depth, o.secs
    );
    for name in &o.reached {
        println!("  sometimes {name}: reached");
    }
    // After a violation the search stopped early, so "not reached yet" means nothing.
    if o.violation.is_none() {
        for name in &o.unreached {
            println!("  sometimes {name}: NEVER REACHED");
        }
    }
    if let Some(v) = &o.violation {
        println!("  always {}: VIOLATED at depth {}", v.property, v.depth);
        println!("counterexample:");
        print!("{}", v.trace);
        println!(
            "RESULT violation model={} property={} depth={}",
            o.model, v.property, v.depth
        );
        return ExitCode::from(1);
    }
    if let Some(name) = o.unreached.first() {
        println!(
            "RESULT violation model={} property=sometimes:{} depth={}",
            o.model,
            name.replace(' ', "-"),
            o.max_depth
        );
        return ExitCode::from(1);
    }
    let rate = o.unique_states as f64 / o.secs.max(1e-9);
    if !o.exhaustive {
        println!("  note: the search was bounded or random, not exhaustive: 'ok' is no proof");
    }
    println!(
        "RESULT ok model={} unique_states={} secs={:.1} states_per_sec={:.0}{}",
        o.model,
        o.unique_states,
        o.secs,
        rate,
        if o.exhaustive {
            ""
        } else {
            " exhaustive=false"
        }
    );
    ExitCode::SUCCESS
}

/// Writes the violation's path as a simulator scenario; exit 1 (the violation) if written,
/// 2 if it cannot be.
fn export(opts: &models::cluster::ModelOptions, file: &std::path::Path, v: &Violation) -> ExitCode {
    // The command that found it, without where it was written.
    let mut args = Vec::new();
    let mut skip = false;
    for a in std::env::args().skip(1) {
        if std::mem::take(&mut skip) || a.starts_with("--export-schedule=") {
            continue;
        }
        if a == "--export-schedule" {
            skip = true;
            continue;
        }
        args.push(a);
    }
    let command = format!("cargo check-model {}", args.join(" "));
    let model = build(opts);
    let sc = match models::export::export(opts, &command, &model, &v.path, v.property) {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let json = match serde_json::to_string_pretty(&sc) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot encode the scenario: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(file, json + "\n") {
        eprintln!("error: cannot write {}: {e}", file.display());
        return ExitCode::from(2);
    }
    for w in &sc.from_model.warnings {
        println!("export warning: {w}");
    }
    println!(
        "schedule exported to {} ({} faults, {} warnings, expect {}); replay: cargo sim replay --schedule {}",
        file.display(),
        sc.schedule.events.len(),
        sc.from_model.warnings.len(),
        if sc.from_model.expect.is_empty() {
            "no simulator check".to_string()
        } else {
            sc.from_model.expect.join("|")
        },
        file.display()
    );
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Not for `explore`, which serves the explorer over HTTP: a browser that hangs up is an
    // error the server handles, not the end of the checker.
    if !matches!(cli.command, Command::Explore { .. }) {
        seedlog::runtime::end_quietly_on_a_closed_pipe();
    }
    match cli.command {
        Command::Check {
            model,
            threads,
            max_depth,
            search,
            seed,
            max_states,
            symmetry,
            export_schedule,
        } => {
            // The preset's search, unless one is given: depth first, with the symmetry reduction.
            let preset_search = model.preset.is_some() && search.is_none();
            let search = search.unwrap_or(match preset_search {
                true => SearchArg::Dfs,
                false => SearchArg::Bfs,
            });
            let symmetry = symmetry || preset_search;
            let opts = match model.options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if export_schedule.is_some() && opts.kind != ModelKind::Replication {
                eprintln!(
                    "error: --export-schedule applies to the replication model only (the simulator runs no counterpart of the {} model's layout)",
                    opts.kind.name()
                );
                return ExitCode::from(2);
            }
            if symmetry && (opts.kind != ModelKind::Quorum || !matches!(search, SearchArg::Dfs)) {
                eprintln!("error: --symmetry applies to the quorum model with --search dfs only");
                return ExitCode::from(2);
            }
            let run = RunOptions {
                threads: threads as usize,
                max_depth,
                search: match search {
                    SearchArg::Bfs => Search::Bfs,
                    SearchArg::Dfs => Search::Dfs,
                    SearchArg::Random => Search::Random { seed },
                },
                max_states: match search {
                    SearchArg::Random => max_states.or(Some(5_000_000)),
                    _ => max_states,
                },
                symmetry,
            };
            println!("checking {} threads={}", describe(&opts), run.threads);
            let outcome = check(&opts, &run, |p| {
                println!(
                    "  progress: {} unique states, {} total, depth {}, {:.0}s",
                    p.unique_states, p.states, p.max_depth, p.secs
                );
                let _ = std::io::stdout().flush();
            });
            let code = report(&outcome);
            match (&export_schedule, &outcome.violation) {
                (Some(file), Some(v)) => export(&opts, file, v),
                (Some(_), None) => {
                    println!("nothing exported: no violation was found");
                    code
                }
                (None, _) => code,
            }
        }
        Command::Explore { model, port } => {
            let opts = match model.options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let addr = format!("127.0.0.1:{port}");
            println!(
                "serving the Explorer for {} on http://{addr}",
                describe(&opts)
            );
            build(&opts).checker().serve(addr.as_str());
            ExitCode::SUCCESS
        }
    }
}
