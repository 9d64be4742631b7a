//! `/change_hook` and `/change_hook/base`: Buildbot's `base` dialect. Form fields (body as
//! `application/x-www-form-urlencoded`, or the query string), first value of each field wins,
//! `properties` and `files` are JSON. Reply `200 "1 change found"` like Buildbot 4.3.
//!
//! A change whose `project` is in `queue.projects` (Taskotron: `rpmcheck`) becomes exactly one
//! build request with its own properties: `category` is the arch (`noarch` → builder `all`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{Map, Value};

use crate::db::{now, ChangeFields};
use crate::state::Master;
use crate::submit::{self, Job, JobError};

pub fn router() -> Router<Arc<Master>> {
    Router::new()
        .route("/change_hook", any(hook_base))
        .route("/change_hook/", any(hook_base))
        .route("/change_hook/{dialect}", any(hook_dialect))
}

async fn hook_base(
    State(m): State<Arc<Master>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(m, headers, q, body).await
}

async fn hook_dialect(
    State(m): State<Arc<Master>>,
    Path(dialect): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if dialect != "base" && !dialect.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            format!("The dialect specified, '{dialect}', wasn't whitelisted in change_hook"),
        );
    }
    handle(m, headers, q, body).await
}

fn text(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html")], msg).into_response()
}

async fn handle(
    m: Arc<Master>,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    if let Err(resp) = super::auth::check(&m.cfg.auth, &headers, m.cfg.auth.open_change_hook) {
        return resp;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // First value of each field wins; body fields before query fields (like Twisted's args,
    // which Buildbot's hook reads: form-encoded and multipart bodies alike).
    let mut fields: HashMap<String, String> = HashMap::new();
    let body_fields = match body_fields(ctype, body).await {
        Ok(f) => f,
        Err(msg) => return text(StatusCode::BAD_REQUEST, format!("change_hook: {msg}\n")),
    };
    let query_fields = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    for (k, v) in body_fields.into_iter().chain(query_fields) {
        fields.entry(k).or_insert(v);
    }
    let change = match parse_change(&fields) {
        Ok(c) => c,
        Err(msg) => return text(StatusCode::BAD_REQUEST, format!("change_hook: {msg}\n")),
    };
    if !m.cfg.queue.projects.contains(&change.project) {
        return match m.db.add_change(&change) {
            Ok(id) => {
                tracing::info!(changeid = id, project = %change.project, "change stored (project starts no builds)");
                text(StatusCode::OK, "1 change found".into())
            }
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Error processing changes: {e}\n"),
            ),
        };
    }
    let job = match job_from_change(change) {
        Ok(j) => j,
        Err(msg) => return text(StatusCode::BAD_REQUEST, format!("change_hook: {msg}\n")),
    };
    match submit::submit(&m, job).await {
        Ok(_) => text(StatusCode::OK, "1 change found".into()),
        Err(e) => job_error(e),
    }
}

/// Most fields a multipart body may carry (Buildbot's base hook reads about a dozen).
const MAX_MULTIPART_FIELDS: usize = 100;

/// The body's fields, in order: `application/x-www-form-urlencoded` (or no type, as `curl -d`
/// without a header sends), or `multipart/form-data` (`curl -F`). The body size is already
/// bounded by `limits.max_body_bytes`.
async fn body_fields(ctype: &str, body: Bytes) -> Result<Vec<(String, String)>, String> {
    if body.is_empty() || ctype.is_empty() || ctype.starts_with("application/x-www-form-urlencoded")
    {
        return Ok(form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect());
    }
    if !ctype.starts_with("multipart/form-data") {
        return Err(format!(
            "unsupported Content-Type {ctype:?}; expected application/x-www-form-urlencoded or multipart/form-data"
        ));
    }
    let boundary =
        multer::parse_boundary(ctype).map_err(|e| format!("Content-Type {ctype:?}: {e}"))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(part) = parts
        .next_field()
        .await
        .map_err(|e| format!("multipart body: {e}"))?
    {
        if out.len() == MAX_MULTIPART_FIELDS {
            return Err(format!(
                "multipart body: more than {MAX_MULTIPART_FIELDS} fields"
            ));
        }
        let name = part
            .name()
            .ok_or("multipart body: a part without a field name")?
            .to_string();
        let value = part
            .text()
            .await
            .map_err(|e| format!("multipart field {name:?}: {e}"))?;
        out.push((name, value));
    }
    Ok(out)
}

pub fn job_error(e: JobError) -> Response {
    let (status, msg) = match e {
        JobError::BadInput(m) => (StatusCode::BAD_REQUEST, m),
        JobError::Duplicate(m) => (StatusCode::CONFLICT, m),
        JobError::Unavailable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        JobError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    text(status, format!("change_hook: {msg}\n"))
}

fn parse_change(f: &HashMap<String, String>) -> Result<ChangeFields, String> {
    let get = |k: &str| f.get(k).cloned();
    let properties = match f.get("properties") {
        None => Map::new(),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err("field `properties`: expected a JSON object".into()),
            Err(e) => return Err(format!("field `properties`: invalid JSON ({e})")),
        },
    };
    let files = match f.get("files") {
        None => Value::Array(vec![]),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Array(_)) => v,
            Ok(_) => return Err("field `files`: expected a JSON list".into()),
            Err(e) => return Err(format!("field `files`: invalid JSON ({e})")),
        },
    };
    let when = match f.get("when_timestamp").or_else(|| f.get("when")) {
        None => now(),
        Some(s) => match s.trim().parse::<f64>() {
            Ok(t) if t.is_finite() => t as i64,
            _ => {
                return Err(format!(
                    "field `when_timestamp`: expected an epoch number, got {s:?}"
                ))
            }
        },
    };
    Ok(ChangeFields {
        author: get("author").or_else(|| get("who")).unwrap_or_default(),
        committer: get("committer"),
        branch: get("branch").unwrap_or_default(),
        category: get("category"),
        comments: get("comments").unwrap_or_default(),
        files,
        project: get("project").unwrap_or_default(),
        properties,
        repository: get("repository").unwrap_or_default(),
        revision: get("revision"),
        revlink: get("revlink"),
        codebase: get("codebase").unwrap_or_default(),
        when_timestamp: when,
    })
}

fn prop_str(props: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("property {key}: expected a string, got {other}")),
    }
}

fn job_from_change(change: ChangeFields) -> Result<Job, String> {
    let p = &change.properties;
    let need = |k: &str| {
        prop_str(p, k)?.ok_or_else(|| format!("property {k} is required (properties JSON)"))
    };
    let category = change.category.clone().filter(|c| !c.is_empty());
    let arch = match (category, prop_str(p, "arch")?) {
        (Some(c), _) => c,
        (None, Some(a)) => a,
        (None, None) => {
            return Err("field `category` (the arch: noarch, x86_64, ...) is required".into())
        }
    };
    let priority = match p.get("priority") {
        None => 0,
        Some(v) => v.as_i64().ok_or("property priority: expected an integer")?,
    };
    Ok(Job {
        taskname: need("taskname")?,
        item: need("item")?,
        item_type: need("item_type")?,
        arch,
        uuid: prop_str(p, "uuid")?,
        git_repo: prop_str(p, "git_repo")?.filter(|s| !s.is_empty()),
        git_branch: prop_str(p, "git_branch")?.filter(|s| !s.is_empty()),
        priority,
        reason: format!("change hook: {} {}", change.project, change.comments)
            .trim()
            .to_string(),
        properties: change.properties.clone(),
        source: "Change".into(),
        change: Some(change),
    })
}
