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
    CreateWorker(Box<create_worker::Args>),
    /// Run the worker in the foreground.
    ///
    /// SIGTERM (or the first SIGINT): ask the master to drain this worker (op
    /// `graceful_shutdown`, a Taskotron extension): taskotron-master lets the running build
    /// finish, then sends `shutdown` and the worker exits 0. A master that does not know the op
    /// (stock Buildbot) or does not answer within `graceful_timeout` seconds: finish the running
    /// command, refuse new ones, exit 0. A second SIGTERM: finish only the running command, then
    /// exit 0. A second SIGINT: kill running commands and exit 1.
    Start(start::Args),
}
