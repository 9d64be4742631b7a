//! The master's admin commands: `worker add` stores a hashed password that a worker can log in
//! with; `check-config` names the bad field; the REST worker `stop` shuts a stock
//! buildbot-worker down (msgpack `shutdown`).

mod master_support;
mod util;

use std::process::Command;
use std::time::Duration;

use master_support::wsclient::{basic, open};
use master_support::{Env, Opts, TOKEN};

#[test]
fn worker_add_prints_a_password_that_logs_in() {
    let mut env = Env::new(Opts::default());
    let out = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(env.config_path())
        .args(["worker", "add", "newbie", "--arch", "i386"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("password line")
        .to_string();
    let cfg = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        !cfg.contains(&password),
        "the password itself is not stored"
    );
    assert!(cfg.contains("password_hash: sha256$"), "{cfg}");
    // Adding the same name again fails.
    let again = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(env.config_path())
        .args(["worker", "add", "newbie"])
        .output()
        .unwrap();
    assert!(!again.status.success());

    env.stop_master();
    env.start_master();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(
            open(env.worker_port, Some(&basic("newbie", "wrong")))
                .await
                .err(),
            Some(401)
        );
        let ws = open(env.worker_port, Some(&basic("newbie", &password))).await;
        assert!(ws.is_ok(), "login with the printed password");
    });
}

#[test]
fn check_config_names_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.yaml");
    std::fs::write(&cfg, "workers:\n  - name: a\n    passwrd: x\n").unwrap();
    let out = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("m.yaml") && err.contains("passwrd"), "{err}");
    std::fs::write(&cfg, "heartbeat: {interval: 0}\n").unwrap();
    let out = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat.interval"));
    std::fs::write(&cfg, "http: {listen: 127.0.0.1:8010}\n").unwrap();
    let out = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn rest_worker_stop_shuts_down_a_stock_worker() {
    let env = Env::new(Opts::default());
    let mut w = env.stock_worker("w1", "pw1");
    env.wait_workers(1);
    let status = reqwest::blocking::Client::new()
        .post(env.url("/api/v2/workers/w1"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","method":"stop","id":9,"params":{}}"#)
        .send()
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(
        status.text().unwrap(),
        r#"{"id":9,"jsonrpc":"2.0","result":null}"#
    );
    w.wait_exit(Duration::from_secs(30));
    env.wait_workers(0);
}

fn prune(env: &Env, dry_run: bool) -> (bool, String) {
    let mut cmd = Command::new(util::bin("taskotron-master"));
    cmd.arg("--config").arg(env.config_path()).arg("prune");
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Retention: `prune` deletes a finished job's log content and artifacts once they are older
/// than `retention.*_days` (here under a second), while the master runs; the REST API and the UI
/// then say so. Without retention configured, `prune` refuses with the key to set.
#[test]
fn prune_deletes_old_logs_and_artifacts_while_the_master_runs() {
    let env = Env::new(Opts {
        // ~0.9 s; the master's own janitor would wait 1,000 hours.
        extra: "retention: {logs_days: 0.00001, artifacts_days: 0.00001, interval_hours: 1000}\n"
            .into(),
        ..Default::default()
    });
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    env.post_change("old-1", "foo-1.0-1.fc40");
    let b = env.wait_done("old-1", Duration::from_secs(90));
    assert_eq!(b["results"], 0);
    let logid = master_support::runtask_stdio(&env, b["buildid"].as_i64().unwrap()).unwrap();
    let content = |env: &Env| {
        env.get(&format!("/api/v2/logs/{logid}/contents"))["logchunks"][0]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(!content(&env).is_empty());
    assert_eq!(
        reqwest::blocking::get(env.url("/artifacts/old-1/job.txt"))
            .unwrap()
            .status(),
        200
    );

    // Once the job is past the horizon, a dry run lists it and deletes nothing.
    let listed = util::wait_for(
        "job past the retention horizon",
        Duration::from_secs(30),
        || {
            let (ok, out) = prune(&env, true);
            assert!(ok, "{out}");
            out.contains("1 artifact directories").then_some(out)
        },
    );
    assert!(listed.starts_with("would delete: "), "{listed}");
    assert!(!content(&env).is_empty(), "dry run deleted nothing");

    let (ok, out) = prune(&env, false);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("deleted: ") && out.contains("1 artifact directories"),
        "{out}"
    );
    assert_eq!(content(&env), "", "log content gone");
    assert_eq!(
        env.get(&format!("/api/v2/logs/{logid}"))["logs"][0]["name"],
        "stdio",
        "the log row stays"
    );
    assert_eq!(
        reqwest::blocking::get(env.url("/artifacts/old-1/job.txt"))
            .unwrap()
            .status(),
        404
    );
    let page = reqwest::blocking::get(env.url(&format!("/ui/logs/{logid}")))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("deleted on") && page.contains("retention.logs_days"),
        "{page}"
    );
    let (ok, out) = prune(&env, false);
    assert!(ok && out.contains("deleted: 0 step logs"), "{out}");

    // Without retention the command refuses, naming what to set.
    let bare = env.root().join("bare.yaml");
    std::fs::write(
        &bare,
        format!("data_dir: {}\n", env.root().join("bare-data").display()),
    )
    .unwrap();
    let out = Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(&bare)
        .arg("prune")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention.logs_days"));
}
