//! `/metrics` (Prometheus text format) and `/readyz`, plus the middleware that counts
//! change-hook requests by status code.
//!
//! `/healthz` (in `health.rs`) says the process is alive; `/readyz` says it should get traffic:
//! the database answers and the master is not shutting down.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Snapshot;
use crate::state::Master;

pub fn router() -> Router<Arc<Master>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
}

/// Counts `/change_hook*` replies by status (wired as a layer in `http/mod.rs`).
pub async fn count_requests(State(m): State<Arc<Master>>, req: Request, next: Next) -> Response {
    let hook = req.uri().path().starts_with("/change_hook");
    let resp = next.run(req).await;
    if hook {
        m.metrics.change_hook_request(resp.status().as_u16());
    }
    resp
}

/// Reads the scrape-time gauges.
pub fn snapshot(m: &Master) -> Result<Snapshot, crate::db::DbError> {
    let queue_depth: BTreeMap<String, i64> = m.db.queue_depth_by_arch()?.into_iter().collect();
    let workers =
        m.db.workers_json(&crate::db::Filter::default(), &|_| vec![])?;
    let connected: Vec<_> = workers
        .iter()
        .filter(|w| {
            w["name"]
                .as_str()
                .is_some_and(|n| m.workers.get_conn(n).is_some())
        })
        .collect();
    let paused = connected.iter().filter(|w| w["paused"] == true).count();
    let status = m.mirrors.status();
    let failing = status.iter().filter(|s| s.last_error.is_some()).count();
    Ok(Snapshot {
        queue_depth,
        builds_running: m.running_builds().len() as i64,
        workers_connected: m.workers.connected_count() as i64,
        workers_paused: paused as i64,
        workers_configured: m.cfg.workers.len() as i64,
        mirror_repos: (status.len() as i64, failing as i64),
    })
}

async fn metrics(State(m): State<Arc<Master>>) -> Response {
    let mm = m.clone();
    let snap = match tokio::task::spawn_blocking(move || snapshot(&mm)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::error!("metrics: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "database error\n").into_response();
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.metrics.render(&snap),
    )
        .into_response()
}

async fn readyz(State(m): State<Arc<Master>>) -> Response {
    if m.shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        )
            .into_response();
    }
    match m.db.queue_counts() {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database: {e}\n"),
        )
            .into_response(),
    }
}
