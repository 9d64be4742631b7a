//! `/api/v2/forceschedulers`: the `rpmcheck` (and `force`) schedulers of Taskotron's master,
//! with Buildbot's field descriptions, so a Buildbot client sees what `force` accepts.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::query::{collection, single, Query};
use crate::db::{catalog, Filter};
use crate::state::Master;

/// Names of the force schedulers (both take the Taskotron properties).
pub const NAMES: &[&str] = &["rpmcheck", "force"];

fn field(name: &str, typ: &str, default: Value, label: &str) -> Value {
    json!({
        "autopopulate": null, "default": default, "fullName": name, "hide": false, "label": label,
        "maxsize": null, "multiple": false, "name": name, "regex": null, "required": false,
        "size": 10, "tablabel": label, "tooltip": "", "type": typ,
    })
}

fn nested(fields: Vec<Value>, columns: u32) -> Value {
    json!({
        "autopopulate": null, "columns": columns, "default": "", "fields": fields, "fullName": null,
        "hide": false, "label": "", "layout": "vertical", "maxsize": null, "multiple": false, "name": "",
        "regex": null, "required": false, "tablabel": "", "tooltip": "", "type": "nested",
    })
}

pub fn describe(m: &Master, name: &str) -> Value {
    let builders: Vec<Value> =
        m.db.builders_json(&Filter::default())
            .unwrap_or_default()
            .into_iter()
            .map(|b| b["name"].clone())
            .collect();
    let mut all = vec![
        nested(
            vec![
                field("username", "username", json!(""), "Your name:"),
                field("reason", "text", json!("force build"), "reason"),
                field("priority", "int", json!(0), "priority"),
            ],
            1,
        ),
        nested(
            vec![
                field("branch", "text", json!(""), "Branch:"),
                field("project", "text", json!(""), "Project:"),
                field("repository", "text", json!(""), "Repository:"),
                field("revision", "text", json!(""), "Revision:"),
            ],
            2,
        ),
    ];
    for (p, d) in [
        ("taskname", "rpmlint"),
        ("item", ""),
        ("item_type", "koji_build"),
        ("uuid", ""),
        ("arch", "x86_64"),
        ("git_repo", ""),
        ("git_branch", ""),
    ] {
        all.push(field(p, "text", json!(d), p));
    }
    json!({
        "all_fields": all, "builder_names": builders, "button_name": name, "enabled": true,
        "label": name, "name": name,
    })
}

pub async fn list(State(m): State<Arc<Master>>, RawQuery(q): RawQuery) -> Response {
    collection(
        "forceschedulers",
        &Query::parse(q.as_deref()),
        &catalog::FORCESCHEDULERS,
        NAMES.iter().map(|n| describe(&m, n)).collect(),
    )
}

pub async fn one(
    State(m): State<Arc<Master>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    // No rows for an unknown name: `single` answers 404 once the query has been checked.
    let rows = match NAMES.contains(&name.as_str()) {
        true => vec![describe(&m, &name)],
        false => vec![],
    };
    single(
        "forceschedulers",
        &Query::parse(q.as_deref()),
        &catalog::FORCESCHEDULERS,
        rows,
    )
}
