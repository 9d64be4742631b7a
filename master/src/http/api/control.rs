//! JSON-RPC 2.0 control calls on REST resources (POST, `Content-Type: application/json`,
//! `{jsonrpc: "2.0", method, id, params: {..}}`), as in Buildbot 4.3:
//! `forceschedulers/<name>` `force` → `[bsid, {"<builderid>": brid}]`; `builds/<id>` `stop`;
//! `buildrequests/<id>` `cancel`; `workers/<id|name>` `stop` | `kill` | `pause` | `unpause`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::db::Filter;
use crate::state::Master;
use crate::submit::{self, Job, JobError};

struct Rpc {
    id: Value,
    method: String,
    params: Map<String, Value>,
}

fn rpc_error(status: StatusCode, code: i64, msg: &str, id: Value) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": msg}, "id": id, "jsonrpc": "2.0"})),
    )
        .into_response()
}

fn ok(id: Value, result: Value) -> Response {
    Json(json!({"id": id, "jsonrpc": "2.0", "result": result})).into_response()
}

/// Checks auth, content type and the JSON-RPC envelope.
#[allow(clippy::result_large_err)] // the error is the HTTP reply to send
fn parse(m: &Master, headers: &HeaderMap, body: &[u8]) -> Result<Rpc, Response> {
    crate::http::auth::check(&m.cfg.auth, headers, m.cfg.auth.open_control)?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.starts_with("application/json") {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid content-type (use application/json)",
            Value::Null,
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            &format!("JSON parse error: {e}"),
            Value::Null,
        )
    })?;
    let Value::Object(mut o) = v else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "invalid JSON-RPC request (batches are not supported)",
            Value::Null,
        ));
    };
    let id = o.remove("id").unwrap_or(Value::Null);
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "jsonrpc field must be '2.0'",
            id,
        ));
    }
    let Some(method) = o.get("method").and_then(Value::as_str).map(str::to_string) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "missing method",
            id,
        ));
    };
    let params = match o.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(rpc_error(
                StatusCode::BAD_REQUEST,
                -32602,
                "params must be an object",
                id,
            ))
        }
    };
    Ok(Rpc { id, method, params })
}

fn param_str(p: &Map<String, Value>, k: &str) -> Result<Option<String>, String> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("param {k}: expected a string")),
    }
}

