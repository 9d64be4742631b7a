//! Reconnect storm (issue 5): a fleet of simulated workers (the `loadgen` binary, which
//! reconnects with a short jittered pause) is attached; the master is restarted; every worker
//! is attached again. The time to re-attach the whole fleet is printed (the target is
//! 1,000 workers within 10 s); the test asserts only that all come back.
//!
//! Size: TASKOTRON_STORM_WORKERS (default 200; the figure is 1000).

mod master_support;
mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use master_support::{Env, Opts};
use util::ChildGuard;

fn connected(env: &Env) -> u64 {
    reqwest::blocking::get(env.url("/healthz"))
        .ok()
        .and_then(|r| r.json::<serde_json::Value>().ok())
        .and_then(|h| h["workers_connected"].as_u64())
        .unwrap_or(0)
}

#[test]
fn reconnect_storm_after_master_restart() {
    let n: usize = std::env::var("TASKOTRON_STORM_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let names: Vec<(&'static str, &'static str)> = (0..n)
        .map(|i| {
            let s: &'static str = Box::leak(format!("lg{i:04}").into_boxed_str());
            (s, "pw")
        })
        .collect();
    let mut env = Env::new(Opts {
        workers: names,
        heartbeat: (5.0, 15.0),
        ..Default::default()
    });
    let log = std::fs::File::create(env.root().join("loadgen.out")).unwrap();
    let mut cmd = Command::new(util::bin("loadgen"));
    cmd.arg("--worker-url")
        .arg(format!("ws://127.0.0.1:{}/", env.worker_port))
        .arg("--hook-url")
        .arg(env.url("/change_hook/base"))
        .args([
            "--workers",
            &n.to_string(),
            "--hold",
            "3600",
            "--timeout",
            "3600",
        ])
        .stdout(Stdio::null())
        .stderr(log);
    let _fleet = ChildGuard::spawn("loadgen", &mut cmd);
    let t0 = Instant::now();
    util::wait_for(
        &format!("{n} workers attached"),
        Duration::from_secs(120),
        || (connected(&env) == n as u64).then_some(()),
    );
    let first = t0.elapsed();

    env.stop_master();
    assert_eq!(connected(&env), 0, "master is down");
    let t1 = Instant::now();
    env.start_master();
    let up = t1.elapsed();
    util::wait_for(
        &format!("{n} workers re-attached after the restart"),
        Duration::from_secs(120),
        || (connected(&env) == n as u64).then_some(()),
    );
    let again = t1.elapsed();
    println!(
        "reconnect storm: {n} workers; first attach {:.2} s; after restart: master up in {:.2} s, all {n} re-attached {:.2} s after the restart began",
        first.as_secs_f64(),
        up.as_secs_f64(),
        again.as_secs_f64()
    );
    // The master is still usable afterwards: the registry lists each worker once.
    let workers = env.get("/api/v2/workers");
    let listed = workers["workers"].as_array().unwrap();
    let connected_entries = listed
        .iter()
        .filter(|w| w["connected_to"].as_array().is_some_and(|c| !c.is_empty()))
        .count();
    assert_eq!(listed.len(), n, "one worker entry per name");
    assert_eq!(connected_entries, n, "every worker shows as connected");
}
