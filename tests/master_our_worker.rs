//! Ours ↔ ours (issue 9, test 1): our master drives our `taskotron-worker`, which runs real
//! `runtask`: a change-hook job ends SUCCESS with artifacts downloadable from `/artifacts/`.
//! Also the REST control calls against a running job: `stop` interrupts the runtask command
//! (build CANCELLED); `pause`/`unpause` hold and release dispatching to a worker.

mod master_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts, TOKEN};

fn rpc(env: &Env, path: &str, method: &str) -> u16 {
    reqwest::blocking::Client::new()
        .post(env.url(path))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"jsonrpc":"2.0","method":"{method}","id":1,"params":{{"reason":"by test"}}}}"#
        ))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn our_worker_runs_a_job_to_success_with_artifacts() {
    let env = Env::new(Opts::default());
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    let (status, body) = env.post_change("ours-1", "foo-1.0-1.fc40");
    assert_eq!((status, body.as_str()), (200, "1 change found"));
    let b = env.wait_done("ours-1", Duration::from_secs(90));
    let st = master_support::steps(&env, b["buildid"].as_i64().unwrap());
    assert_eq!(b["results"], 0, "steps {st:?}\nlog:\n{}", env.master_log());
    let job = reqwest::blocking::get(env.url("/artifacts/ours-1/job.txt")).unwrap();
    assert_eq!(job.status(), 200);
    assert_eq!(job.text().unwrap().trim(), "ours-1 foo-1.0-1.fc40");
    let log = reqwest::blocking::get(env.url("/artifacts/ours-1/taskotron/taskotron.log"))
        .unwrap()
        .text()
        .unwrap();
    assert!(log.contains("demo"), "{log}");
}

#[test]
fn stop_cancels_a_running_build_and_pause_holds_dispatch() {
    let env = Env::new(Opts::default());
    env.set_gate(true);
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    env.post_change("stop-1", "foo-1-1.fc40");
    let buildid = util::wait_for("runtask running", Duration::from_secs(60), || {
        let (_, b) = env
            .builds_by_uuid()
            .into_iter()
            .find(|(u, _)| u == "stop-1")?;
        let id = b["buildid"].as_i64()?;
        master_support::steps(&env, id)
            .iter()
            .any(|(n, r)| n == "runtask" && *r == -1)
            .then_some(id)
    });
    assert_eq!(rpc(&env, &format!("/api/v2/builds/{buildid}"), "stop"), 200);
    let b = env.wait_done("stop-1", Duration::from_secs(60));
    assert_eq!(b["results"], 6, "CANCELLED");
    env.set_gate(false);

    // Paused: a new job waits in the queue; unpaused: it runs.
    assert_eq!(rpc(&env, "/api/v2/workers/w1", "pause"), 200);
    assert_eq!(env.get("/api/v2/workers/w1")["workers"][0]["paused"], true);
    env.post_change("paused-1", "bar-1-1.fc40");
    util::wait_for("request queued", Duration::from_secs(10), || {
        (env.get("/healthz")["requests_pending"] == 1).then_some(())
    });
    assert!(
        env.builds_by_uuid().iter().all(|(u, _)| u != "paused-1"),
        "no build while paused"
    );
    assert_eq!(rpc(&env, "/api/v2/workers/w1", "unpause"), 200);
    let b = env.wait_done("paused-1", Duration::from_secs(60));
    assert_eq!(b["results"], 0);
}
