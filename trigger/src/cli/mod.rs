//! Command line: `run`, `check-rules`, `replay`, `publish`. Exit codes: 0 ok, 1 failure,
//! 2 usage error.

mod check_rules;
mod handle;
mod publish;
mod replay;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use handle::State;

/// Taskotron trigger: turns fedmsg (ZeroMQ) and fedora-messaging (AMQP) messages into Taskotron jobs with trigger_rules.yml and
/// submits them to a Buildbot-compatible master's change hook.
#[derive(Parser)]
#[command(name = "taskotron-trigger", version)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Subscribe to the bus and submit jobs until stopped (SIGHUP reloads the rules).
    Run {
        /// Trigger config (YAML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the jobs a message would produce, one JSON object per line.
    CheckRules(check_rules::Args),
    /// Feed recorded messages (JSON lines, or datagrepper /raw pages) through the trigger.
    Replay(replay::Args),
    /// Publish messages on a ZeroMQ PUB socket or to an AMQP broker, for local testing.
    Publish(publish::Args),
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taskotron-trigger: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Run { config } => run::run(&config).await,
            Command::CheckRules(a) => check_rules::run(a).await,
            Command::Replay(a) => replay::run(a).await,
            Command::Publish(a) => publish::run(a).await,
        }
    });
    // Do not wait for a git still running in a discover: its messages stay in the inbox.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("taskotron-trigger: error: {e:#}");
            1
        }
    }
}
