//! Who may press the UI's buttons: an admin is a browser holding a valid token in the
//! `taskotron_token` cookie (set by the login form), a client sending `Authorization: Bearer`
//! or HTTP Basic credentials from `auth.users`, or
//! anyone when `auth.open_control` is set. The cookie is HttpOnly and SameSite=Strict, and
//! POSTs from another origin are refused, so another site cannot press the buttons for you.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::html::{esc, layout};
use crate::state::Master;

const COOKIE: &str = "taskotron_token";

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some(val) = part.trim().strip_prefix("taskotron_token=") {
                let decoded: String = form_urlencoded::parse(format!("t={val}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                return Some(decoded);
            }
        }
    }
    None
}

/// True when the request may use the control buttons.
pub fn is_admin(m: &Master, headers: &HeaderMap) -> bool {
    if m.cfg.auth.open_control {
        return true;
    }
    if let Some(t) = cookie_token(headers) {
        if m.cfg.auth.token_ok(&t) {
            return true;
        }
    }
    // Bearer token or HTTP Basic (auth.users), exactly as the REST control calls accept them.
    headers.contains_key(header::AUTHORIZATION)
        && crate::http::auth::check(&m.cfg.auth, headers, false).is_ok()
}

/// Refuses a state-changing request whose `Origin` is not this server.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

pub async fn login_page(State(m): State<Arc<Master>>, headers: HeaderMap) -> Response {
    let state = if is_admin(&m, &headers) {
        "<p role=\"status\">You are signed in as an admin.</p>\
<form method=\"post\" action=\"/ui/logout\"><button type=\"submit\">Sign out</button></form>"
    } else {
        ""
    };
    layout(
        "Sign in",
        "",
        "",
        &format!(
            "{state}<p>Enter one of the master's API tokens (<code>auth.tokens</code> in the \
master config) to use the worker controls.</p>\
<form method=\"post\" action=\"/ui/login\"><p><label for=\"token\">API token</label> \
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required> \
<button type=\"submit\" id=\"login-submit\">Sign in</button></p></form>"
        ),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(
    State(m): State<Arc<Master>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin request refused\n").into_response();
    }
    if !m.cfg.auth.token_ok(f.token.trim()) {
        let mut r = layout(
            "Sign in",
            "",
            "",
            &format!(
                "<p role=\"alert\">That token is not valid.</p><p><a href=\"/ui/login\">Try again</a></p>{}",
                esc("")
            ),
        );
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let value: String = form_urlencoded::byte_serialize(f.token.trim().as_bytes()).collect();
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"),
        )],
        Redirect::to("/ui/workers"),
    )
        .into_response()
}

pub async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/ui/"),
    )
        .into_response()
}
