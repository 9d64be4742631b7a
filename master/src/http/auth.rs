//! Write-endpoint authorisation: `Authorization: Bearer <token>` with a token from
//! `auth.tokens`, unless the config opens the endpoint.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::AuthConfig;

/// Ok if the request may write; otherwise the 401/403 reply to send.
// The error is the HTTP reply itself; boxing it would only add noise at every call site.
#[allow(clippy::result_large_err)]
pub fn check(auth: &AuthConfig, headers: &HeaderMap, open: bool) -> Result<(), Response> {
    if open {
        return Ok(());
    }
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "authorization required: send `Authorization: Bearer <token>` (auth.tokens in the master config)\n",
        )
            .into_response());
    };
    match value.strip_prefix("Bearer ") {
        Some(token) if auth.token_ok(token.trim()) => Ok(()),
        _ => Err((StatusCode::FORBIDDEN, "invalid token\n").into_response()),
    }
}
