//! `taskotron-trigger run --config FILE`: the long-running service.

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::fedmsg::Envelope;
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

    let subs = state.pipeline.subscriptions();
    tracing::info!(subscriptions = ?subs, "subscribing");
    let (tx, mut rx) = mpsc::channel(1024);
    crate::bus::start(&state.cfg.endpoints, &state.cfg.bind_endpoints, &subs, tx).await?;
    crate::health::set_ready(true);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tracing::info!("trigger running");
    loop {
        tokio::select! {
            Some(m) = rx.recv() => {
                let env = match Envelope::from_frames(&m.topic, &m.body, state.cfg.max_message_bytes) {
                    Ok(e) => e,
                    Err(e) => {
                        crate::metrics::global().malformed();
                        tracing::warn!(topic = %String::from_utf8_lossy(&m.topic), error = %e, "dropping malformed message");
                        continue;
                    }
                };
                crate::metrics::global().message(&env.topic);
                if let Err(e) = state.handle(env, &m.body).await {
                    tracing::error!(error = %e, "message handling failed");
                }
            }
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
