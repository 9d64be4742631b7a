//! `/healthz`: 200 with a small JSON status while the master can read its database.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::Master;

pub fn router() -> Router<Arc<Master>> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(m): State<Arc<Master>>) -> (StatusCode, Json<serde_json::Value>) {
    match m.db.queue_counts() {
        Ok((pending, running)) => (
            StatusCode::OK,
            Json(json!({
                "status": if m.shutting_down() { "stopping" } else { "ok" },
                "workers_connected": m.workers.connected_count(),
                "requests_pending": pending,
                "builds_running": running,
            })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "error": e.to_string()})),
        ),
    }
}
