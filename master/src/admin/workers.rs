//! `taskotron-master workers list|pause|unpause|drain`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{json, Value};

use super::table::{render, time};
use super::{ApiArgs, Client};

#[derive(Subcommand, Debug)]
pub enum WorkersCmd {
    /// List workers: connection, arch, state, last heartbeat, current jobs.
    List,
    /// Stop giving a worker new builds (running ones finish).
    Pause {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a paused worker take builds again.
    Unpause { name: String },
    /// Finish running builds, take no new ones, then shut the worker down (graceful stop).
    Drain { name: String },
}

fn state(w: &Value) -> String {
    let mut s = vec![];
    if w["paused"] == true {
        s.push("paused");
    }
    if w["draining"] == true {
        s.push("draining");
    }
    if s.is_empty() {
        s.push(if w["connected"] == true {
            "active"
        } else {
            "-"
        });
    }
    s.join(",")
}

pub async fn run(c: &Client, api: &ApiArgs, cmd: WorkersCmd) -> anyhow::Result<()> {
    let (name, method, params) = match cmd {
        WorkersCmd::List => {
            let v = c.get("/api/ops/workers").await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["workers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| {
                    let jobs: Vec<String> = w["running"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p[0].as_i64().map(|b| b.to_string()))
                        .collect();
                    vec![
                        w["name"].as_str().unwrap_or("").to_string(),
                        if w["connected"] == true { "yes" } else { "no" }.to_string(),
                        w["arch"].as_str().unwrap_or("").to_string(),
                        state(w),
                        time(w["last_heartbeat"].as_i64()),
                        if jobs.is_empty() {
                            "-".into()
                        } else {
                            jobs.join(",")
                        },
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no workers");
            } else {
                print!(
                    "{}",
                    render(
                        &[
                            "NAME",
                            "CONNECTED",
                            "ARCH",
                            "STATE",
                            "LAST HEARTBEAT",
                            "JOBS"
                        ],
                        &rows
                    )
                );
            }
            return Ok(());
        }
        WorkersCmd::Pause { name, reason } => (
            name,
            "pause",
            json!({"reason": reason.unwrap_or_else(|| "paused with taskotron-master workers pause".into())}),
        ),
        WorkersCmd::Unpause { name } => (name, "unpause", json!({})),
        WorkersCmd::Drain { name } => (name, "stop", json!({})),
    };
    if name.is_empty() || name.contains('/') {
        bail!("worker name {name:?}: expected a worker name");
    }
    c.rpc(&format!("/api/v2/workers/{name}"), method, params)
        .await?;
    let done = match method {
        "stop" => "draining",
        "pause" => "paused",
        _ => "unpaused",
    };
    if api.json {
        println!("{}", json!({"worker": name, "state": done}));
    } else {
        println!("worker {name}: {done}");
    }
    Ok(())
}
