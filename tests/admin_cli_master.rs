//! `taskotron-master jobs|workers|submit` against a running master (the real binaries): tables
//! and `--json`, cancel/retry, pause/unpause/drain, and the errors an operator can hit.

mod master_support;
mod util;

use std::process::{Command, Output};
use std::time::Duration;

use master_support::{Env, Opts, TOKEN};
use serde_json::Value;

const T: Duration = Duration::from_secs(90);

/// Runs the CLI with `--config` pointing at the test master (URL and token come from it).
fn cli(env: &Env, args: &[&str]) -> Output {
    Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(env.config_path())
        .args(args)
        .env_remove("TASKOTRON_TOKEN")
        .env_remove("TASKOTRON_MASTER_URL")
        .output()
        .expect("run taskotron-master")
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = cli(env, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(env: &Env, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let s = ok(env, &a);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {s}"))
}

fn fails(env: &Env, args: &[&str], code: i32, needle: &str) {
    let out = cli(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in {stderr}"
    );
}

#[test]
fn jobs_and_workers_commands_drive_a_running_master() {
    let env = Env::new(Opts::default());

    // submit: a manual job through the force scheduler (no worker yet, so it stays queued).
    let out = ok(
        &env,
        &[
            "submit",
            "--task",
            "demo",
            "--item",
            "cli-bash-5.0-1.fc32",
            "--arch",
            "x86_64",
        ],
    );
    assert!(
        out.starts_with("job 1 queued: demo on cli-bash-5.0-1.fc32 (x86_64), uuid "),
        "{out}"
    );
    let s2 = json(
        &env,
        &[
            "submit",
            "--task",
            "demo",
            "--item",
            "cli-zsh-5.8-1.fc32",
            "--arch",
            "x86_64",
            "--uuid",
            "cli-0002",
        ],
    );
    assert_eq!(s2["brid"], 2);
    assert_eq!(s2["uuid"], "cli-0002");

    // jobs list: a table by default, JSON on request.
    let table = ok(&env, &["jobs", "list"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE") && header.contains("ITEM"),
        "{table}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with("2 ")
            && rows[0].contains("pending")
            && rows[0].contains("cli-zsh-5.8-1.fc32"),
        "{table}"
    );
    let pending = json(&env, &["jobs", "list", "--state", "pending"]);
    let ids: Vec<i64> = pending["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["brid"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2], "pending jobs in dispatch order");
    let found = json(&env, &["jobs", "list", "--search", "cli-zsh"]);
    assert_eq!(found["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(found["jobs"][0]["uuid"], "cli-0002");

    // jobs show, by id and by uuid.
    let show = ok(&env, &["jobs", "show", "2"]);
    assert!(
        show.contains("uuid       cli-0002") && show.contains("state      pending"),
        "{show}"
    );
    assert_eq!(json(&env, &["jobs", "show", "cli-0002"])["job"]["brid"], 2);

    // jobs cancel: the queued job ends CANCELLED (Buildbot result 6).
    assert_eq!(
        ok(&env, &["jobs", "cancel", "1"]).trim(),
        "job 1: cancel requested"
    );
    let j1 = json(&env, &["jobs", "show", "1"]);
    assert_eq!(j1["job"]["state"], "finished");
    assert_eq!(j1["job"]["results"], 6);

    // jobs retry: same task/item/type/arch as a new job with a new uuid.
    let r = json(&env, &["jobs", "retry", "1"]);
    assert_eq!(r["retry_of"], 1);
    assert_eq!(r["brid"], 3);
    let j3 = json(&env, &["jobs", "show", "3"]);
    assert_eq!(j3["job"]["item"], "cli-bash-5.0-1.fc32");
    assert_eq!(j3["job"]["arch"], "x86_64");
    assert_ne!(j3["job"]["uuid"], j1["job"]["uuid"]);

    // workers: pause before the worker connects its first build, then unpause → jobs run.
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    assert_eq!(
        ok(&env, &["workers", "pause", "w1", "--reason", "maintenance"]).trim(),
        "worker w1: paused"
    );
    let w = env.get("/api/v2/workers/w1");
    assert_eq!(w["workers"][0]["paused"], true);
    assert_eq!(w["workers"][0]["pause_reason"], "maintenance");
    let list = ok(&env, &["workers", "list"]);
    assert!(list.lines().next().unwrap().starts_with("NAME"), "{list}");
    let row = list.lines().find(|l| l.starts_with("w1 ")).expect("w1 row");
    assert!(
        row.contains("yes") && row.contains("paused") && row.contains("x86_64"),
        "{list}"
    );
    ok(&env, &["workers", "unpause", "w1"]);
    assert_eq!(env.get("/api/v2/workers/w1")["workers"][0]["paused"], false);
    for uuid in ["cli-0002", j3["job"]["uuid"].as_str().unwrap()] {
        let b = env.wait_done(uuid, T);
        assert_eq!(b["results"], 0, "{b}");
    }
    let finished = json(&env, &["jobs", "list", "--state", "finished"]);
    let results: Vec<i64> = finished["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["results"].as_i64().unwrap())
        .collect();
    assert_eq!(
        results,
        vec![0, 0, 6],
        "newest first: 3 ok, 2 ok, 1 cancelled"
    );
    util::wait_for("a keepalive answered (interval 1 s)", T, || {
        json(&env, &["workers", "list"])["workers"][0]["last_heartbeat"].as_i64()
    });

    // drain: graceful stop (Buildbot's `stop`): the worker is marked and takes no new builds.
    assert_eq!(
        ok(&env, &["workers", "drain", "w1"]).trim(),
        "worker w1: draining"
    );
    util::wait_for("drained worker gone", T, || {
        (env.get("/healthz")["workers_connected"] == 0).then_some(())
    });
    assert_eq!(
        env.get("/api/v2/workers/w1")["workers"][0]["graceful"],
        true
    );

    // Errors: one line, exit 1; usage errors exit 2.
    fails(&env, &["jobs", "show", "999"], 1, "not found");
    fails(&env, &["jobs", "list", "--state", "sleeping"], 1, "--state");
    fails(&env, &["workers", "pause", "nobody"], 1, "no such worker");
    fails(&env, &["submit", "--item", "x"], 2, "--task");
    let no_token = Command::new(util::bin("taskotron-master"))
        .args([
            "--config",
            "/nonexistent/master.yaml",
            "workers",
            "pause",
            "w1",
            "--url",
        ])
        .arg(env.url(""))
        .env_remove("TASKOTRON_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_token.stderr).contains("--token"),
        "{}",
        String::from_utf8_lossy(&no_token.stderr)
    );
    let wrong = Command::new(util::bin("taskotron-master"))
        .args([
            "--config",
            "/nonexistent/master.yaml",
            "workers",
            "unpause",
            "w1",
            "--token",
            "wrong",
            "--url",
        ])
        .arg(env.url(""))
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refused the token"));
    let right = Command::new(util::bin("taskotron-master"))
        .args([
            "--config",
            "/nonexistent/master.yaml",
            "workers",
            "unpause",
            "w1",
            "--url",
        ])
        .arg(env.url(""))
        .env("TASKOTRON_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let down = Command::new(util::bin("taskotron-master"))
        .args([
            "--config",
            "/nonexistent/master.yaml",
            "jobs",
            "list",
            "--url",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("is the master running"));
}
