//! `taskotron-master jobs list|show|cancel|retry`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{render, time};
use super::{ApiArgs, Client};
use crate::db::results;

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// List jobs, newest first (pending ones in dispatch order).
    List {
        /// pending, running, finished or all.
        #[arg(long, default_value = "all")]
        state: String,
        /// Only jobs whose task name is this, or whose item starts with it.
        #[arg(long)]
        search: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only jobs with a smaller id (the next page).
        #[arg(long)]
        before: Option<i64>,
    },
    /// Show one job (by id or uuid) with its builds and steps.
    Show { job: String },
    /// Cancel a queued job, or stop it if it is running.
    Cancel {
        job: String,
        /// Why (recorded on the build).
        #[arg(long, default_value = "cancelled with taskotron-master jobs cancel")]
        reason: String,
    },
    /// Queue the same task, item, type and arch again as a new job.
    Retry { job: String },
}

fn result_name(v: &Value) -> String {
    match v.as_i64() {
        Some(r) if r >= 0 => results::name(r).to_string(),
        _ => "-".into(),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn job_rows(jobs: &[Value]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            vec![
                s(&j["brid"]),
                s(&j["state"]),
                result_name(&j["results"]),
                s(&j["taskname"]),
                s(&j["item"]),
                s(&j["item_type"]),
                s(&j["arch"]),
                s(&j["worker"]),
                time(j["submitted_at"].as_i64()),
                s(&j["uuid"]),
            ]
        })
        .collect()
}

async fn fetch(c: &Client, job: &str) -> anyhow::Result<Value> {
    if job.is_empty() || job.contains('/') {
        bail!("job {job:?}: expected a job id or uuid");
    }
    c.get(&format!("/api/ops/jobs/{job}")).await
}

pub async fn run(c: &Client, api: &ApiArgs, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::List {
            state,
            search,
            limit,
            before,
        } => {
            if crate::db::JobState::parse(&state).is_none() {
                bail!("--state {state:?}: expected pending, running, finished or all");
            }
            let mut path = format!("/api/ops/jobs?state={state}&limit={limit}");
            if let Some(q) = search {
                path.push_str("&q=");
                path.extend(form_urlencoded::byte_serialize(q.as_bytes()));
            }
            if let Some(b) = before {
                path.push_str(&format!("&before={b}"));
            }
            let v = c.get(&path).await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                println!("no jobs");
                return Ok(());
            }
            print!(
                "{}",
                render(
                    &[
                        "ID",
                        "STATE",
                        "RESULT",
                        "TASK",
                        "ITEM",
                        "TYPE",
                        "ARCH",
                        "WORKER",
                        "SUBMITTED",
                        "UUID"
                    ],
                    &job_rows(&jobs)
                )
            );
        }
        JobsCmd::Show { job } => {
            let v = fetch(c, &job).await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let j = &v["job"];
            for (k, key) in [
                ("id", "brid"),
                ("uuid", "uuid"),
                ("state", "state"),
                ("task", "taskname"),
                ("item", "item"),
                ("type", "item_type"),
                ("arch", "arch"),
                ("builder", "builder"),
                ("priority", "priority"),
                ("attempts", "attempts"),
                ("worker", "worker"),
            ] {
                println!("{k:<10} {}", s(&j[key]));
            }
            println!("{:<10} {}", "result", result_name(&j["results"]));
            println!("{:<10} {}", "submitted", time(j["submitted_at"].as_i64()));
            println!("{:<10} {}", "started", time(j["started_at"].as_i64()));
            println!("{:<10} {}", "finished", time(j["complete_at"].as_i64()));
            for b in v["builds"].as_array().into_iter().flatten() {
                println!(
                    "\nbuild {} on {}: {} ({})",
                    s(&b["buildid"]),
                    s(&b["worker"]),
                    s(&b["state_string"]),
                    result_name(&b["results"])
                );
                let rows: Vec<Vec<String>> = b["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|st| {
                        vec![
                            s(&st["number"]),
                            s(&st["name"]),
                            result_name(&st["results"]),
                            s(&st["state_string"]),
                        ]
                    })
                    .collect();
                print!("{}", render(&["#", "STEP", "RESULT", "STATE"], &rows));
            }
        }
        JobsCmd::Cancel { job, reason } => {
            let v = fetch(c, &job).await?;
            let brid = v["job"]["brid"].as_i64().unwrap_or(0);
            c.rpc(
                &format!("/api/v2/buildrequests/{brid}"),
                "cancel",
                json!({"reason": reason}),
            )
            .await?;
            if api.json {
                println!("{}", json!({"cancelled": brid}));
            } else {
                println!("job {brid}: cancel requested");
            }
        }
        JobsCmd::Retry { job } => {
            let v = fetch(c, &job).await?;
            let j = &v["job"];
            let prop = |k: &str| v["properties"][k][0].clone();
            let mut params = json!({
                "taskname": j["taskname"], "item": j["item"], "item_type": j["item_type"],
                "arch": j["arch"], "priority": j["priority"],
                "username": "taskotron-master jobs retry",
                "reason": format!("retry of job {}", s(&j["brid"])),
            });
            for k in ["git_repo", "git_branch"] {
                if prop(k).is_string() {
                    params[k] = prop(k);
                }
            }
            let (brid, bsid) = super::submit::force(c, params).await?;
            let new = c.get(&format!("/api/ops/jobs/{brid}")).await?;
            if api.json {
                println!(
                    "{}",
                    json!({"retry_of": j["brid"], "brid": brid, "bsid": bsid, "uuid": new["job"]["uuid"]})
                );
            } else {
                println!(
                    "job {brid} queued (retry of job {}), uuid {}",
                    s(&j["brid"]),
                    s(&new["job"]["uuid"])
                );
            }
        }
    }
    Ok(())
}
