//! `/ui/jobs/<id>` (id or uuid): one job's properties, result, timing, artifacts, ResultYAML
//! outcomes, every attempt with its steps and logs, and the live log of the running step.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use taskotron_common::resultyaml;

use super::html::{
    error_page, esc, fmt_duration, job_state, layout, log_line, result_badge, time_el,
};
use crate::db::{BuildInfo, JobRow};
use crate::state::Master;

/// Lines of the running step's log shown inline (the log page has the rest).
const INLINE_LINES: i64 = 500;
/// Largest results.yml the page parses.
const MAX_RESULTS_BYTES: u64 = 4 << 20;

pub async fn page(State(m): State<Arc<Master>>, Path(id): Path<String>) -> Response {
    let data = super::db(&m, move |m| {
        let brid = match id.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => m.db.job_by_uuid(&id)?,
        };
        let Some(brid) = brid else { return Ok(None) };
        let Some(job) = m.db.job(brid)? else {
            return Ok(None);
        };
        let builds = m.db.job_builds(brid)?;
        let props = m.db.job_properties(brid)?;
        // The running step's stdio, for the inline live view.
        let live = match builds.last() {
            Some(b) if b.complete_at.is_none() => b
                .steps
                .iter()
                .rev()
                .find(|s| s.complete_at.is_none())
                .and_then(|s| s.logs.iter().find(|l| l.name == "stdio").cloned())
                .map(|l| (s_name(&builds), l)),
            _ => None,
        };
        let live = match live {
            Some((step, l)) => {
                let from = (l.num_lines - INLINE_LINES).max(0);
                let (lines, _) = m.db.log_lines(l.logid, from, INLINE_LINES as usize * 2)?;
                Some((step, l.logid, from, lines))
            }
            None => None,
        };
        Ok(Some((job, builds, props, live)))
    })
    .await;
    let (job, builds, props, live) = match data {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "no such job"),
        Err(resp) => return resp,
    };
    let mut body = summary(&job);
    if let Some((step, logid, from, lines)) = live {
        let _ = write!(
            body,
            "<section aria-labelledby=\"h-live\"><h2 id=\"h-live\">Live log: {step}</h2>\
<p>Connection: <span id=\"live-status-{logid}\" class=\"live-status\" role=\"status\" \
data-state=\"static\">not live (JavaScript off)</span> · <a href=\"/ui/logs/{logid}\">full log</a></p>\
<pre class=\"log\" id=\"log-{logid}\" data-live-log=\"/ui/logs/{logid}/events\" data-from=\"{next}\" \
data-status-id=\"live-status-{logid}\" tabindex=\"0\" aria-label=\"Log of step {step}\">",
            step = esc(&step),
            next = from + lines.len() as i64,
        );
        for l in &lines {
            body.push_str(&log_line(l));
        }
        body.push_str("</pre></section>");
    }
    body.push_str(&outcomes(&m, &job.uuid));
    for (i, b) in builds.iter().enumerate() {
        body.push_str(&build_section(i + 1, builds.len(), b));
    }
    body.push_str(&properties(&props));
    layout(
        &format!("Job #{}: {} on {}", job.brid, job.taskname, job.item),
        "",
        "",
        &body,
    )
}

