//! `/ui/` (what is queued and running now) and `/ui/jobs` (all jobs, newest first, filtered by
//! state and searched by task name or item prefix, paginated with `?before=<job id>`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{error_page, esc, jobs_table, qs};
use crate::db::{JobQuery, JobState};
use crate::state::Master;

const PAGE: i64 = 50;

pub async fn page(State(m): State<Arc<Master>>) -> Response {
    let data = super::db(&m, |m| {
        let counts = m.db.job_counts()?;
        let queued = m.db.queued_jobs(PAGE)?;
        let running = m.db.jobs(&JobQuery {
            state: JobState::Running,
            search: None,
            before: None,
            limit: 200,
        })?;
        let recent = m.db.jobs(&JobQuery {
            state: JobState::Finished,
            search: None,
            before: None,
            limit: 20,
        })?;
        Ok((counts, queued, running, recent))
    })
    .await;
    let ((pending, running_n), queued, running, recent) = match data {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let mut body = format!(
        "<p class=\"summary\" role=\"status\"><strong>{pending}</strong> queued · \
<strong>{running_n}</strong> running · <strong>{}</strong> workers connected</p>",
        m.workers.connected_count()
    );
    body.push_str("<section aria-labelledby=\"h-running\"><h2 id=\"h-running\">Running</h2>");
    body.push_str(&jobs_table("Running jobs", &running, "Nothing is running."));
    body.push_str(
        "</section><section aria-labelledby=\"h-queued\"><h2 id=\"h-queued\">Queued</h2>",
    );
    body.push_str(&jobs_table(
        "Queued jobs, in the order they will be dispatched",
        &queued,
        "The queue is empty.",
    ));
    if pending > PAGE {
        body.push_str(&format!(
            "<p><a href=\"/ui/jobs?state=pending\">All {pending} queued jobs</a></p>"
        ));
    }
    body.push_str(
        "</section><section aria-labelledby=\"h-recent\"><h2 id=\"h-recent\">Recently finished</h2>",
    );
    body.push_str(&jobs_table(
        "Recently finished jobs",
        &recent,
        "No job has finished yet.",
    ));
    body.push_str("<p><a href=\"/ui/jobs\">All jobs</a></p></section>");
    super::html::layout("Queue", "/ui/", "", &body)
}

pub async fn history(
    State(m): State<Arc<Master>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state_s = q.get("state").cloned().unwrap_or_default();
    let Some(state) = JobState::parse(&state_s) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "state: expected pending, running, finished or all",
        );
    };
    let before = match q.get("before").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => return error_page(StatusCode::BAD_REQUEST, "before: expected a job id"),
        },
    };
    let search = q.get("q").cloned().unwrap_or_default();
    if search.len() > 1000 {
        return error_page(StatusCode::BAD_REQUEST, "q: too long");
    }
    let query = JobQuery {
        state,
        search: Some(search.clone()),
        before,
        limit: PAGE,
    };
    let jobs = match super::db(&m, move |m| m.db.jobs(&query)).await {
        Ok(j) => j,
        Err(resp) => return resp,
    };
    let mut body = String::from(
        "<form method=\"get\" action=\"/ui/jobs\" class=\"filters\"><p>\
<label for=\"f-q\">Task name or item</label> ",
    );
    body.push_str(&format!(
        "<input id=\"f-q\" name=\"q\" type=\"search\" value=\"{}\"> <label for=\"f-state\">State</label> \
<select id=\"f-state\" name=\"state\">",
        esc(&search)
    ));
    for (v, label) in [
        ("all", "all"),
        ("pending", "queued"),
        ("running", "running"),
        ("finished", "finished"),
    ] {
        let sel = if v == state_s || (state_s.is_empty() && v == "all") {
            " selected"
        } else {
            ""
        };
        body.push_str(&format!("<option value=\"{v}\"{sel}>{label}</option>"));
    }
    body.push_str("</select> <button type=\"submit\">Filter</button></p></form>");
    let caption = if search.trim().is_empty() {
        "Jobs, newest first".to_string()
    } else {
        format!("Jobs matching “{}”, newest first", search.trim())
    };
    body.push_str(&jobs_table(&caption, &jobs, "No jobs match."));
    if jobs.len() as i64 == PAGE {
        if let Some(last) = jobs.last() {
            body.push_str(&format!(
                "<nav aria-label=\"Pagination\"><p><a rel=\"next\" href=\"/ui/jobs?state={}&amp;q={}&amp;before={}\">Older jobs →</a></p></nav>",
                qs(&state_s),
                qs(&search),
                last.brid
            ));
        }
    }
    super::html::layout("Jobs", "/ui/jobs", &search, &body)
}
