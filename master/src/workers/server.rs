//! The worker port: an HTTP listener that only upgrades to WebSocket, on any path, after
//! checking HTTP Basic credentials in the upgrade request like Buildbot does:
//! no `Authorization` → 401, a non-Basic or undecodable header → 400, bad name/password → 401.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;

use crate::state::Master;

pub fn router(master: Arc<Master>) -> Router {
    Router::new().fallback(upgrade).with_state(master)
}

#[derive(Debug, PartialEq)]
pub enum AuthError {
    Missing,
    Malformed,
}

/// Parses `Authorization: Basic base64(name:password)`.
pub fn parse_basic(headers: &HeaderMap) -> Result<(String, String), AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let b64 = value.strip_prefix("Basic ").ok_or(AuthError::Malformed)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
    let (name, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok((name.to_string(), password.to_string()))
}

async fn upgrade(
    State(master): State<Arc<Master>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let name = match parse_basic(&headers) {
        Ok((name, password)) => match master.cfg.worker(&name) {
            Some(w) if w.check_password(&password) => name,
            _ => {
                tracing::warn!(worker = %name, "worker login refused: bad name or password");
                return (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            }
        },
        Err(AuthError::Missing) => {
            return (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response()
        }
        Err(_) => return (StatusCode::BAD_REQUEST, "Bad request\n").into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rej) => return rej.into_response(),
    };
    if master.shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "master is shutting down\n").into_response();
    }
    let max = master.cfg.limits.max_frame_bytes;
    // tungstenite reserves a 128 KiB read buffer per connection by default: 5,000 idle workers
    // held ~700 MB RSS (loadgen idle scenario). Worker frames are small; the buffer still grows
    // for the occasional large upload block.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| super::session::run(master, socket, name))
}
