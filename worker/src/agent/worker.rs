//! The agent's lifecycle: connect, run a session, and on loss reconnect after a jittered
//! exponential backoff, until the master says `shutdown` or a local stop/abort completes.
//! Once a shutdown was requested (SIGTERM/SIGINT), a lost connection is not re-established:
//! the agent exits when no command runs any more.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::config::WorkerConfig;
use super::connection::{run_session, SessionEnd};
use super::state::AgentState;

/// How the agent finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Master `shutdown` or a graceful local stop.
    Clean,
    /// Second SIGINT: commands were killed.
    Aborted,
}

/// A session that lasted this long proves the master works: the backoff starts over.
const STABLE_SESSION: Duration = Duration::from_secs(10);

pub async fn run(cfg: WorkerConfig, basedir: &Path, state: Arc<AgentState>) -> Exit {
    let mut backoff = Backoff::new(0.5, cfg.maxdelay);
    loop {
        if state.aborting() {
            return Exit::Aborted;
        }
        if state.winding_down() {
            // A signal arrived while we were not connected: nothing to drain, nobody to ask.
            return wait_idle(&state).await;
        }
        let started = Instant::now();
        match run_session(&cfg, basedir, &state).await {
            Ok(SessionEnd::Shutdown) | Ok(SessionEnd::Stopped) => return Exit::Clean,
            Ok(SessionEnd::Aborted) => return Exit::Aborted,
            Ok(SessionEnd::Lost(why)) => {
                tracing::warn!(master = %cfg.master, reason = %why, "connection lost")
            }
            Ok(SessionEnd::Silent) => {
                tracing::warn!(master = %cfg.master, "master went silent")
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot connect"),
        }
        if started.elapsed() >= STABLE_SESSION {
            backoff.reset();
        }
        if state.winding_down() {
            // Nothing to finish without a master: commands were interrupted with the session.
            return wait_idle(&state).await;
        }
        let delay = backoff.next_delay();
        tracing::info!(delay_s = delay.as_secs_f64(), "reconnecting");
        let changed = state.changed.notified();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = changed => {}
        }
    }
}

/// Waits until no command runs (they were interrupted with the session, so this is quick),
/// then says how the agent ended.
async fn wait_idle(state: &AgentState) -> Exit {
    loop {
        let changed = state.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if state.running_count() == 0 {
            break;
        }
        changed.await;
    }
    if state.aborting() {
        Exit::Aborted
    } else {
        Exit::Clean
    }
}