fn s_name(builds: &[BuildInfo]) -> String {
    builds
        .last()
        .and_then(|b| b.steps.iter().rev().find(|s| s.complete_at.is_none()))
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

fn summary(j: &JobRow) -> String {
    let duration = match (j.started_at, j.complete_at) {
        (Some(s), Some(e)) => fmt_duration(e - s),
        (Some(s), None) => format!("{} so far", fmt_duration(crate::db::now() - s)),
        _ => "—".into(),
    };
    let wait = j
        .started_at
        .map(|s| fmt_duration(s - j.submitted_at))
        .unwrap_or_else(|| "—".into());
    let mut s = String::from("<dl class=\"summary\">");
    let mut row = |k: &str, v: String| {
        let _ = write!(s, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row("State", job_state(j));
    row("Task", esc(&j.taskname));
    row("Item", esc(&j.item));
    row("Item type", esc(&j.item_type));
    row(
        "Arch",
        format!("{} (builder {})", esc(&j.arch), esc(&j.builder)),
    );
    row("UUID", format!("<code>{}</code>", esc(&j.uuid)));
    row("Priority", j.priority.to_string());
    row("Attempts", j.attempts.to_string());
    row("Worker", esc(j.worker.as_deref().unwrap_or("—")));
    row("Submitted", time_el(Some(j.submitted_at)));
    row("Started", time_el(j.started_at));
    row("Finished", time_el(j.complete_at));
    row("Waited in queue", wait);
    row("Duration", duration);
    row(
        "Artifacts",
        format!(
            "<a href=\"/artifacts/{u}/\">/artifacts/{u}/</a>",
            u = esc(&j.uuid)
        ),
    );
    s.push_str("</dl>");
    s
}

/// The ResultYAML outcomes the task reported, if its artifacts have `taskotron/results.yml`.
fn outcomes(m: &Master, uuid: &str) -> String {
    if !crate::submit::valid_token(uuid, 128) {
        return String::new();
    }
    let path = m
        .cfg
        .artifacts_dir()
        .join(uuid)
        .join("taskotron/results.yml");
    let text = match std::fs::metadata(&path) {
        Ok(md) if md.len() <= MAX_RESULTS_BYTES => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return String::new(),
        },
        Ok(_) => return "<p>results.yml is too large to show here.</p>".into(),
        Err(_) => return String::new(),
    };
    let mut s =
        String::from("<section aria-labelledby=\"h-outcomes\"><h2 id=\"h-outcomes\">Outcomes</h2>");
    match resultyaml::import_yaml(&text) {
        Err(e) => {
            let _ = write!(
                s,
                "<p role=\"alert\">results.yml could not be read: {}</p>",
                esc(&e.to_string())
            );
        }
        Ok(details) if details.is_empty() => s.push_str("<p>The task reported no results.</p>"),
        Ok(details) => {
            s.push_str(
                "<table class=\"outcomes\"><caption>Results from taskotron/results.yml</caption><thead><tr>\
<th scope=\"col\">Check</th><th scope=\"col\">Item</th><th scope=\"col\">Type</th>\
<th scope=\"col\">Outcome</th><th scope=\"col\">Note</th><th scope=\"col\">Artifact</th></tr></thead><tbody>",
            );
            for d in details {
                let outcome = d.outcome.as_str();
                let artifact = match &d.artifact {
                    Some(a) => format!(
                        "<a href=\"/artifacts/{}/{}\">{}</a>",
                        esc(uuid),
                        esc(a.trim_start_matches('/')),
                        esc(a)
                    ),
                    None => "—".into(),
                };
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge o-{o}\">{o}</span></td><td>{}</td><td>{}</td></tr>",
                    esc(d.checkname.as_deref().unwrap_or("—")),
                    esc(d.item.as_deref().unwrap_or("—")),
                    esc(d.report_type.as_deref().unwrap_or("—")),
                    esc(&d.note),
                    artifact,
                    o = esc(outcome),
                );
            }
            s.push_str("</tbody></table>");
        }
    }
    s.push_str("</section>");
    s
}

fn build_section(n: usize, total: usize, b: &BuildInfo) -> String {
    let title = if total > 1 {
        format!("Attempt {n} of {total}: build {}", b.buildid)
    } else {
        format!("Build {}", b.buildid)
    };
    let mut s = format!(
        "<section aria-labelledby=\"h-build-{id}\"><h2 id=\"h-build-{id}\">{t}</h2>\
<p>On worker <strong>{w}</strong>, started {st}, {state} {r}</p>\
<table class=\"steps\"><caption>Steps of build {id}</caption><thead><tr><th scope=\"col\">#</th>\
<th scope=\"col\">Step</th><th scope=\"col\">State</th><th scope=\"col\">Result</th>\
<th scope=\"col\">Duration</th><th scope=\"col\">Logs</th></tr></thead><tbody>",
        id = b.buildid,
        t = esc(&title),
        w = esc(&b.worker),
        st = time_el(Some(b.started_at)),
        state = esc(&b.state_string),
        r = result_badge(b.results),
    );
    for step in &b.steps {
        let dur = match (step.started_at, step.complete_at) {
            (Some(a), Some(e)) => fmt_duration(e - a),
            (Some(_), None) => "running".into(),
            _ => "—".into(),
        };
        let logs: Vec<String> = step
            .logs
            .iter()
            .map(|l| {
                format!(
                    "<a href=\"/ui/logs/{}\">{}</a> ({} lines)",
                    l.logid,
                    esc(&l.name),
                    l.num_lines
                )
            })
            .collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            step.number,
            esc(&step.name),
            esc(&step.state_string),
            result_badge(step.results),
            dur,
            if logs.is_empty() {
                "—".into()
            } else {
                logs.join(", ")
            }
        );
    }
    s.push_str("</tbody></table></section>");
    s
}

fn properties(props: &Value) -> String {
    let Some(map) = props.as_object() else {
        return String::new();
    };
    let mut s = String::from(
        "<section aria-labelledby=\"h-props\"><h2 id=\"h-props\">Properties</h2>\
<table class=\"props\"><caption>Job properties</caption><thead><tr><th scope=\"col\">Name</th>\
<th scope=\"col\">Value</th><th scope=\"col\">Source</th></tr></thead><tbody>",
    );
    for (k, v) in map {
        let (val, src) = match v.as_array() {
            Some(a) if a.len() == 2 => (a[0].clone(), a[1].as_str().unwrap_or("").to_string()),
            _ => (v.clone(), String::new()),
        };
        let val = match val {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            esc(k),
            esc(&val),
            esc(&src)
        );
    }
    s.push_str("</tbody></table></section>");
    s
}
