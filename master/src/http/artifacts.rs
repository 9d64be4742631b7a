//! `/artifacts/<uuid>/<path>`: files uploaded by builds, read-only. Directories get a plain
//! HTML index. Path components are checked, so nothing outside `<data_dir>/artifacts` is served.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::Master;

pub fn router() -> Router<Arc<Master>> {
    Router::new()
        .route("/artifacts/{uuid}", get(serve_root))
        .route("/artifacts/{uuid}/", get(serve_root))
        .route("/artifacts/{uuid}/{*path}", get(serve))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn serve_root(State(m): State<Arc<Master>>, Path(uuid): Path<String>) -> Response {
    serve_path(&m, &uuid, "").await
}

async fn serve(
    State(m): State<Arc<Master>>,
    Path((uuid, path)): Path<(String, String)>,
) -> Response {
    serve_path(&m, &uuid, &path).await
}

async fn serve_path(m: &Master, uuid: &str, path: &str) -> Response {
    if !crate::submit::valid_token(uuid, 128) {
        return not_found();
    }
    let mut full: PathBuf = m.cfg.artifacts_dir().join(uuid);
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        if comp == "." || comp == ".." || comp.contains('\\') {
            return not_found();
        }
        full.push(comp);
    }
    // Refuse symlinks that point outside the artifacts tree.
    let root = match tokio::fs::canonicalize(m.cfg.artifacts_dir()).await {
        Ok(r) => r,
        Err(_) => return not_found(),
    };
    let real = match tokio::fs::canonicalize(&full).await {
        Ok(r) if r.starts_with(&root) => r,
        _ => return not_found(),
    };
    let meta = match tokio::fs::metadata(&real).await {
        Ok(md) => md,
        Err(_) => return not_found(),
    };
    if meta.is_dir() {
        let mut entries = match tokio::fs::read_dir(&real).await {
            Ok(e) => e,
            Err(_) => return not_found(),
        };
        let mut names = Vec::new();
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
            names.push(if dir { format!("{name}/") } else { name });
        }
        names.sort();
        let base = format!("/artifacts/{uuid}/{}", path.trim_matches('/'));
        let base = base.trim_end_matches('/');
        let mut html =
            format!("<html><head><title>{base}</title></head><body><h1>{base}</h1><ul>\n");
        for n in names {
            let esc = n
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;");
            html.push_str(&format!("<li><a href=\"{base}/{esc}\">{esc}</a></li>\n"));
        }
        html.push_str("</ul></body></html>\n");
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    }
    let file = match tokio::fs::File::open(&real).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let ctype = match real.extension().and_then(|e| e.to_str()) {
        Some("log" | "txt" | "yml" | "yaml" | "json") => "text/plain; charset=utf-8",
        Some("gz") => "application/gzip",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    let stream = tokio_util::io::ReaderStream::new(file);
    (
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
