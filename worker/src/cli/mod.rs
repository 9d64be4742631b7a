//! Command line of `taskotron-worker`: `create-worker` and `start`.

pub mod create_worker;
pub mod start;

use clap::{Parser, Subcommand};

/// Taskotron worker: runs builds for a Buildbot-compatible master (taskotron-master or a stock
/// Buildbot 4.x) over the msgpack_experimental_v7 WebSocket protocol.
#[derive(Debug, Parser)]
#[command(name = "taskotron-worker", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a worker base directory: BASEDIR/worker.yaml and BASEDIR/info/{admin,host,arch}.
    CreateWorker(create_worker::Args),
    /// Run the worker in the foreground (SIGTERM: finish the running command, then exit;
    /// SIGINT twice: kill running commands and exit).
    Start(start::Args),
}
