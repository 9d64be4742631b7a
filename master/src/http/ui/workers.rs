//! `/ui/workers`: every configured or seen worker with its connection, arch, last heartbeat,
//! current jobs and paused/draining state; pause/unpause/drain buttons for an admin
//! (`POST /ui/workers/<name>/<action>`, the same effect as the REST API's JSON-RPC calls).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use super::auth::{is_admin, same_origin};
use super::html::{error_page, esc, layout, time_el};
use crate::db::Filter;
use crate::state::Master;

/// One worker as the UI and `workers list` show it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    pub workerid: i64,
    pub name: String,
    pub connected: bool,
    pub arch: String,
    pub max_builds: u32,
    pub paused: bool,
    pub pause_reason: Option<String>,
    /// Graceful stop requested: takes no new builds, shuts down once idle.
    pub draining: bool,
    /// Epoch seconds of the last answered keepalive (this master process).
    pub last_heartbeat: Option<i64>,
    pub host: Option<String>,
    pub version: Option<String>,
    /// (build request id, build id) of the builds it runs now.
    pub running: Vec<(i64, i64)>,
}

pub fn worker_rows(m: &Master) -> Result<Vec<WorkerRow>, crate::db::DbError> {
    let rows = m.db.workers_json(&Filter::default(), &|_| vec![])?;
    let archs = m.workers.archs();
    let mut running: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for b in m.running_builds().values() {
        running
            .entry(b.worker.clone())
            .or_default()
            .push((b.brid, b.buildid));
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("").to_string();
            let cfg = m.cfg.worker(&name);
            let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
            WorkerRow {
                workerid: r["workerid"].as_i64().unwrap_or(0),
                connected: m.workers.get_conn(&name).is_some(),
                arch: archs
                    .get(&name)
                    .cloned()
                    .or_else(|| cfg.map(|c| c.arch.clone()))
                    .unwrap_or_default(),
                max_builds: cfg.map(|c| c.max_builds).unwrap_or(1),
                paused: r["paused"] == true,
                pause_reason: text(&r["pause_reason"]),
                draining: r["graceful"] == true,
                last_heartbeat: m.metrics.last_heartbeat(&name),
                host: text(&r["workerinfo"]["host"]),
                version: text(&r["workerinfo"]["version"]),
                running: running.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect())
}

pub async fn page(State(m): State<Arc<Master>>, headers: HeaderMap) -> Response {
    let rows = match super::db(&m, worker_rows).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let admin = is_admin(&m, &headers);
    let mut body = String::new();
    if admin {
        body.push_str("<div class=\"admin-bar\">You can pause, unpause and drain workers. <form class=\"inline\" method=\"post\" action=\"/ui/logout\"><button type=\"submit\">Sign out</button></form></div>");
    } else {
        body.push_str("<p><a href=\"/ui/login\">Sign in with an API token</a> to pause, unpause or drain workers.</p>");
    }
    if rows.is_empty() {
        body.push_str("<p>No workers are configured.</p>");
        return layout("Workers", "/ui/workers", "", &body);
    }
    body.push_str(
        "<table class=\"workers\"><caption>Workers</caption><thead><tr><th scope=\"col\">Name</th>\
<th scope=\"col\">Connected</th><th scope=\"col\">Arch</th><th scope=\"col\">Last heartbeat</th>\
<th scope=\"col\">Current jobs</th><th scope=\"col\">State</th>",
    );
    if admin {
        body.push_str("<th scope=\"col\">Actions</th>");
    }
    body.push_str("</tr></thead><tbody>");
    for w in &rows {
        let jobs: Vec<String> = w
            .running
            .iter()
            .map(|(brid, _)| format!("<a href=\"/ui/jobs/{brid}\">#{brid}</a>"))
            .collect();
        let mut state = Vec::new();
        if w.paused {
            state.push(format!(
                "<span class=\"badge paused\">paused</span>{}",
                w.pause_reason
                    .as_deref()
                    .map(|r| format!(" ({})", esc(r)))
                    .unwrap_or_default()
            ));
        }
        if w.draining {
            state.push("<span class=\"badge draining\">draining</span>".into());
        }
        if state.is_empty() {
            state.push(if w.connected { "active" } else { "—" }.into());
        }
        let _ = write!(
            body,
            "<tr id=\"worker-{n}\" data-paused=\"{p}\"><th scope=\"row\">{n}</th><td>{c}</td><td>{a}</td>\
<td>{hb}</td><td>{jobs}</td><td class=\"state\">{st}</td>",
            n = esc(&w.name),
            p = w.paused,
            c = if w.connected { "yes" } else { "no" },
            a = esc(&w.arch),
            hb = time_el(w.last_heartbeat),
            jobs = if jobs.is_empty() { "—".into() } else { jobs.join(", ") },
            st = state.join(" "),
        );
        if admin {
            let mut actions = String::new();
            let (act, label) = if w.paused {
                ("unpause", "Unpause")
            } else {
                ("pause", "Pause")
            };
            let _ = write!(
                actions,
                "<form class=\"inline\" method=\"post\" action=\"/ui/workers/{n}/{act}\">\
<button type=\"submit\" id=\"{act}-{n}\" aria-label=\"{label} worker {n}\">{label}</button></form>",
                n = esc(&w.name)
            );
            if !w.draining && w.connected {
                let _ = write!(
                    actions,
                    " <form class=\"inline\" method=\"post\" action=\"/ui/workers/{n}/drain\">\
<button type=\"submit\" id=\"drain-{n}\" aria-label=\"Drain worker {n}\">Drain</button></form>",
                    n = esc(&w.name)
                );
            }
            let _ = write!(body, "<td>{actions}</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table><p>Drain: the worker finishes its running builds, takes no new ones, then is asked to shut down (Buildbot's graceful stop).</p>");
    layout("Workers", "/ui/workers", "", &body)
}

/// What a worker control does; shared with nothing else on purpose: it mirrors the JSON-RPC
/// `pause`/`unpause`/`stop` of `/api/v2/workers/<name>`.
pub async fn apply(m: &Arc<Master>, name: &str, action: &str) -> Result<(), (StatusCode, String)> {
    let rows =
        m.db.workers_json(&Filter::default(), &|_| vec![])
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(workerid) = rows
        .iter()
        .find(|r| r["name"].as_str() == Some(name))
        .and_then(|r| r["workerid"].as_i64())
    else {
        return Err((StatusCode::NOT_FOUND, format!("no worker named {name:?}")));
    };
    let db_err = |e: crate::db::DbError| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    match action {
        "pause" | "unpause" => {
            let paused = action == "pause";
            let reason = paused.then_some("paused from the web UI");
            m.db.set_worker_paused(workerid, paused, reason)
                .map_err(db_err)?;
            m.workers.set_paused(name, paused);
            m.wake.notify_one();
        }
        "drain" => {
            crate::workers::drain::drain(m, name, workerid).map_err(db_err)?;
        }
        other => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}; expected pause, unpause or drain"),
            ))
        }
    }
    tracing::info!(worker = %name, action, "worker control from the web UI");
    Ok(())
}

pub async fn action(
    State(m): State<Arc<Master>>,
    Path((name, act)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        return error_page(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    if !is_admin(&m, &headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "sign in with an API token to control workers",
        );
    }
    match apply(&m, &name, &act).await {
        Ok(()) => Redirect::to("/ui/workers").into_response(),
        Err((status, msg)) => error_page(status, &msg),
    }
}
