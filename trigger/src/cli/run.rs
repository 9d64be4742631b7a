//! `taskotron-trigger run --config FILE`: the long-running service. Messages left in the inbox
//! and jobs left in the outbox by a previous run are picked up first.

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::rules::RuleSet;

use super::State;

pub async fn run(config: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let state = Arc::new(State::load(cfg)?);
    state.spawn_workers()?;
    if let Some(http) = &state.cfg.http {
        crate::health::spawn(state.clone(), http).await?;
    }
    let pending = state.outbox.pending()?;
    if pending > 0 {
        tracing::info!(pending, "resuming jobs left in the outbox");
    }

    // Bus -> intake thread (stores in the inbox) -> processor task (rules, discover pool).
    tokio::spawn(crate::process::run_processor(state.clone()));
    let (tx, rx) = mpsc::channel(1024);
    crate::intake::spawn(state.clone(), rx)?;
    let subs = state.pipeline.subscriptions();
    tracing::info!(subscriptions = ?subs, "subscribing");
    if let Some(amqp) = &state.cfg.amqp {
        crate::amqp::spawn(
            amqp.clone(),
            subs.clone(),
            state.cfg.max_message_bytes,
            tx.clone(),
        );
    }
    crate::bus::start(&state.cfg.endpoints, &state.cfg.bind_endpoints, &subs, tx).await?;
    crate::health::set_ready(true);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tracing::info!(
        discover_concurrency = state.cfg.discover_concurrency,
        discover_timeout_secs = state.cfg.discover_timeout_secs,
        inbox_capacity = state.cfg.inbox_capacity,
        "trigger running"
    );
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&state),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("trigger stopping");
    Ok(())
}

/// SIGHUP: re-read the rules; keep the old ones if the new file is bad.
fn reload(state: &State) {
    match RuleSet::load(&state.cfg.rules) {
        Ok(r) => {
            tracing::info!(rules = r.rules_count(), "rules reloaded");
            state.pipeline.set_rules(r);
        }
        Err(e) => tracing::error!(error = %e, "rules reload failed; keeping the previous rules"),
    }
}
