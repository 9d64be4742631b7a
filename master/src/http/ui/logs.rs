//! `/ui/logs/<id>`: one step log; `/ui/logs/<id>/events`: its new lines as Server-Sent Events.
//!
//! Every `lines` event carries a JSON list of lines (each with its `h`/`o`/`e` stream prefix)
//! and the id of the next line, so a reconnecting `EventSource` sends `Last-Event-ID` and
//! continues exactly where it stopped. A final `end` event says the log is complete. The
//! stream polls the database, which the build step appends to as the worker sends output.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use super::html::{error_page, esc, layout, log_line, time_el};
use crate::state::Master;

/// Lines a log page renders; longer logs link to the raw text.
const PAGE_LINES: usize = 20_000;
/// Lines per SSE event at most.
const BATCH: usize = 500;
const POLL: Duration = Duration::from_millis(250);

pub async fn page(State(m): State<Arc<Master>>, Path(id): Path<String>) -> Response {
    let Ok(logid) = id.parse::<i64>() else {
        return error_page(StatusCode::NOT_FOUND, "no such log");
    };
    let data = super::db(&m, move |m| {
        let Some(ctx) = m.db.log_info(logid)? else {
            return Ok(None);
        };
        let (lines, complete) = m.db.log_lines(logid, 0, PAGE_LINES)?;
        let pruned = m.db.log_pruned_at(logid)?;
        Ok(Some((ctx, lines, complete, pruned)))
    })
    .await;
    let (ctx, lines, complete, pruned) = match data {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "no such log"),
        Err(resp) => return resp,
    };
    let mut body = format!(
        "<p>Step <strong>{step}</strong> of <a href=\"/ui/jobs/{brid}\">job #{brid}</a> · \
<a href=\"/api/v2/logs/{logid}/raw\">raw text</a></p>",
        step = esc(&ctx.step),
        brid = ctx.brid,
    );
    if let Some(t) = pruned {
        body.push_str(&format!(
            "<p role=\"note\">The content of this log was deleted on {} by the retention policy \
(<code>retention.logs_days</code>).</p>",
            time_el(Some(t))
        ));
    }
    let live_attrs = if complete {
        body.push_str("<p>Connection: <span class=\"live-status\" role=\"status\" data-state=\"done\">complete</span></p>");
        String::new()
    } else {
        body.push_str(&format!(
            "<p>Connection: <span id=\"live-status-{logid}\" class=\"live-status\" role=\"status\" \
data-state=\"static\">not live (JavaScript off; reload for new lines)</span></p>"
        ));
        format!(
            " data-live-log=\"/ui/logs/{logid}/events\" data-from=\"{}\" data-status-id=\"live-status-{logid}\"",
            lines.len()
        )
    };
    if lines.len() >= PAGE_LINES {
        body.push_str(&format!(
            "<p>Only the first {PAGE_LINES} lines are shown; see the raw text for all of them.</p>"
        ));
    }
    body.push_str(&format!(
        "<pre class=\"log\" id=\"log-{logid}\"{live_attrs} tabindex=\"0\" aria-label=\"Log {}\">",
        esc(&ctx.log.name)
    ));
    for l in &lines {
        body.push_str(&log_line(l));
    }
    body.push_str("</pre>");
    layout(
        &format!("Log {} of step {}", ctx.log.name, ctx.step),
        "",
        "",
        &body,
    )
}

struct Cursor {
    m: Arc<Master>,
    logid: i64,
    next: i64,
    done: bool,
}

/// Where a stream starts: `Last-Event-ID` (a reconnect) wins over `?from=`.
fn start_line(headers: &HeaderMap, q: &HashMap<String, String>) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| q.get("from").and_then(|v| v.parse().ok()))
        .unwrap_or(0)
        .max(0)
}

pub async fn events(
    State(m): State<Arc<Master>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Ok(logid) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "no such log\n").into_response();
    };
    match super::db(&m, move |m| m.db.log_info(logid)).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::NOT_FOUND, "no such log\n").into_response(),
        Err(resp) => return resp,
    }
    let cursor = Cursor {
        m,
        logid,
        next: start_line(&headers, &q),
        done: false,
    };
    Sse::new(stream_lines(cursor))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn stream_lines(cursor: Cursor) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            let (m, logid, from) = (c.m.clone(), c.logid, c.next);
            let read =
                tokio::task::spawn_blocking(move || m.db.log_lines(logid, from, BATCH)).await;
            let (lines, complete) = match read {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::warn!(logid, "log stream: {e}");
                    c.done = true;
                    return Some((
                        Ok(Event::default().event("error").data("database error")),
                        c,
                    ));
                }
                Err(_) => return None,
            };
            if !lines.is_empty() {
                c.next += lines.len() as i64;
                let data = serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into());
                let ev = Event::default()
                    .event("lines")
                    .id(c.next.to_string())
                    .data(data);
                return Some((Ok(ev), c));
            }
            if complete {
                c.done = true;
                let ev = Event::default()
                    .event("end")
                    .id(c.next.to_string())
                    .data("complete");
                return Some((Ok(ev), c));
            }
            // Stopping and idle: close without `end`, so browsers reconnect (with
            // Last-Event-ID) instead of holding the graceful shutdown open.
            if c.m.shutting_down() {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    })
}
