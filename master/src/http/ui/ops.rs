//! `/api/ops/...`: the operators' view as JSON, for `taskotron-master jobs|workers` and
//! scripts. Read-only and open like the REST API's GETs; changes go through the Buildbot
//! REST API's JSON-RPC calls.
//!
//! `GET /api/ops/jobs?state=pending|running|finished|all&q=TEXT&before=ID&limit=N`,
//! `GET /api/ops/jobs/<id or uuid>`, `GET /api/ops/workers`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::db::{JobQuery, JobState};
use crate::state::Master;

fn bad(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

async fn run<T: serde::Serialize + Send + 'static>(
    m: &Arc<Master>,
    f: impl FnOnce(&Master) -> Result<T, crate::db::DbError> + Send + 'static,
) -> Response {
    let m = m.clone();
    match tokio::task::spawn_blocking(move || f(&m)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "database error"})),
        )
            .into_response(),
    }
}

pub async fn jobs(
    State(m): State<Arc<Master>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(state) = JobState::parse(q.get("state").map(String::as_str).unwrap_or("")) else {
        return bad("state: expected pending, running, finished or all");
    };
    let num = |k: &str| -> Result<Option<i64>, String> {
        match q.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{k}: expected an integer")),
        }
    };
    let (before, limit) = match (num("before"), num("limit")) {
        (Ok(b), Ok(l)) => (b, l.unwrap_or(50)),
        (Err(msg), _) | (_, Err(msg)) => return bad(&msg),
    };
    let query = JobQuery {
        state,
        search: q.get("q").cloned(),
        before,
        limit,
    };
    // Pending jobs are listed in dispatch order, like the queue page.
    if state == JobState::Pending
        && before.is_none()
        && query.search.as_deref().unwrap_or("").is_empty()
    {
        return run(&m, move |m| {
            Ok(json!({"jobs": m.db.queued_jobs(limit.clamp(1, 500))?}))
        })
        .await;
    }
    run(&m, move |m| Ok(json!({"jobs": m.db.jobs(&query)?}))).await
}

pub async fn job(State(m): State<Arc<Master>>, Path(id): Path<String>) -> Response {
    let m2 = m.clone();
    let found = tokio::task::spawn_blocking(
        move || -> Result<Option<serde_json::Value>, crate::db::DbError> {
            let brid = match id.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => m2.db.job_by_uuid(&id)?,
            };
            let Some(brid) = brid else { return Ok(None) };
            let Some(job) = m2.db.job(brid)? else {
                return Ok(None);
            };
            Ok(Some(json!({
                "job": job,
                "properties": m2.db.job_properties(brid)?,
                "builds": m2.db.job_builds(brid)?,
            })))
        },
    )
    .await;
    match found {
        Ok(Ok(Some(v))) => Json(v).into_response(),
        Ok(Ok(None)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "no such job"}))).into_response()
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "database error"})),
        )
            .into_response(),
    }
}

pub async fn workers(State(m): State<Arc<Master>>) -> Response {
    run(&m, |m| Ok(json!({"workers": super::worker_rows(m)?}))).await
}
