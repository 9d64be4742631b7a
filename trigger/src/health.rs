//! The trigger's own small HTTP listener (config `http: {listen: 127.0.0.1:8011}`; off when
//! the key is absent): `GET /metrics` (Prometheus text), `GET /healthz` (the process answers
//! and its outbox database is readable; the body shows the outbox and inbox depths and the AMQP
//! connection state) and
//! `GET /readyz` (it is also subscribed to the bus).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State as AxState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::cli::State;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the metrics/health listener, e.g. 127.0.0.1:8011.
    pub listen: SocketAddr,
}

/// Set once the bus subscriptions are up (`run`).
static READY: AtomicBool = AtomicBool::new(false);

pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::SeqCst);
}

/// Binds the listener (an error names the address) and serves it in the background.
pub async fn spawn(state: Arc<State>, cfg: &HttpConfig) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("http.listen {}: cannot bind", cfg.listen))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics/health listener stopped");
        }
    });
    tracing::info!(addr = %addr, "metrics and health listening");
    Ok(addr)
}

/// (pending jobs, dead letters), read off the async threads.
async fn outbox_counts(state: &Arc<State>) -> Result<(i64, i64), String> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || {
        let pending = s.outbox.pending().map_err(|e| e.to_string())?;
        let dead = s.outbox.dead_letters().map_err(|e| e.to_string())?.len() as i64;
        Ok((pending, dead))
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn metrics(AxState(state): AxState<Arc<State>>) -> Response {
    let outbox = outbox_counts(&state).await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::global().render(outbox),
    )
        .into_response()
}

async fn healthz(AxState(state): AxState<Arc<State>>) -> Response {
    match outbox_counts(&state).await {
        Ok((pending, _)) => (
            StatusCode::OK,
            format!(
                "ok (outbox: {pending} pending, inbox: {} waiting{})\n",
                state.inbox.depth(),
                match crate::metrics::global().amqp_connected() {
                    None => "",
                    Some(true) => ", amqp: connected",
                    Some(false) => ", amqp: disconnected",
                }
            ),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("outbox unreadable: {e}\n"),
        )
            .into_response(),
    }
}

async fn readyz(AxState(state): AxState<Arc<State>>) -> Response {
    if !READY.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not subscribed to the bus yet\n",
        )
            .into_response();
    }
    match outbox_counts(&state).await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: outbox: {e}\n"),
        )
            .into_response(),
    }
}
