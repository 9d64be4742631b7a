//! taskotron-master binary (being built; see README.md).
use clap::Parser;

/// Taskotron master.
#[derive(Parser)]
#[command(name = "taskotron-master", version)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
