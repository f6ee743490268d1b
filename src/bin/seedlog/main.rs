//! `seedlog`: the real thing. Starts a broker or a member of the controller quorum as a process
//! on TCP with a data directory, and offers small clients (produce, consume, metadata) to use
//! and test a cluster, and to create topics at runtime. The nodes are the same sans-IO state machines the simulator and the model
//! checker drive.

mod chaos;
mod client;
mod layout;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "seedlog", version, about = "A Kafka-style replicated log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one member of the controller quorum; the quorum's leader is the active controller
    /// (broker registration, liveness, elections).
    Controller(server::ControllerArgs),
    /// Run a broker.
    Broker(server::BrokerArgs),
    /// Send records; prints one JSON line per acknowledged record.
    Produce(client::ProduceArgs),
    /// Read records from every partition of a topic; prints one JSON line per record.
    Consume(client::ConsumeArgs),
    /// Print the cluster metadata (leaders, ISRs, brokers) as one JSON line.
    Metadata(client::MetadataArgs),
    /// Create a topic through the active controller (answered once the quorum committed it).
    CreateTopic(client::CreateTopicArgs),
    /// Start a cluster as processes, drive it with real Kafka clients while killing, pausing
    /// and restarting its nodes on a seeded schedule, and check the clients' history.
    Chaos(chaos::ChaosArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Controller(args) => server::controller(args).await,
            Command::Broker(args) => server::broker(args).await,
            Command::Produce(args) => client::produce(args).await,
            Command::Consume(args) => client::consume(args).await,
            Command::Metadata(args) => client::metadata(args).await,
            Command::CreateTopic(args) => client::create_topic(args).await,
            // Blocking: it runs processes and sleeps between faults, and nothing else runs.
            Command::Chaos(args) => chaos::chaos(args),
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            println!("RESULT error");
            std::process::exit(2);
        }
    }
}
