//! `taskotron-master`: a Buildbot-compatible build master for Taskotron jobs.
//!
//! It accepts jobs on Buildbot's change hook and REST force scheduler, keeps them in SQLite,
//! mirrors the task repositories, and drives workers (ours or a stock buildbot-worker) over
//! Buildbot's `msgpack_experimental_v7` WebSocket protocol. See docs/master.md.

use taskotron_master::{admin, cli, config, server};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Taskotron master: change hook, REST API v2, task mirrors and the Buildbot worker protocol.
#[derive(Parser)]
#[command(name = "taskotron-master", version)]
struct Cli {
    /// Config file (YAML).
    #[arg(
        long,
        short,
        global = true,
        default_value = "/etc/taskotron/master.yaml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the master in the foreground (the default). SIGTERM stops it gracefully.
    Run,
    /// Check the config file and exit.
    CheckConfig,
    /// Manage workers in the config file.
    Worker {
        #[command(subcommand)]
        cmd: WorkerCmd,
    },
    /// Task mirrors.
    Mirror {
        #[command(subcommand)]
        cmd: MirrorCmd,
    },
    /// Delete the step logs and artifacts of jobs older than the config's `retention`, once
    /// (the running master does it every `retention.interval_hours`). Prints what went.
    Prune {
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    #[command(flatten)]
    Admin(admin::AdminCmd),
}

#[derive(Subcommand)]
enum WorkerCmd {
    /// Add a worker with a new random password (stored hashed) and print its credentials.
    Add {
        /// Worker name (what buildbot-worker's create-worker gets as NAME).
        name: String,
        /// Arch of the jobs it runs (used when the worker has no info/arch file).
        #[arg(long, default_value = "x86_64")]
        arch: String,
        /// Builds it runs at once.
        #[arg(long, default_value_t = 1)]
        max_builds: u32,
    },
}

#[derive(Subcommand)]
enum MirrorCmd {
    /// Refresh one task mirror (by name) or all of them, once: through the running master
    /// when there is one on this data_dir (its URL and token from the config, or --url and
    /// --token), else directly.
    Refresh {
        name: Option<String>,
        #[command(flatten)]
        api: admin::ApiArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let res = match cli.cmd.unwrap_or(Cmd::Run) {
        Cmd::Run => server::run(&cli.config),
        Cmd::CheckConfig => config::Config::load(&cli.config)
            .map(|_| println!("{}: ok", cli.config.display()))
            .map_err(Into::into),
        Cmd::Worker {
            cmd:
                WorkerCmd::Add {
                    name,
                    arch,
                    max_builds,
                },
        } => cli::worker_add(&cli.config, &name, &arch, max_builds),
        Cmd::Mirror {
            cmd: MirrorCmd::Refresh { name, api },
        } => cli::mirror_refresh(&cli.config, name.as_deref(), &api),
        Cmd::Prune { dry_run } => cli::prune(&cli.config, dry_run),
        Cmd::Admin(a) => admin::run(&cli.config, a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskotron-master: {e:#}");
            ExitCode::FAILURE
        }
    }
}
