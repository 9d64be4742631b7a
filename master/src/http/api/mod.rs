//! Buildbot's REST data API v2, the subset Taskotron's tools use, with Buildbot 4.3's reply
//! shapes (tests/fixtures/buildbot/api_samples/). GETs are here; JSON-RPC control (POST) is in
//! `control.rs`; query parameters in `query.rs`, checked against each resource's fields
//! (`db/catalog.rs`) by `spec.rs` before anything is read, as Buildbot does.

mod control;
mod forcesched;
pub mod query;
mod spec;
mod sql;
#[cfg(test)]
mod sql_tests;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::db::catalog::{self, Entity};
use crate::db::{DbError, Filter};
use crate::state::Master;
use query::{collection, error, single, Query};
use spec::{Shape, Spec};
use sql::listing;

pub fn router() -> Router<Arc<Master>> {
    Router::new()
        .route("/api/v2", get(root))
        .route("/api/v2/", get(root))
        .route("/api/v2/masters", get(masters))
        .route("/api/v2/builders", get(builders))
        .route("/api/v2/builders/{b}", get(builder))
        .route("/api/v2/builders/{b}/builds", get(builder_builds))
        .route("/api/v2/builders/{b}/builds/{n}", get(builder_build))
        .route("/api/v2/builders/{b}/buildrequests", get(builder_requests))
        .route("/api/v2/mirrors", post(control::mirrors))
        .route("/api/v2/workers", get(workers))
        .route("/api/v2/workers/{w}", get(worker).post(control::worker))
        .route("/api/v2/builds", get(builds))
        .route("/api/v2/builds/{id}", get(build).post(control::build))
        .route("/api/v2/builds/{id}/properties", get(build_properties))
        .route("/api/v2/builds/{id}/steps", get(steps))
        .route("/api/v2/builds/{id}/steps/{s}", get(step))
        .route("/api/v2/builds/{id}/steps/{s}/logs", get(step_logs))
        .route("/api/v2/builds/{id}/steps/{s}/logs/{slug}", get(step_log))
        .route(
            "/api/v2/builds/{id}/steps/{s}/logs/{slug}/contents",
            get(step_log_contents),
        )
        .route(
            "/api/v2/builds/{id}/steps/{s}/logs/{slug}/raw",
            get(step_log_raw),
        )
        .route("/api/v2/logs/{logid}", get(log))
        .route("/api/v2/logs/{logid}/contents", get(log_contents))
        .route("/api/v2/logs/{logid}/raw", get(log_raw))
        .route("/api/v2/buildrequests", get(buildrequests))
        .route(
            "/api/v2/buildrequests/{id}",
            get(buildrequest).post(control::buildrequest),
        )
        .route(
            "/api/v2/buildrequests/{id}/builds",
            get(buildrequest_builds),
        )
        .route("/api/v2/buildsets", get(buildsets))
        .route("/api/v2/buildsets/{id}", get(buildset))
        .route("/api/v2/changes", get(changes))
        .route("/api/v2/changes/{id}", get(change))
        .route("/api/v2/forceschedulers", get(forcesched::list))
        .route(
            "/api/v2/forceschedulers/{name}",
            get(forcesched::one).post(control::force),
        )
}

type S = State<Arc<Master>>;
type Q = RawQuery;

fn db_err(e: DbError) -> Response {
    tracing::error!("REST API: {e}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// The query string, or Buildbot's 400 message when it does not fit `entity` (checked before
/// the resource is looked up, so a bad query on a missing item is a 400, as in Buildbot).
fn checked(raw: Option<String>, entity: &Entity, shape: Shape) -> Result<Query, String> {
    let q = Query::parse(raw.as_deref());
    Spec::parse(&q, entity, shape)?;
    Ok(q)
}

/// `checked`, returning the 400 from the handler.
macro_rules! query {
    ($raw:expr, $entity:expr, $shape:ident) => {
        match checked($raw, &$entity, Shape::$shape) {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        }
    };
}

macro_rules! tryr {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return db_err(e),
        }
    };
}

fn num(s: &str) -> Option<i64> {
    s.parse().ok()
}

async fn root() -> Response {
    let names = [
        "builders",
        "builds",
        "buildrequests",
        "workers",
        "buildsets",
        "changes",
        "forceschedulers",
        "masters",
        "logs",
    ];
    let links: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    Json(json!({"api_version": "v2", "links": links, "meta": {"total": links.len()}}))
        .into_response()
}

async fn masters(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::MASTERS, Collection);
    let row = json!({
        "active": true, "last_active": crate::db::now(), "masterid": 1,
        "name": format!("taskotron-master:{}", m.cfg.data_dir.display()),
    });
    collection("masters", &q, &catalog::MASTERS, vec![row])
}

/// Builder rows matching an id or a name.
fn find_builder(m: &Master, b: &str) -> Result<Vec<Value>, DbError> {
    let all = m.db.builders_json(&Filter::default())?;
    Ok(all
        .into_iter()
        .filter(|r| {
            r["name"].as_str() == Some(b) || Some(r["builderid"].as_i64().unwrap_or(-1)) == num(b)
        })
        .collect())
}

