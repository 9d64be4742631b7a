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
