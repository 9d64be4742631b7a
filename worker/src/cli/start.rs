//! `taskotron-worker start BASEDIR`: run in the foreground until the master says `shutdown` or
//! a signal stops us.
//!
//! * SIGTERM (or a first SIGINT): graceful shutdown. We send the master `graceful_shutdown`
//!   (a Taskotron extension of the msgpack protocol, see `agent::graceful`). taskotron-master
//!   agrees, stops giving us builds, lets the running build finish (we keep accepting its
//!   commands) and then sends `shutdown`: exit 0. A stock Buildbot master answers "Command
//!   graceful_shutdown does not exist." (or no answer comes within `graceful_timeout`): we fall
//!   back to accepting no new commands, letting the running ones finish, and exiting 0. If the
//!   connection drops meanwhile, we do not reconnect and exit once no command runs.
//! * A second SIGTERM: switch to that fallback now (finish the running command, then exit 0;
//!   the rest of the build is refused and the master retries it elsewhere).
//! * A second SIGINT: kill running commands and exit 1.

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
                    _ = term.recv() => on_sigterm(&st),
                    _ = int.recv() => on_sigint(&st),
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

fn on_sigterm(st: &AgentState) {
    if st.stopping() {
        tracing::info!(
            running = st.running_count(),
            "SIGTERM again: already finishing running commands"
        );
    } else if st.graceful_requested() {
        // Stop first, then log: once the line is visible, new commands are refused.
        st.request_stop();
        tracing::info!(
            running = st.running_count(),
            "second SIGTERM: finishing running commands, then exiting (the rest of the build is refused)"
        );
    } else {
        st.request_graceful();
        tracing::info!(
            running = st.running_count(),
            "SIGTERM: graceful shutdown (finish the build, then disconnect; SIGTERM again: finish only the running command)"
        );
    }
}

fn on_sigint(st: &AgentState) {
    if st.winding_down() {
        tracing::warn!("second SIGINT: aborting running commands");
        st.request_abort();
    } else {
        st.request_graceful();
        tracing::info!(
            running = st.running_count(),
            "SIGINT: graceful shutdown (finish the build, then disconnect; Ctrl-C again to abort)"
        );
    }
}