async fn builders(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDERS, Collection);
    let rows = tryr!(m.db.builders_json(&Filter::default()));
    collection("builders", &q, &catalog::BUILDERS, rows)
}

async fn builder(State(m): S, Path(b): Path<String>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDERS, Single);
    let rows = tryr!(find_builder(&m, &b));
    single("builders", &q, &catalog::BUILDERS, rows)
}

fn builder_id(m: &Master, b: &str) -> Result<Option<i64>, DbError> {
    Ok(find_builder(m, b)?
        .first()
        .and_then(|r| r["builderid"].as_i64()))
}

async fn builder_builds(State(m): S, Path(b): Path<String>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDS, Collection);
    let Some(id) = tryr!(builder_id(&m, &b)) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let (filter, props) = (Filter::by("builderid", id), q.has("property"));
    listing("builds", &q, &catalog::BUILDS, |p| {
        m.db.builds_page(&filter, props, p)
    })
}

async fn builder_build(
    State(m): S,
    Path((b, n)): Path<(String, String)>,
    RawQuery(q): Q,
) -> Response {
    let Some(n) = num(&n) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::BUILDS, Single);
    let Some(id) = tryr!(builder_id(&m, &b)) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let rows = tryr!(m.db.builds_json(
        &Filter(vec![("builderid", id), ("number", n)]),
        q.has("property")
    ));
    single("builds", &q, &catalog::BUILDS, rows)
}

async fn builder_requests(State(m): S, Path(b): Path<String>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDREQUESTS, Collection);
    let Some(id) = tryr!(builder_id(&m, &b)) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let filter = Filter::by("builderid", id);
    listing("buildrequests", &q, &catalog::BUILDREQUESTS, |p| {
        m.db.buildrequests_page(&filter, p)
    })
}

fn workers_rows(m: &Master) -> Result<Vec<Value>, DbError> {
    m.db.workers_json(&Filter::default(), &|name| m.builder_ids_of(name))
}

async fn workers(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::WORKERS, Collection);
    collection("workers", &q, &catalog::WORKERS, tryr!(workers_rows(&m)))
}

async fn worker(State(m): S, Path(w): Path<String>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::WORKERS, Single);
    let rows: Vec<Value> = tryr!(workers_rows(&m))
        .into_iter()
        .filter(|r| r["name"].as_str() == Some(w.as_str()) || r["workerid"].as_i64() == num(&w))
        .collect();
    single("workers", &q, &catalog::WORKERS, rows)
}

async fn builds(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDS, Collection);
    let props = q.has("property");
    listing("builds", &q, &catalog::BUILDS, |p| {
        m.db.builds_page(&Filter::default(), props, p)
    })
}

async fn build(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::BUILDS, Single);
    let rows = tryr!(m
        .db
        .builds_json(&Filter::by("buildid", id), q.has("property")));
    single("builds", &q, &catalog::BUILDS, rows)
}

async fn build_properties(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    // Only `property=`, `limit=`, `offset=` pass (Buildbot's type here has no fields), and
    // they change nothing.
    query!(q, catalog::BUILD_PROPERTIES, Single);
    match tryr!(m.db.build_properties(id)) {
        Some(p) => Json(json!({"properties": [p], "meta": {}})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn find_step(m: &Master, build: &str, s: &str) -> Result<Option<Value>, DbError> {
    let Some(b) = num(build) else { return Ok(None) };
    let steps = m.db.steps_json(&Filter::by("buildid", b))?;
    Ok(steps
        .into_iter()
        .find(|r| r["name"].as_str() == Some(s) || r["number"].as_i64() == num(s)))
}

async fn steps(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::STEPS, Collection);
    let filter = Filter::by("buildid", id);
    listing("steps", &q, &catalog::STEPS, |p| {
        m.db.steps_page(&filter, p)
    })
}

async fn step(State(m): S, Path((id, s)): Path<(String, String)>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::STEPS, Single);
    let rows: Vec<Value> = tryr!(find_step(&m, &id, &s)).into_iter().collect();
    single("steps", &q, &catalog::STEPS, rows)
}

async fn step_logs(State(m): S, Path((id, s)): Path<(String, String)>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::LOGS, Collection);
    let Some(step) = tryr!(find_step(&m, &id, &s)) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let filter = Filter::by("stepid", step["stepid"].as_i64().unwrap_or(-1));
    listing("logs", &q, &catalog::LOGS, |p| m.db.logs_page(&filter, p))
}

fn find_log(m: &Master, id: &str, s: &str, slug: &str) -> Result<Option<Value>, DbError> {
    let Some(step) = find_step(m, id, s)? else {
        return Ok(None);
    };
    let stepid = step["stepid"].as_i64().unwrap_or(-1);
    Ok(m.db
        .logs_json(&Filter::by("stepid", stepid))?
        .into_iter()
        .find(|l| l["slug"].as_str() == Some(slug)))
}

