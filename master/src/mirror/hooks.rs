//! `POST /hooks/git`: push webhooks that refresh the matching mirrors at once.
//!
//! The sender is recognised by its headers:
//! - GitHub: `X-GitHub-Event`, body signed in `X-Hub-Signature-256` (HMAC-SHA256,
//!   `mirror.github_secret`);
//! - GitLab: `X-Gitlab-Event`, `X-Gitlab-Token` equal to `mirror.gitlab_token`;
//! - Pagure: `X-Pagure-Topic`, body signed in `X-Pagure-Signature-256` (HMAC-SHA256) or
//!   `X-Pagure-Signature` (HMAC-SHA1) with the project's web-hook key `mirror.pagure_token`;
//! - anything else is the generic `{"repo": "<URL, task name or /path.git>"}` with
//!   `Authorization: Bearer <mirror.generic_token>` (or `X-Taskotron-Token`).
//!
//! A missing secret gives 401, a wrong one 403 (also when that kind of hook is not configured),
//! and nothing is refreshed. The reply lists what was refreshed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::entry::{normalize_url, RepoKind};
use super::Mirrors;

/// Which forge sent the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Pagure,
    Generic,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Pagure => "pagure",
            Provider::Generic => "generic",
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Recognises the sender from its headers.
pub fn provider(h: &HeaderMap) -> Provider {
    let has = |n: &str| h.contains_key(n);
    if has("x-github-event") || has("x-hub-signature-256") || has("x-hub-signature") {
        Provider::GitHub
    } else if has("x-gitlab-event") || has("x-gitlab-token") {
        Provider::GitLab
    } else if has("x-pagure-topic")
        || has("x-pagure-signature")
        || has("x-pagure-signature-256")
        || has("x-pagure")
    {
        Provider::Pagure
    } else {
        Provider::Generic
    }
}

