//! Matches pending build requests to idle workers: priority then FIFO (the order of
//! `Db::pending_requests`), builder `all` (noarch) on any worker, an arch builder only on
//! workers of that arch, at most `max_builds` per worker.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::state::Master;

/// Runs until shutdown begins; woken by `master.wake` and, as a safety net, every second.
pub async fn run(master: Arc<Master>) {
    loop {
        if master.shutting_down() {
            return;
        }
        dispatch(&master);
        tokio::select! {
            _ = master.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn dispatch(master: &Arc<Master>) {
    if master.workers.connected_count() == 0 {
        return;
    }
    // Only the head of the queue: reading (and JSON-decoding) every pending request on each
    // wake-up made dispatch O(queue) per build, ~50,000² row reads for a 50,000-deep queue.
    let free = master.workers.free_slots();
    if free == 0 {
        return;
    }
    let pending = match master.db.pending_requests_head(free) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot read the queue: {e}");
            return;
        }
    };
    for req in pending {
        if master.shutting_down() || !master.workers.has_capacity() {
            return;
        }
        let Some((conn, slot)) = master.workers.reserve(&req.buildername) else {
            continue;
        };
        let mut props: Map<String, Value> = req.properties.clone();
        let mut set = |k: &str, v: Value, src: &str| {
            props.insert(k.into(), Value::Array(vec![v, Value::from(src)]));
        };
        set("buildername", req.buildername.clone().into(), "Builder");
        set("builderid", req.builderid.into(), "Builder");
        set("workername", conn.name.clone().into(), "Worker");
        set("task_sha", req.sha.clone().into(), "Scheduler");
        match master.db.start_build(req.brid, conn.workerid, &props) {
            Ok(Some(build)) => {
                master.metrics.dispatched(req.brid);
                tokio::spawn(crate::build::run(master.clone(), conn, slot, build, req));
            }
            Ok(None) => master.workers.release(&conn, slot),
            Err(e) => {
                tracing::error!(uuid = %req.uuid, "cannot start build: {e}");
                master.workers.release(&conn, slot);
            }
        }
    }
}