async fn step_log(
    State(m): S,
    Path((id, s, slug)): Path<(String, String, String)>,
    RawQuery(q): Q,
) -> Response {
    let q = query!(q, catalog::LOGS, Single);
    let rows: Vec<Value> = tryr!(find_log(&m, &id, &s, &slug)).into_iter().collect();
    single("logs", &q, &catalog::LOGS, rows)
}

async fn step_log_contents(
    State(m): S,
    Path((id, s, slug)): Path<(String, String, String)>,
    RawQuery(q): Q,
) -> Response {
    let q = query!(q, catalog::LOGCHUNKS, Single);
    match tryr!(find_log(&m, &id, &s, &slug)) {
        Some(l) => contents(&m, l["logid"].as_i64().unwrap_or(-1), &q),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn step_log_raw(
    State(m): S,
    Path((id, s, slug)): Path<(String, String, String)>,
    RawQuery(q): Q,
) -> Response {
    query!(q, catalog::LOGCHUNKS, Single);
    match tryr!(find_log(&m, &id, &s, &slug)) {
        Some(l) => raw(&m, l["logid"].as_i64().unwrap_or(-1)),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn log(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::LOGS, Single);
    let rows = tryr!(m.db.logs_json(&Filter::by("logid", id)));
    single("logs", &q, &catalog::LOGS, rows)
}

async fn log_contents(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::LOGCHUNKS, Single);
    match num(&id) {
        Some(id) if !tryr!(m.db.logs_json(&Filter::by("logid", id))).is_empty() => {
            contents(&m, id, &q)
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn log_raw(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    query!(q, catalog::LOGCHUNKS, Single);
    match num(&id) {
        Some(id) if !tryr!(m.db.logs_json(&Filter::by("logid", id))).is_empty() => raw(&m, id),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `logchunks` reply: one chunk, lines prefixed `h`/`o`/`e`. Like Buildbot, `?offset=N&limit=M`
/// (in lines) returns a window of the log; without them, the whole log. `field=` selects.
fn contents(m: &Master, logid: i64, q: &Query) -> Response {
    let number = |key: &str| -> Result<Option<usize>, String> {
        q.get(key)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    format!("query parameter {key}: expected a number of lines, got {v:?}")
                })
            })
            .transpose()
    };
    let (offset, limit) = match (number("offset"), number("limit")) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let content = if offset.is_none() && limit.is_none() {
        tryr!(m.db.log_content(logid))
    } else {
        let (lines, _) = tryr!(m.db.log_lines(
            logid,
            offset.unwrap_or(0) as i64,
            limit.unwrap_or(usize::MAX)
        ));
        lines.iter().map(|l| format!("{l}\n")).collect()
    };
    let chunk = json!({"content": content, "firstline": offset.unwrap_or(0), "logid": logid});
    Json(json!({"logchunks": q.project(vec![chunk]), "meta": {}})).into_response()
}

/// Plain text with Buildbot's small header, stream prefixes removed.
fn raw(m: &Master, logid: i64) -> Response {
    let content = tryr!(m.db.log_content(logid));
    let mut out = String::new();
    if let Some((builder, number, worker)) = tryr!(m.db.log_context(logid)) {
        out.push_str(&format!(
            "Builder: {builder}\nBuild number: {number}\nWorker name: {worker}\n"
        ));
    }
    for line in content.split_inclusive('\n') {
        out.push_str(line.get(1..).unwrap_or(""));
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
}

async fn buildrequests(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDREQUESTS, Collection);
    listing("buildrequests", &q, &catalog::BUILDREQUESTS, |p| {
        m.db.buildrequests_page(&Filter::default(), p)
    })
}

async fn buildrequest(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::BUILDREQUESTS, Single);
    let rows = tryr!(m.db.buildrequests_json(&Filter::by("buildrequestid", id)));
    single("buildrequests", &q, &catalog::BUILDREQUESTS, rows)
}

async fn buildrequest_builds(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::BUILDS, Collection);
    let (filter, props) = (Filter::by("buildrequestid", id), q.has("property"));
    listing("builds", &q, &catalog::BUILDS, |p| {
        m.db.builds_page(&filter, props, p)
    })
}

async fn buildsets(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::BUILDSETS, Collection);
    listing("buildsets", &q, &catalog::BUILDSETS, |p| {
        m.db.buildsets_page(&Filter::default(), p)
    })
}

async fn buildset(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::BUILDSETS, Single);
    let rows = tryr!(m.db.buildsets_json(&Filter::by("bsid", id)));
    single("buildsets", &q, &catalog::BUILDSETS, rows)
}

async fn changes(State(m): S, RawQuery(q): Q) -> Response {
    let q = query!(q, catalog::CHANGES, Collection);
    listing("changes", &q, &catalog::CHANGES, |p| {
        m.db.changes_page(&Filter::default(), p)
    })
}

async fn change(State(m): S, Path(id): Path<String>, RawQuery(q): Q) -> Response {
    let Some(id) = num(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let q = query!(q, catalog::CHANGES, Single);
    let rows = tryr!(m.db.changes_json(&Filter::by("changeid", id)));
    single("changes", &q, &catalog::CHANGES, rows)
}
