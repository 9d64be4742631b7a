//! Fault handling of the master (issue 9, test 4), with stock buildbot-workers running real
//! `runtask` jobs:
//! - a worker frozen with SIGSTOP mid-job is declared lost within the heartbeat timeout, its
//!   build ends RETRY and a second worker finishes the job;
//! - the same with a worker killed with SIGKILL;
//! - a master restarted with 20 queued requests runs all 20.

mod master_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts};

/// The build of `uuid` currently in its runtask step (the job is blocked on the gate file).
fn wait_runtask_running(env: &Env, uuid: &str) -> i64 {
    util::wait_for("runtask step to start", Duration::from_secs(60), || {
        let (_, b) = env.builds_by_uuid().into_iter().find(|(u, _)| u == uuid)?;
        let id = b["buildid"].as_i64()?;
        let steps = master_support::steps(env, id);
        steps
            .iter()
            .any(|(n, r)| n == "runtask" && *r == -1)
            .then_some(id)
    })
}

fn lose_worker_mid_job(signal: i32) {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2")],
        heartbeat: (0.5, 2.0),
        ..Default::default()
    });
    env.set_gate(true);
    let w1 = env.stock_worker("w1", "pw1");
    env.wait_workers(1);
    let (status, _) = env.post_change("fault-1", "foo-1.0-1.fc40");
    assert_eq!(status, 200);
    let first = wait_runtask_running(&env, "fault-1");

    w1.signal(signal);
    let _w2 = env.stock_worker("w2", "pw2");
    // The first build ends as RETRY once w1 is declared lost (heartbeat timeout for SIGSTOP,
    // the closed TCP connection for SIGKILL).
    util::wait_for(
        "first build to end as RETRY",
        Duration::from_secs(30),
        || {
            let b = env.get(&format!("/api/v2/builds/{first}"));
            (b["builds"][0]["results"] == 5).then_some(())
        },
    );
    let w = env.get("/api/v2/workers/w1");
    assert_eq!(w["workers"][0]["connected_to"], serde_json::json!([]));
    env.set_gate(false);

    let done = env.wait_done("fault-1", Duration::from_secs(90));
    assert_eq!(done["results"], 0, "log:\n{}", env.master_log());
    assert_ne!(done["buildid"].as_i64(), Some(first));
    assert_eq!(done["properties"]["workername"][0], "w2");
    let br = env.get(&format!("/api/v2/buildrequests/{}", done["buildrequestid"]));
    assert_eq!(br["buildrequests"][0]["results"], 0);
    let job = reqwest::blocking::get(env.url("/artifacts/fault-1/job.txt")).unwrap();
    assert_eq!(job.status(), 200);
    if signal == libc::SIGSTOP {
        w1.signal(libc::SIGCONT);
    }
}

#[test]
fn sigstopped_worker_is_lost_and_job_finishes_on_another() {
    lose_worker_mid_job(libc::SIGSTOP);
}

#[test]
fn killed_worker_job_finishes_on_another() {
    lose_worker_mid_job(libc::SIGKILL);
}

#[test]
fn restart_with_twenty_queued_requests_runs_all() {
    let mut env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2")],
        ..Default::default()
    });
    for i in 0..20 {
        let (status, body) = env.post_change(&format!("q-{i:02}"), &format!("pkg{i}-1-1.fc40"));
        assert_eq!((status, body.as_str()), (200, "1 change found"));
    }
    assert_eq!(env.get("/healthz")["requests_pending"], 20);
    env.stop_master();
    env.start_master();
    assert_eq!(
        env.get("/healthz")["requests_pending"],
        20,
        "queued requests survive the restart"
    );

    let _w1 = env.stock_worker("w1", "pw1");
    let _w2 = env.stock_worker("w2", "pw2");
    for i in 0..20 {
        let b = env.wait_done(&format!("q-{i:02}"), Duration::from_secs(120));
        assert_eq!(b["results"], 0, "q-{i:02}");
        assert_eq!(b["properties"]["item"][0], format!("pkg{i}-1-1.fc40"));
    }
    assert_eq!(env.get("/api/v2/builds")["meta"]["total"], 20);
}

#[test]
fn master_restart_turns_a_running_build_into_retry_and_reruns_it() {
    let mut env = Env::new(Opts {
        extra: String::new(),
        ..Default::default()
    });
    // A short grace period, so SIGTERM does not wait for the gated job.
    let cfg = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("shutdown_grace: 20", "shutdown_grace: 1");
    std::fs::write(env.config_path(), cfg).unwrap();
    env.stop_master();
    env.start_master();
    env.set_gate(true);
    let _w1 = env.stock_worker("w1", "pw1");
    env.wait_workers(1);
    env.post_change("restart-1", "foo-1-1.fc40");
    let first = wait_runtask_running(&env, "restart-1");
    env.stop_master();
    env.start_master();
    let b = env.get(&format!("/api/v2/builds/{first}"));
    assert_eq!(
        b["builds"][0]["results"], 5,
        "interrupted build is RETRY after restart"
    );
    env.set_gate(false);
    let done = env.wait_done("restart-1", Duration::from_secs(90));
    assert_eq!(done["results"], 0);
    assert_ne!(done["buildid"].as_i64(), Some(first));
}

#[test]
fn sigterm_waits_for_the_running_build_then_exits() {
    let mut env = Env::new(Opts::default());
    env.set_gate(true);
    let _w1 = env.stock_worker("w1", "pw1");
    env.wait_workers(1);
    env.post_change("term-1", "foo-1-1.fc40");
    let id = wait_runtask_running(&env, "term-1");
    let mut master = env.master.take().unwrap();
    master.signal(libc::SIGTERM);
    // Still serving while it waits; no new build starts.
    util::wait_for("master to start stopping", Duration::from_secs(10), || {
        (env.get("/healthz")["status"] == "stopping").then_some(())
    });
    env.post_change("term-2", "bar-1-1.fc40");
    env.set_gate(false);
    let st = master.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{st:?}");
    env.start_master();
    let b = env.get(&format!("/api/v2/builds/{id}"));
    assert_eq!(
        b["builds"][0]["results"], 0,
        "the running build finished before exit"
    );
    // The request that arrived during shutdown was kept and runs after the restart.
    let b2 = env.wait_done("term-2", Duration::from_secs(60));
    assert_eq!(b2["results"], 0);
}
