//! HTTP routes of the mirror: the GrokMirror manifest (with `Last-Modified`/304), read-only
//! dumb-HTTP git access to every published repo, task snapshots, and the push webhook.
//!
//! `GET  /mirror/manifest.js.gz`                 manifest (gzip bytes, no Content-Encoding)
//! `GET  /mirror/<path>.git/<file>`             dumb HTTP (`info/refs`, `HEAD`, objects, packs)
//! `GET  /tasks/<task>/archive/<sha>.tar.gz`     snapshot of a task at a commit
//! `POST /hooks/git`                             push webhooks (see [`super::hooks`])

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::dumb::{self, DumbFile};
use super::entry::RepoKind;
use super::smart;
use super::{MirrorError, Mirrors};

/// Largest webhook body accepted (GitHub caps payloads at 25 MB; pushes are far smaller).
const MAX_HOOK_BODY: usize = 5 << 20;

impl Mirrors {
    /// All mirror routes, with their state bound (a plain `Router<()>` to merge into the
    /// master's router).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/mirror/manifest.js.gz", get(manifest))
            .route(
                "/mirror/{*rest}",
                get(git_file)
                    .post(upload_pack)
                    .layer(axum::extract::DefaultBodyLimit::max(
                        smart::MAX_REQUEST as usize,
                    )),
            )
            .route("/tasks/{*rest}", get(archive))
            .route(
                "/hooks/git",
                post(super::hooks::handle)
                    .layer(axum::extract::DefaultBodyLimit::max(MAX_HOOK_BODY)),
            )
            .with_state(self.clone())
    }
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", msg.into()),
    )
        .into_response()
}

/// Maps mirror errors to HTTP statuses.
pub(crate) fn error_response(e: &MirrorError) -> Response {
    let status = match e {
        MirrorError::UnknownTask(_) | MirrorError::NotFound(_) => StatusCode::NOT_FOUND,
        MirrorError::BadInput(_) => StatusCode::BAD_REQUEST,
        MirrorError::NotAllowed(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    plain(status, e.to_string())
}

fn if_modified_since(headers: &HeaderMap) -> Option<SystemTime> {
    let v = headers.get(header::IF_MODIFIED_SINCE)?.to_str().ok()?;
    httpdate::parse_http_date(v).ok()
}

async fn manifest(State(m): State<Arc<Mirrors>>, headers: HeaderMap) -> Response {
    let (gz, last_modified) = m.manifest();
    let lm = httpdate::fmt_http_date(last_modified);
    if if_modified_since(&headers).is_some_and(|ims| last_modified <= ims) {
        return (StatusCode::NOT_MODIFIED, [(header::LAST_MODIFIED, lm)]).into_response();
    }
    (
        [
            // The body is a .gz file, not a gzip-encoded JSON: grok-pull gunzips it itself.
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::LAST_MODIFIED, lm),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        gz,
    )
        .into_response()
}

/// The published repo a `/mirror/<path>.git/<file>` URL names, and `<file>`.
#[allow(clippy::result_large_err)]
fn repo_of(
    m: &Mirrors,
    rest: &str,
) -> Result<(String, Arc<super::entry::RepoEntry>, String), Response> {
    let Some((repo, file)) = rest.split_once(".git/") else {
        return Err(plain(
            StatusCode::NOT_FOUND,
            "not a mirrored repository path",
        ));
    };
    let path = format!("/{repo}.git");
    match m.by_path(&path).filter(|e| e.kind != RepoKind::Adhoc) {
        Some(e) => Ok((path, e, file.to_string())),
        None => Err(plain(
            StatusCode::NOT_FOUND,
            format!("no mirrored repository {path}"),
        )),
    }
}

async fn git_file(
    State(m): State<Arc<Mirrors>>,
    UrlPath(rest): UrlPath<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (path, e, file) = match repo_of(&m, &rest) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if file == "info/refs" {
        match q.get("service").map(String::as_str) {
            Some("git-upload-pack") => {
                let dir = e.dir.clone();
                return match tokio::task::spawn_blocking(move || smart::advertise(&dir)).await {
                    Ok(Ok(body)) => (
                        [
                            (
                                header::CONTENT_TYPE,
                                "application/x-git-upload-pack-advertisement",
                            ),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        body,
                    )
                        .into_response(),
                    Ok(Err(err)) => {
                        plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: {err}"))
                    }
                    Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
                };
            }
            Some(_) => return plain(StatusCode::FORBIDDEN, "the mirror is read-only"),
            None => {}
        }
    }
    let Some(what) = dumb::classify(&file) else {
        return plain(StatusCode::NOT_FOUND, "not served");
    };
    let dir = e.dir.clone();
    let text = |body: String| {
        (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    };
    match what {
        DumbFile::InfoRefs => {
            match tokio::task::spawn_blocking(move || dumb::info_refs(&dir)).await {
                Ok(Ok(body)) => text(body),
                Ok(Err(err)) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: {err}")),
                Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            }
        }
        DumbFile::Packs => text(dumb::packs(&dir)),
        DumbFile::File(rel, immutable) => {
            let ctype = if immutable {
                "application/octet-stream"
            } else {
                "text/plain; charset=utf-8"
            };
            let cache = if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            send_file(&dir.join(rel), ctype, cache).await
        }
    }
}

/// `POST …/git-upload-pack`: one stateless round of negotiation, or the pack.
async fn upload_pack(
    State(m): State<Arc<Mirrors>>,
    UrlPath(rest): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (path, e, file) = match repo_of(&m, &rest) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if file != "git-upload-pack" {
        return plain(StatusCode::FORBIDDEN, "the mirror is read-only");
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let req = match smart::parse_request(&body, gzip) {
        Ok(r) => r,
        Err(err) => return plain(StatusCode::BAD_REQUEST, format!("{path}: {err}")),
    };
    let dir = e.dir.clone();
    match tokio::task::spawn_blocking(move || smart::respond(&dir, &req)).await {
        Ok(Ok(out)) => (
            [
                (header::CONTENT_TYPE, "application/x-git-upload-pack-result"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            out,
        )
            .into_response(),
        Ok(Err(err)) => plain(StatusCode::BAD_REQUEST, format!("{path}: {err}")),
        Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn send_file(path: &std::path::Path, ctype: &'static str, cache: &'static str) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return plain(StatusCode::NOT_FOUND, "no such file")
        }
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut resp = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}

async fn archive(State(m): State<Arc<Mirrors>>, UrlPath(rest): UrlPath<String>) -> Response {
    let parsed = rest.rsplit_once("/archive/").and_then(|(task, file)| {
        Some((task.to_string(), file.strip_suffix(".tar.gz")?.to_string()))
    });
    let Some((task, sha)) = parsed else {
        return plain(
            StatusCode::NOT_FOUND,
            "expected /tasks/<task>/archive/<sha>.tar.gz",
        );
    };
    let m2 = m.clone();
    match tokio::task::spawn_blocking(move || m2.snapshot(&task, &sha)).await {
        Ok(Ok(path)) => {
            send_file(
                &path,
                "application/gzip",
                "public, max-age=31536000, immutable",
            )
            .await
        }
        Ok(Err(e)) => error_response(&e),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
