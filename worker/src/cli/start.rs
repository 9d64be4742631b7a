//! `taskotron-worker start BASEDIR`: run in the foreground until the master says `shutdown` or
//! a signal stops us. SIGTERM (or a first SIGINT): accept no new commands, let the running ones
//! finish, then exit 0. A second SIGINT: kill running commands and exit 1.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::agent::config::WorkerConfig;
use crate::agent::state::AgentState;
use crate::agent::worker::{self, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base directory made by `create-worker`.
    pub basedir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let basedir = std::path::absolute(&args.basedir)
        .with_context(|| format!("bad basedir {}", args.basedir.display()))?;
    let cfg = WorkerConfig::load(&basedir.join("worker.yaml"))?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let state = Arc::new(AgentState::default());
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {
                        // Stop first, then log: once the line is visible, new commands are refused.
                        st.request_stop();
                        tracing::info!(running = st.running_count(), "SIGTERM: finishing running commands, then exiting");
                    }
                    _ = int.recv() => {
                        if st.stopping() {
                            tracing::warn!("second SIGINT: aborting running commands");
                            st.request_abort();
                        } else {
                            st.request_stop();
                            tracing::info!(running = st.running_count(), "SIGINT: finishing running commands, then exiting (Ctrl-C again to abort)");
                        }
                    }
                }
            }
        });
        tracing::info!(basedir = %basedir.display(), master = %cfg.master, worker = %cfg.name, "worker starting");
        let exit = worker::run(cfg, &basedir, state).await;
        tracing::info!(?exit, "worker exiting");
        Ok(match exit {
            Exit::Clean => 0,
            Exit::Aborted => 1,
        })
    })
}
