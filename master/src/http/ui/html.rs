//! HTML building blocks shared by the pages: escaping, the page layout, times and results.

use std::fmt::Write as _;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::db::{results, JobRow};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn qs(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Navigation entries: (href, label).
const NAV: &[(&str, &str)] = &[
    ("/ui/", "Queue"),
    ("/ui/jobs", "Jobs"),
    ("/ui/workers", "Workers"),
    ("/ui/repos", "Task repositories"),
];

/// A whole page. `current` is the nav entry to mark; `search` pre-fills the search box.
pub fn layout(title: &str, current: &str, search: &str, body: &str) -> Response {
    let mut nav = String::new();
    for (href, label) in NAV {
        let cur = if *href == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{href}\"{cur}>{label}</a></li>");
    }
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · Taskotron</title><link rel=\"stylesheet\" href=\"/ui/static/style.css\">\
<script src=\"/ui/static/live.js\" defer></script></head>\n<body>\
<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><p class=\"brand\"><a href=\"/ui/\">Taskotron</a></p>\
<nav aria-label=\"Main\"><ul>{nav}</ul></nav>\
<form role=\"search\" action=\"/ui/jobs\" method=\"get\"><label for=\"search-q\">Search jobs</label> \
<input id=\"search-q\" name=\"q\" type=\"search\" value=\"{s}\" placeholder=\"task name or item\"> \
<button type=\"submit\">Search</button></form></header>\n\
<main id=\"main\"><h1>{t}</h1>\n{body}</main></body></html>\n",
        t = esc(title),
        s = esc(search),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

pub fn error_page(status: StatusCode, msg: &str) -> Response {
    let mut r = layout(
        status.canonical_reason().unwrap_or("Error"),
        "",
        "",
        &format!("<p role=\"alert\">{}</p>", esc(msg)),
    );
    *r.status_mut() = status;
    r
}

/// `2026-11-28 14:58:27` (UTC) from epoch seconds.
pub fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A `<time>` element, or an em dash.
pub fn time_el(t: Option<i64>) -> String {
    match t {
        Some(t) => {
            let s = fmt_time(t);
            format!("<time datetime=\"{}Z\">{s} UTC</time>", s.replace(' ', "T"))
        }
        None => "—".into(),
    }
}

/// `1h 2m 3s`.
pub fn fmt_duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s >= 3600 => format!("{}h {}m {}s", s / 3600, s % 3600 / 60, s % 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// A result badge (text, not only colour).
pub fn result_badge(r: Option<i64>) -> String {
    match r {
        None => "<span class=\"badge none\">—</span>".into(),
        Some(r) => {
            let n = results::name(r);
            format!("<span class=\"badge r-{n}\">{n}</span>")
        }
    }
}

/// A job's state: `pending`, `running (step)`, or its result.
pub fn job_state(j: &JobRow) -> String {
    match j.state {
        "finished" => result_badge(j.results),
        "running" => format!(
            "<span class=\"badge running\">running</span> {}",
            esc(j.state_string.as_deref().unwrap_or(""))
        ),
        _ => "<span class=\"badge pending\">pending</span>".into(),
    }
}

/// A table of jobs with a caption; `empty` is shown when there are none.
pub fn jobs_table(caption: &str, jobs: &[JobRow], empty: &str) -> String {
    if jobs.is_empty() {
        return format!("<p>{}</p>", esc(empty));
    }
    let mut s = format!(
        "<table class=\"jobs\"><caption>{}</caption><thead><tr><th scope=\"col\">Job</th>\
<th scope=\"col\">Task</th><th scope=\"col\">Item</th><th scope=\"col\">Type</th>\
<th scope=\"col\">Arch</th><th scope=\"col\">State</th><th scope=\"col\">Worker</th>\
<th scope=\"col\">Submitted</th></tr></thead><tbody>",
        esc(caption)
    );
    for j in jobs {
        let _ = write!(
            s,
            "<tr data-uuid=\"{uuid}\"><td><a href=\"/ui/jobs/{id}\">#{id}</a></td><td>{task}</td>\
<td class=\"item\">{item}</td><td>{typ}</td><td>{arch}</td><td>{state}</td><td>{worker}</td>\
<td>{sub}</td></tr>",
            uuid = esc(&j.uuid),
            id = j.brid,
            task = esc(&j.taskname),
            item = esc(&j.item),
            typ = esc(&j.item_type),
            arch = esc(&j.arch),
            state = job_state(j),
            worker = esc(j.worker.as_deref().unwrap_or("—")),
            sub = time_el(Some(j.submitted_at)),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// One log line (with its `h`/`o`/`e` stream prefix) as a span.
pub fn log_line(line: &str) -> String {
    let (class, text) = match line.chars().next() {
        Some(c @ ('h' | 'o' | 'e')) => (c, &line[1..]),
        _ => ('o', line),
    };
    format!("<span class=\"{class}\">{}\n</span>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_escaping() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(1_795_791_507), "2026-11-27 14:58:27");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(fmt_duration(3725), "1h 2m 5s");
        assert_eq!(
            log_line("e<oops>"),
            "<span class=\"e\">&lt;oops&gt;\n</span>"
        );
    }
}
