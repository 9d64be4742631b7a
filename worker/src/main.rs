//! `taskotron-worker`: the buildslave agent. See `taskotron-worker --help` and docs/worker.md.

use clap::Parser;
use taskotron_worker::cli::{self, Cli, Command};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CreateWorker(a) => cli::create_worker::run(*a).map(|()| 0),
        Command::Start(a) => cli::start::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("taskotron-worker: error: {e:#}");
            std::process::exit(1);
        }
    }
}
