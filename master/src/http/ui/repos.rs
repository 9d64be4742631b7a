//! `/ui/repos`: the task repositories the master mirrors, with their refresh state.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::html::{esc, layout, time_el};
use crate::state::Master;

pub async fn page(State(m): State<Arc<Master>>) -> Response {
    let status = m.mirrors.status();
    let mut body = String::from(
        "<p>The master mirrors every task repository and pins a job to the commit that was \
current at submission. The GrokMirror manifest is at <a href=\"/manifest.js.gz\">manifest.js.gz</a>.</p>",
    );
    if status.is_empty() {
        body.push_str("<p>No task repositories are configured.</p>");
        return layout("Task repositories", "/ui/repos", "", &body);
    }
    body.push_str(
        "<table class=\"repos\"><caption>Task repositories</caption><thead><tr>\
<th scope=\"col\">Task</th><th scope=\"col\">Kind</th><th scope=\"col\">Source</th>\
<th scope=\"col\">Branch</th><th scope=\"col\">Head</th><th scope=\"col\">Last refresh</th>\
<th scope=\"col\">Last change</th><th scope=\"col\">State</th></tr></thead><tbody>",
    );
    for s in status {
        let kind = s
            .kind
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let state = match &s.last_error {
            Some(e) => format!("<span class=\"badge r-failure\">error</span> {}", esc(e)),
            None if s.last_refresh.is_some() => "<span class=\"badge r-success\">ok</span>".into(),
            None => "not refreshed yet".into(),
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"item\">{}</td><td>{}</td>\
<td><code title=\"{h}\">{hs}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            esc(&kind),
            esc(&s.url),
            esc(s.branch.as_deref().unwrap_or("—")),
            time_el(s.last_refresh),
            time_el(s.last_change),
            state,
            h = esc(s.head.as_deref().unwrap_or("")),
            hs = esc(s
                .head
                .as_deref()
                .map(|h| h.get(..12).unwrap_or(h))
                .unwrap_or("—")),
        );
    }
    body.push_str("</tbody></table>");
    layout("Task repositories", "/ui/repos", "", &body)
}
