//! KojiTagChanged debouncing: when Bodhi pushes, hundreds of builds are tagged into the same
//! `-pending` tag within minutes. The first message lights a fuse for the tag; messages for
//! the same tag while it burns are absorbed; when it burns down (`fuse_delay` seconds) the
//! tag's jobs are created once. Fuses live in the outbox database, so a restart keeps them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::pipeline::Pipeline;
use crate::submit::Outbox;

/// Fires due fuses forever. `wake` is notified when a fuse is lit; `submit` after jobs are made.
pub async fn run_fuses(
    pipeline: Arc<Pipeline>,
    outbox: Arc<Outbox>,
    wake: Arc<Notify>,
    submit: Arc<Notify>,
) {
    loop {
        let next = match fire_due(&pipeline, &outbox, &submit).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "fuses: cannot read state");
                Some(5.0)
            }
        };
        let wait = Duration::from_secs_f64(next.unwrap_or(60.0).clamp(0.01, 60.0));
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

async fn fire_due(
    pipeline: &Arc<Pipeline>,
    outbox: &Arc<Outbox>,
    submit: &Arc<Notify>,
) -> anyhow::Result<Option<f64>> {
    let (due, next) = outbox.due_fuses()?;
    for fuse in due {
        let data = match serde_json::from_str::<serde_json::Value>(&fuse.data) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                tracing::error!(tag = %fuse.tag, "fuses: stored data unreadable; dropping fuse");
                outbox.fire_fuse(&fuse.tag, &[])?;
                continue;
            }
        };
        let p = pipeline.clone();
        let msg_id = fuse.msg_id.clone();
        let jobs = tokio::task::spawn_blocking(move || p.jobs(&data, &msg_id)).await?;
        let jobs: Vec<_> = jobs.into_iter().map(|(_, j)| j).collect();
        tracing::info!(tag = %fuse.tag, jobs = jobs.len(), "fuse burnt down");
        outbox.fire_fuse(&fuse.tag, &jobs)?;
        submit.notify_one();
    }
    Ok(next)
}
