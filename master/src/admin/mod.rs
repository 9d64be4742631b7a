//! The admin CLI: `taskotron-master jobs list|show|cancel|retry`, `workers
//! list|pause|unpause|drain` and `submit`, talking to a running master over HTTP with a token
//! (`Authorization: Bearer`). Reads use `/api/ops/...`; changes use the Buildbot REST API's
//! JSON-RPC calls, exactly as any other client would. Tables by default, `--json` for scripts.
//!
//! Where the master is: `--url`, else `$TASKOTRON_MASTER_URL`, else `http.listen` of the config
//! file (`--config`), else `http://127.0.0.1:8010`. The token: `--token`, else
//! `$TASKOTRON_TOKEN`, else the first of `auth.tokens` in the config file when it is readable.

pub(crate) mod client;
mod jobs;
mod submit;
mod table;
mod workers;

use std::path::Path;

use clap::{Args, Subcommand};

pub use client::Client;

/// How to reach the master; shared by every admin command.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Base URL of the master's HTTP listener [env: TASKOTRON_MASTER_URL].
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// API token (one of the master's `auth.tokens`) [env: TASKOTRON_TOKEN].
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Jobs (build requests) on a running master.
    Jobs {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        cmd: jobs::JobsCmd,
    },
    /// Workers of a running master: list, pause, unpause, drain.
    Workers {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        cmd: workers::WorkersCmd,
    },
    /// Queue a job by hand (like Taskotron's force scheduler).
    Submit(submit::SubmitArgs),
}

/// Runs an admin command; `config` is only read to find the URL and token.
pub fn run(config: &Path, cmd: AdminCmd) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cmd {
            AdminCmd::Jobs { api, cmd } => jobs::run(&Client::new(config, &api)?, &api, cmd).await,
            AdminCmd::Workers { api, cmd } => {
                workers::run(&Client::new(config, &api)?, &api, cmd).await
            }
            AdminCmd::Submit(a) => submit::run(&Client::new(config, &a.api)?, &a).await,
        }
    })
}