/// Why a hook was refused (401: no credential; 403: wrong credential or hook kind disabled).
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing(&'static str),
    Wrong(&'static str),
    Disabled(&'static str),
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(key: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn token_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks the request's secret for its provider.
pub fn authenticate(m: &Mirrors, p: Provider, h: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
    let cfg = m.config();
    match p {
        Provider::GitHub => {
            let secret = cfg
                .github_secret
                .as_deref()
                .ok_or(AuthError::Disabled("mirror.github_secret"))?;
            let sig = header(h, "x-hub-signature-256")
                .ok_or(AuthError::Missing("X-Hub-Signature-256"))?;
            let hexsig = sig
                .strip_prefix("sha256=")
                .ok_or(AuthError::Wrong("X-Hub-Signature-256"))?;
            hmac_ok::<Hmac<sha2::Sha256>>(secret, body, hexsig)
                .then_some(())
                .ok_or(AuthError::Wrong("X-Hub-Signature-256"))
        }
        Provider::GitLab => {
            let secret = cfg
                .gitlab_token
                .as_deref()
                .ok_or(AuthError::Disabled("mirror.gitlab_token"))?;
            let tok = header(h, "x-gitlab-token").ok_or(AuthError::Missing("X-Gitlab-Token"))?;
            token_eq(tok, secret)
                .then_some(())
                .ok_or(AuthError::Wrong("X-Gitlab-Token"))
        }
        Provider::Pagure => {
            let secret = cfg
                .pagure_token
                .as_deref()
                .ok_or(AuthError::Disabled("mirror.pagure_token"))?;
            if let Some(sig) = header(h, "x-pagure-signature-256") {
                return hmac_ok::<Hmac<sha2::Sha256>>(secret, body, sig)
                    .then_some(())
                    .ok_or(AuthError::Wrong("X-Pagure-Signature-256"));
            }
            let sig =
                header(h, "x-pagure-signature").ok_or(AuthError::Missing("X-Pagure-Signature"))?;
            hmac_ok::<Hmac<sha1::Sha1>>(secret, body, sig)
                .then_some(())
                .ok_or(AuthError::Wrong("X-Pagure-Signature"))
        }
        Provider::Generic => {
            let secret = cfg
                .generic_token
                .as_deref()
                .ok_or(AuthError::Disabled("mirror.generic_token"))?;
            let tok = header(h, "authorization")
                .and_then(|a| a.strip_prefix("Bearer ").map(str::trim))
                .or_else(|| header(h, "x-taskotron-token"))
                .ok_or(AuthError::Missing("Authorization: Bearer"))?;
            token_eq(tok, secret)
                .then_some(())
                .ok_or(AuthError::Wrong("token"))
        }
    }
}

/// What a hook body names: URLs / names to match, or None when the event is not a push.
pub fn repo_candidates(
    p: Provider,
    h: &HeaderMap,
    body: &Value,
) -> Result<Option<Vec<String>>, String> {
    let strs = |v: &Value, keys: &[&str]| -> Vec<String> {
        keys.iter()
            .filter_map(|k| v.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    };
    match p {
        Provider::GitHub => {
            let event = header(h, "x-github-event").unwrap_or("push");
            if event != "push" {
                return Ok(None);
            }
            let repo = body
                .get("repository")
                .ok_or("GitHub push without \"repository\"")?;
            Ok(Some(strs(
                repo,
                &[
                    "clone_url",
                    "ssh_url",
                    "git_url",
                    "html_url",
                    "url",
                    "svn_url",
                ],
            )))
        }
        Provider::GitLab => {
            let kind = body
                .get("object_kind")
                .and_then(Value::as_str)
                .unwrap_or("push");
            if kind != "push" && kind != "tag_push" {
                return Ok(None);
            }
            let mut out = Vec::new();
            if let Some(p) = body.get("project") {
                out.extend(strs(
                    p,
                    &[
                        "git_http_url",
                        "git_ssh_url",
                        "web_url",
                        "http_url",
                        "ssh_url",
                        "url",
                    ],
                ));
            }
            if let Some(r) = body.get("repository") {
                out.extend(strs(r, &["git_http_url", "git_ssh_url", "homepage", "url"]));
            }
            if out.is_empty() {
                return Err("GitLab push without project/repository URLs".into());
            }
            Ok(Some(out))
        }
        Provider::Pagure => {
            let topic = header(h, "x-pagure-topic")
                .map(str::to_string)
                .or_else(|| {
                    body.get("topic")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            if !topic.ends_with("git.receive") {
                return Ok(None);
            }
            let msg = body.get("msg").unwrap_or(body);
            let repo = msg
                .get("repo")
                .or_else(|| msg.get("project"))
                .ok_or("Pagure git.receive without msg.repo")?;
            let mut out = strs(repo, &["full_url"]);
            // fullname is `namespace/name` (or `forks/user/name`); match it as a URL suffix.
            for k in ["fullname", "url_path"] {
                if let Some(s) = repo.get(k).and_then(Value::as_str) {
                    out.push(format!("suffix:/{}", s.trim_matches('/')));
                }
            }
            if let (Some(inst), Some(path)) = (
                header(h, "x-pagure"),
                repo.get("url_path").and_then(Value::as_str),
            ) {
                out.push(format!(
                    "{}/{}",
                    inst.trim_end_matches('/'),
                    path.trim_matches('/')
                ));
            }
            Ok(Some(out))
        }
        Provider::Generic => {
            let repo = body
                .get("repo")
                .and_then(Value::as_str)
                .ok_or("expected a JSON object {\"repo\": \"<URL, task name or /path.git>\"}")?;
            Ok(Some(vec![repo.to_string()]))
        }
    }
}

/// Task keys of the tracked repos a candidate names.
fn matching(m: &Mirrors, candidates: &[String]) -> Vec<String> {
    let mut keys = Vec::new();
    for e in m.entries() {
        let url = normalize_url(&e.url);
        let hit = candidates.iter().any(|c| {
            if let Some(suffix) = c.strip_prefix("suffix:") {
                // The suffix starts with '/', so it can only match at a path boundary.
                return url.ends_with(suffix.trim_end_matches(".git"));
            }
            c == &e.key
                || (e.kind != RepoKind::Adhoc && c == &e.path)
                || (e.kind == RepoKind::Configured
                    && c == &format!("{}/{}", m.config().namespace, e.key))
                || normalize_url(c) == url
        });
        if hit {
            keys.push(e.key.clone());
        }
    }
    keys
}

/// JSON body, or GitHub's form encoding (`payload=<url-encoded JSON>`).
fn parse_body(body: &[u8]) -> Result<Value, String> {
    if body.starts_with(b"payload=") {
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return serde_json::from_str(&payload)
            .map_err(|e| format!("form field payload is not JSON: {e}"));
    }
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

fn reply(status: StatusCode, v: Value) -> Response {
    (status, Json(v)).into_response()
}

pub(crate) async fn handle(
    State(m): State<Arc<Mirrors>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = provider(&headers);
    if let Err(e) = authenticate(&m, p, &headers, &body) {
        let (status, msg) = match e {
            AuthError::Missing(what) => (StatusCode::UNAUTHORIZED, format!("missing {what}")),
            AuthError::Wrong(what) => (StatusCode::FORBIDDEN, format!("bad {what}")),
            AuthError::Disabled(key) => (
                StatusCode::FORBIDDEN,
                format!("{} hooks are disabled ({key} is not set)", p.name()),
            ),
        };
        tracing::warn!(provider = p.name(), "webhook refused: {msg}");
        let mut resp = reply(status, json!({"error": msg}));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        return resp;
    }
    let value: Value = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({ "error": e })),
    };
    let candidates = match repo_candidates(p, &headers, &value) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return reply(
                StatusCode::OK,
                json!({"provider": p.name(), "ignored": "not a push event", "refreshed": []}),
            )
        }
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e})),
    };
    let keys = matching(&m, &candidates);
    let outcomes = futures_util::future::join_all(keys.iter().map(|k| m.refresh(k))).await;
    let failed = outcomes.iter().any(|o| o.error.is_some());
    tracing::info!(provider = p.name(), repos = ?keys, "webhook refresh");
    let status = if failed {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    let unmatched = if keys.is_empty() {
        candidates
    } else {
        Vec::new()
    };
    reply(
        status,
        json!({"provider": p.name(), "refreshed": outcomes, "unmatched": unmatched}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_providers() {
        let mut h = HeaderMap::new();
        assert_eq!(provider(&h), Provider::Generic);
        h.insert("x-gitlab-event", "Push Hook".parse().unwrap());
        assert_eq!(provider(&h), Provider::GitLab);
        h.insert("x-github-event", "push".parse().unwrap());
        assert_eq!(provider(&h), Provider::GitHub);
    }

    #[test]
    fn hmac_checks() {
        // Known vector: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog").
        let sig = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        let msg = b"The quick brown fox jumps over the lazy dog";
        assert!(hmac_ok::<Hmac<sha2::Sha256>>("key", msg, sig));
        assert!(!hmac_ok::<Hmac<sha2::Sha256>>("kez", msg, sig));
        assert!(!hmac_ok::<Hmac<sha2::Sha256>>("key", msg, "zz"));
        let sig1 = "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9";
        assert!(hmac_ok::<Hmac<sha1::Sha1>>("key", msg, sig1));
    }

    #[test]
    fn form_encoded_github_payload() {
        let v = parse_body(b"payload=%7B%22repository%22%3A%7B%22clone_url%22%3A%22x%22%7D%7D")
            .unwrap();
        assert_eq!(v["repository"]["clone_url"], "x");
        assert!(parse_body(b"payload=%7B").unwrap_err().contains("payload"));
        assert!(parse_body(b"nope").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn pagure_candidates() {
        let mut h = HeaderMap::new();
        h.insert("x-pagure-topic", "git.receive".parse().unwrap());
        let body = json!({"msg": {"repo": {"fullname": "taskotron/task-rpmlint", "url_path": "taskotron/task-rpmlint"}}});
        let c = repo_candidates(Provider::Pagure, &h, &body)
            .unwrap()
            .unwrap();
        assert!(c.contains(&"suffix:/taskotron/task-rpmlint".to_string()));
        h.insert("x-pagure-topic", "issue.new".parse().unwrap());
        assert_eq!(repo_candidates(Provider::Pagure, &h, &body).unwrap(), None);
    }
}
