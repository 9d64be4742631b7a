//! taskotron-worker binary (being built; see README.md).
use clap::Parser;

/// Taskotron worker.
#[derive(Parser)]
#[command(name = "taskotron-worker", version)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
