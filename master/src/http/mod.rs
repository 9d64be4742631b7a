//! The HTTP listener (default 127.0.0.1:8010): change hook, REST data API v2, artifacts,
//! health, and the mirror's routes. Each area is its own module returning a `Router`, merged
//! here; a UI or metrics module plugs in with one more `.merge()` line.

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod change_hook;
mod health;
pub mod metrics;
pub mod ui;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::state::Master;

pub fn router(master: Arc<Master>) -> Router {
    let limit = master.cfg.limits.max_body_bytes;
    Router::new()
        .merge(change_hook::router())
        .merge(api::router())
        .merge(artifacts::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(ui::router())
        .layer(axum::middleware::from_fn_with_state(
            master.clone(),
            metrics::count_requests,
        ))
        .with_state(master.clone())
        .merge(master.mirrors.router())
        .layer(DefaultBodyLimit::max(limit))
}
