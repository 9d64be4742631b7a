//! taskotron-trigger binary (being built; see README.md).
use clap::Parser;

/// Taskotron trigger.
#[derive(Parser)]
#[command(name = "taskotron-trigger", version)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
