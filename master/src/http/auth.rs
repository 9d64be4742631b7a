//! Write-endpoint authorisation: `Authorization: Bearer <token>` with a token from
//! `auth.tokens`, or HTTP Basic with a user from `auth.users`, unless the config opens the
//! endpoint.

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
            "authorization required: send `Authorization: Bearer <token>` (auth.tokens) or Basic credentials (auth.users)\n",
        )
            .into_response());
    };
    let ok = if let Some(token) = value.strip_prefix("Bearer ") {
        auth.token_ok(token.trim())
    } else if value.starts_with("Basic ") {
        matches!(crate::workers::server::parse_basic(headers), Ok((u, p)) if auth.user_ok(&u, &p))
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err((StatusCode::FORBIDDEN, "invalid credentials\n").into_response())
    }
}
