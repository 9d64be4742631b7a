//! `taskotron-master submit --task T --item I --type K --arch A`: a manual job through the
//! REST API's force scheduler, like Taskotron's force build form.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::{json, Value};

use super::{ApiArgs, Client};

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Task name (one of the master's `tasks`).
    #[arg(long)]
    pub task: String,
    /// Item to check, e.g. an NVR like bash-5.0.11-1.fc32.
    #[arg(long)]
    pub item: String,
    /// Item type, e.g. koji_build, bodhi_update, koji_tag, compose.
    #[arg(long = "type", default_value = "koji_build")]
    pub item_type: String,
    /// Arch (noarch runs on any worker).
    #[arg(long, default_value = "noarch")]
    pub arch: String,
    /// Higher runs first.
    #[arg(long, default_value_t = 0)]
    pub priority: i64,
    /// Job uuid (a new one by default).
    #[arg(long)]
    pub uuid: Option<String>,
    /// Run the task from this git repository instead of the configured one.
    #[arg(long)]
    pub git_repo: Option<String>,
    #[arg(long)]
    pub git_branch: Option<String>,
    /// Why (recorded as the build reason).
    #[arg(long, default_value = "submitted with taskotron-master submit")]
    pub reason: String,
}

/// Calls the `force` scheduler; returns (build request id, buildset id).
pub async fn force(c: &Client, params: Value) -> anyhow::Result<(i64, i64)> {
    let r = c
        .rpc("/api/v2/forceschedulers/force", "force", params)
        .await?;
    // Buildbot's reply: [bsid, {"<builderid>": brid}]
    let bsid = r[0]
        .as_i64()
        .context("force: unexpected reply (no buildset id)")?;
    let brid = r[1]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("force: unexpected reply {r}"))?;
    Ok((brid, bsid))
}

pub async fn run(c: &Client, a: &SubmitArgs) -> anyhow::Result<()> {
    let mut params = json!({
        "taskname": a.task, "item": a.item, "item_type": a.item_type, "arch": a.arch,
        "priority": a.priority, "reason": a.reason, "username": "taskotron-master submit",
    });
    for (k, v) in [
        ("uuid", &a.uuid),
        ("git_repo", &a.git_repo),
        ("git_branch", &a.git_branch),
    ] {
        if let Some(v) = v {
            params[k] = v.clone().into();
        }
    }
    let (brid, bsid) = force(c, params).await?;
    let job = c.get(&format!("/api/ops/jobs/{brid}")).await?;
    let uuid = job["job"]["uuid"].as_str().unwrap_or("").to_string();
    if a.api.json {
        println!("{}", json!({"brid": brid, "bsid": bsid, "uuid": uuid}));
    } else {
        println!(
            "job {brid} queued: {} on {} ({}), uuid {uuid}",
            a.task, a.item, a.arch
        );
    }
    Ok(())
}