pub async fn force(
    State(m): State<Arc<Master>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rpc = match parse(&m, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if !super::forcesched::NAMES.contains(&name.as_str()) {
        return rpc_error(
            StatusCode::NOT_FOUND,
            -32601,
            &format!("no force scheduler named {name:?}"),
            rpc.id,
        );
    }
    if rpc.method != "force" {
        return rpc_error(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            &format!("method {:?} not supported", rpc.method),
            rpc.id,
        );
    }
    match force_job(&m, &rpc.params) {
        Err(msg) => rpc_error(StatusCode::BAD_REQUEST, -32602, &msg, rpc.id),
        Ok(job) => match submit::submit(&m, job).await {
            Ok(s) => ok(rpc.id, json!([s.bsid, {s.builderid.to_string(): s.brid}])),
            Err(JobError::Duplicate(msg)) => rpc_error(StatusCode::CONFLICT, -32602, &msg, rpc.id),
            Err(JobError::BadInput(msg) | JobError::Unavailable(msg)) => {
                rpc_error(StatusCode::BAD_REQUEST, -32602, &msg, rpc.id)
            }
            Err(JobError::Internal(msg)) => {
                rpc_error(StatusCode::INTERNAL_SERVER_ERROR, -32603, &msg, rpc.id)
            }
        },
    }
}

fn force_job(m: &Master, p: &Map<String, Value>) -> Result<Job, String> {
    let need = |k: &str| {
        param_str(p, k)?
            .filter(|s| !s.is_empty())
            .ok_or(format!("param {k} is required"))
    };
    let arch = param_str(p, "arch")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64".into());
    // The builder: `builderid`, else `builderNames[0]`, else the one for the arch.
    let builders =
        m.db.builders_json(&Filter::default())
            .map_err(|e| e.to_string())?;
    let requested = match (p.get("builderid"), p.get("builderNames")) {
        (Some(v), _) if !v.is_null() => {
            let id = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or("param builderid: expected an integer")?;
            Some(
                builders
                    .iter()
                    .find(|b| b["builderid"].as_i64() == Some(id))
                    .ok_or(format!("no builder with id {id}"))?["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        }
        (_, Some(Value::Array(names))) => names.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    if let Some(b) = &requested {
        if *b != submit::builder_for(&arch) {
            return Err(format!(
                "builder {b:?} does not run arch {arch:?} jobs (use builder {:?})",
                submit::builder_for(&arch)
            ));
        }
    }
    let mut props = Map::new();
    for k in [
        "taskname",
        "item",
        "item_type",
        "arch",
        "uuid",
        "git_repo",
        "git_branch",
    ] {
        if let Some(v) = param_str(p, k)?.filter(|s| !s.is_empty()) {
            props.insert(k.into(), Value::from(v));
        }
    }
    let username = param_str(p, "username")?.unwrap_or_default();
    let reason = param_str(p, "reason")?.unwrap_or_else(|| "force build".into());
    props.insert(
        "owner".into(),
        Value::from(if username.is_empty() {
            "user".to_string()
        } else {
            username.clone()
        }),
    );
    props.insert("reason".into(), Value::from(reason.clone()));
    let priority = match p.get("priority") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or("param priority: expected an integer")?,
    };
    Ok(Job {
        taskname: need("taskname")?,
        item: need("item")?,
        item_type: param_str(p, "item_type")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "koji_build".into()),
        arch,
        uuid: param_str(p, "uuid")?,
        git_repo: param_str(p, "git_repo")?.filter(|s| !s.is_empty()),
        git_branch: param_str(p, "git_branch")?.filter(|s| !s.is_empty()),
        priority,
        reason: format!("A build was forced by '{username}': {reason}"),
        change: None,
        properties: props,
        source: "Force Build Form".into(),
    })
}

pub async fn build(
    State(m): State<Arc<Master>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rpc = match parse(&m, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Ok(id) = id.parse::<i64>() else {
        return rpc_error(StatusCode::NOT_FOUND, -32601, "no such build", rpc.id);
    };
    if m.db
        .builds_json(&Filter::by("buildid", id), false)
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        return rpc_error(StatusCode::NOT_FOUND, -32601, "no such build", rpc.id);
    }
    match rpc.method.as_str() {
        "stop" => {
            let reason = param_str(&rpc.params, "reason")
                .ok()
                .flatten()
                .unwrap_or_else(|| "no reason".into());
            let running = m.running_builds().get(&id).cloned();
            if let Some(b) = running {
                let _ = b.stop.send(Some(reason));
            }
            ok(rpc.id, Value::Null)
        }
        other => rpc_error(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            &format!("method {other:?} not supported"),
            rpc.id,
        ),
    }
}

pub async fn buildrequest(
    State(m): State<Arc<Master>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rpc = match parse(&m, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let known = id
        .parse::<i64>()
        .ok()
        .filter(|brid| m.db.request_uuid(*brid).ok().flatten().is_some());
    let Some(brid) = known else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            -32601,
            "no such buildrequest",
            rpc.id,
        );
    };
    match rpc.method.as_str() {
        "cancel" => {
            let reason = param_str(&rpc.params, "reason")
                .ok()
                .flatten()
                .unwrap_or_else(|| "cancelled".into());
            match m.db.cancel_request(brid) {
                Ok(true) => {}
                Ok(false) => {
                    // Running: stop its build (the request then completes as CANCELLED).
                    if let Ok(Some(buildid)) = m.db.running_build_of_request(brid) {
                        if let Some(b) = m.running_builds().get(&buildid).cloned() {
                            let _ = b.stop.send(Some(reason));
                        }
                    }
                }
                Err(e) => {
                    return rpc_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        -32603,
                        &e.to_string(),
                        rpc.id,
                    )
                }
            }
            ok(rpc.id, Value::Null)
        }
        other => rpc_error(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            &format!("method {other:?} not supported"),
            rpc.id,
        ),
    }
}

pub async fn worker(
    State(m): State<Arc<Master>>,
    Path(w): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rpc = match parse(&m, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let rows =
        m.db.workers_json(&Filter::default(), &|_| vec![])
            .unwrap_or_default();
    let Some(row) = rows.iter().find(|r| {
        r["name"].as_str() == Some(w.as_str()) || r["workerid"].as_i64() == w.parse().ok()
    }) else {
        return rpc_error(StatusCode::NOT_FOUND, -32601, "no such worker", rpc.id);
    };
    let (name, workerid) = (
        row["name"].as_str().unwrap_or("").to_string(),
        row["workerid"].as_i64().unwrap_or(0),
    );
    match rpc.method.as_str() {
        "pause" | "unpause" => {
            let paused = rpc.method == "pause";
            let reason = param_str(&rpc.params, "reason").ok().flatten();
            if let Err(e) = m.db.set_worker_paused(
                workerid,
                paused,
                if paused { reason.as_deref() } else { None },
            ) {
                return rpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    -32603,
                    &e.to_string(),
                    rpc.id,
                );
            }
            m.workers.set_paused(&name, paused);
            m.wake.notify_one();
            ok(rpc.id, Value::Null)
        }
        "stop" => {
            // Errors are logged by drain; the in-memory drain happens regardless.
            let _ = crate::workers::drain::drain(&m, &name, workerid);
            ok(rpc.id, Value::Null)
        }
        "kill" => {
            let _ = m.db.set_worker_graceful(workerid, false);
            m.workers.set_stopping(&name);
            if let Some(conn) = m.workers.get_conn(&name) {
                crate::workers::drain::send_shutdown(conn);
            }
            ok(rpc.id, Value::Null)
        }
        other => rpc_error(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            &format!("method {other:?} not supported"),
            rpc.id,
        ),
    }
}

/// `mirrors` `refresh` (our extension; param `name`, else every task mirror): refreshes
/// through the running master, which owns the mirror and its served manifest. This is what
/// `taskotron-master mirror refresh` calls while a master runs.
pub async fn mirrors(State(m): State<Arc<Master>>, headers: HeaderMap, body: Bytes) -> Response {
    let rpc = match parse(&m, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if rpc.method != "refresh" {
        return rpc_error(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            &format!(
                "method {:?} not supported (mirrors know \"refresh\")",
                rpc.method
            ),
            rpc.id,
        );
    }
    let name = match param_str(&rpc.params, "name") {
        Ok(n) => n,
        Err(msg) => return rpc_error(StatusCode::BAD_REQUEST, -32602, &msg, rpc.id),
    };
    match m.mirrors.refresh_named(name.as_deref()).await {
        Ok(outcomes) => {
            tracing::info!(name = ?name, "mirror refresh requested over the API");
            ok(rpc.id, json!(outcomes))
        }
        Err(e) => rpc_error(StatusCode::NOT_FOUND, -32602, &e.to_string(), rpc.id),
    }
}
