//! Graceful drain (issue 5):
//! - SIGTERM on the master stops dispatching (a queued request gets no build while the master
//!   drains), waits for the running build (bounded by `build.shutdown_grace`), records it as
//!   SUCCESS and exits 0; after a restart the queued request runs;
//! - SIGTERM on our worker mid-build: the worker asks the master to drain it (`graceful_shutdown`,
//!   our protocol extension), the SAME worker runs the rest of the build to SUCCESS (one build,
//!   no RETRY, the idle second worker takes nothing), gets no new build, is sent `shutdown` and
//!   exits 0;
//! - a second SIGTERM while draining: only the running command finishes, the worker exits 0 and
//!   the rest of the build is retried on another worker (nothing lost);
//! - draining a worker through the master finishes its build, then shuts the worker down.

mod master_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts};

/// The build of `uuid` currently in its runtask step (the job is blocked on the gate file).
fn wait_runtask_running(env: &Env, uuid: &str) -> i64 {
    util::wait_for("runtask step to start", Duration::from_secs(60), || {
        let (_, b) = env.builds_by_uuid().into_iter().find(|(u, _)| u == uuid)?;
        let id = b["buildid"].as_i64()?;
        master_support::steps(env, id)
            .iter()
            .any(|(n, r)| n == "runtask" && *r == -1)
            .then_some(id)
    })
}

fn builds_of(db: &rusqlite::Connection, uuid: &str) -> Vec<Option<i64>> {
    let mut st = db
        .prepare(
            "SELECT b.results FROM builds b JOIN buildrequests r \
             ON r.buildrequestid = b.buildrequestid WHERE r.uuid = ?1 ORDER BY b.buildid",
        )
        .unwrap();
    st.query_map([uuid], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn sigterm_on_master_drains_running_build_and_dispatches_nothing_new() {
    let mut env = Env::new(Opts::default());
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    env.set_gate(true);
    assert_eq!(env.post_change("drain-a", "a-1-1.fc40").0, 200);
    wait_runtask_running(&env, "drain-a");
    // The only worker is busy: this one waits in the queue.
    assert_eq!(env.post_change("drain-b", "b-1-1.fc40").0, 200);

    let mut master = env.master.take().unwrap();
    master.signal(libc::SIGTERM);
    // Draining: the master is still alive while the build runs. Wait for its log line rather
    // than for time to pass.
    util::wait_for("master to start draining", Duration::from_secs(30), || {
        env.master_log()
            .contains("stopping: no new builds")
            .then_some(())
    });
    env.set_gate(false);
    let st = master.wait_exit(Duration::from_secs(60));
    assert!(
        st.success(),
        "master exit {st:?}; log:\n{}",
        env.master_log()
    );

    let db = rusqlite::Connection::open(env.root().join("data/master.sqlite")).unwrap();
    assert_eq!(
        builds_of(&db, "drain-a"),
        vec![Some(0)],
        "running build finished as SUCCESS"
    );
    assert_eq!(
        builds_of(&db, "drain-b"),
        vec![],
        "nothing dispatched while draining"
    );
    drop(db);

    env.start_master();
    let b = env.wait_done("drain-b", Duration::from_secs(120));
    assert_eq!(b["results"], 0, "queued request runs after the restart");
}

/// The `workers` row of `name` from the REST API.
fn worker_row(env: &Env, name: &str) -> serde_json::Value {
    env.get("/api/v2/workers")["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("worker {name} unknown to the master"))
}

/// Waits until the master marks `name` as draining (the answer to its `graceful_shutdown`).
fn wait_draining(env: &Env, name: &str) {
    util::wait_for(
        &format!("master to drain {name}"),
        Duration::from_secs(30),
        || (worker_row(env, name)["graceful"] == true).then_some(()),
    );
}

/// `(worker name, results)` of every build of `uuid`, oldest first.
fn builds_with_worker(env: &Env, uuid: &str) -> Vec<(String, Option<i64>)> {
    let names: std::collections::HashMap<i64, String> = env.get("/api/v2/workers")["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["workerid"].as_i64().unwrap(),
                w["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    env.builds_by_uuid()
        .into_iter()
        .filter(|(u, _)| u == uuid)
        .map(|(_, b)| {
            let w = b["workerid"]
                .as_i64()
                .and_then(|id| names.get(&id).cloned());
            (w.unwrap_or_default(), b["results"].as_i64())
        })
        .collect()
}

fn worker_rpc(env: &Env, name: &str, method: &str) {
    let r = reqwest::blocking::Client::new()
        .post(env.url(&format!("/api/v2/workers/{name}")))
        .header("Authorization", format!("Bearer {}", master_support::TOKEN))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"jsonrpc":"2.0","method":"{method}","id":1,"params":{{}}}}"#
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{method} {name}");
}

fn worker_log(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.root().join(format!("tw-{name}.out"))).unwrap_or_default()
}

/// SIGTERM on our worker while the first remote command of its build (runtask, held by the
/// gate) runs, with a second worker connected and idle: the worker sends `graceful_shutdown`,
/// the master drains it, the same worker runs the rest of the build, the build ends SUCCESS as
/// the request's only build, the draining worker gets no new build, and it exits 0 after the
/// master's `shutdown`.
#[test]
fn sigterm_on_worker_finishes_its_build_on_the_same_worker_then_it_is_shut_down() {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2")],
        ..Default::default()
    });
    let mut w1 = env.our_worker("w1", "pw1");
    let _w2 = env.our_worker("w2", "pw2");
    env.wait_workers(2);
    env.set_gate(true);
    // Both idle: the master picks the least busy worker, ties by name, so w1.
    assert_eq!(env.post_change("wdrain-a", "a-1-1.fc40").0, 200);
    let first = wait_runtask_running(&env, "wdrain-a");
    assert_eq!(builds_with_worker(&env, "wdrain-a")[0].0, "w1");

    w1.signal(libc::SIGTERM);
    wait_draining(&env, "w1");
    assert!(
        env.master_log()
            .contains("worker asked for a graceful shutdown"),
        "{}",
        env.master_log()
    );
    // A draining worker gets no new build: with w2 paused, this request must wait.
    worker_rpc(&env, "w2", "pause");
    assert_eq!(env.post_change("wdrain-c", "c-1-1.fc40").0, 200);
    env.set_gate(false);

    let st = w1.wait_exit(Duration::from_secs(60));
    assert!(
        st.success(),
        "worker exit {st:?}:\n{}",
        worker_log(&env, "w1")
    );
    assert!(
        worker_log(&env, "w1").contains("master asked us to shut down"),
        "the worker left on the master's `shutdown`:\n{}",
        worker_log(&env, "w1")
    );
    let b = env.wait_done("wdrain-a", Duration::from_secs(60));
    assert_eq!(b["results"], 0, "the build finished as SUCCESS: {b}");
    assert_eq!(
        builds_with_worker(&env, "wdrain-a"),
        vec![("w1".to_string(), Some(0))],
        "exactly one build, on the drained worker (no RETRY, w2 took nothing)"
    );
    // Every step ran on w1, including those after the interrupted-by-signal runtask command.
    let steps = master_support::steps(&env, first);
    let runtask = steps.iter().position(|(n, _)| n == "runtask").unwrap();
    assert!(runtask + 1 < steps.len(), "steps after runtask: {steps:?}");
    assert!(steps.iter().all(|(_, r)| *r == 0), "{steps:?}");
    // w1 is gone and w2 paused: the second request never got a build...
    assert_eq!(builds_with_worker(&env, "wdrain-c"), vec![]);
    // ...and runs once w2 may take work again.
    worker_rpc(&env, "w2", "unpause");
    let c = env.wait_done("wdrain-c", Duration::from_secs(120));
    assert_eq!(c["results"], 0, "{c}");
    assert_eq!(
        builds_with_worker(&env, "wdrain-c"),
        vec![("w2".to_string(), Some(0))]
    );
}

/// A second SIGTERM while the master drains the worker: the worker stops waiting for the build
/// (today's fallback): the running command (runtask) finishes and reports, the next
/// `start_command` is refused, the worker exits 0, the build ends RETRY and a second worker
/// runs the job to SUCCESS: nothing is lost.
#[test]
fn second_sigterm_on_worker_finishes_only_its_command_and_the_job_is_not_lost() {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2")],
        ..Default::default()
    });
    let mut w1 = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    env.set_gate(true);
    assert_eq!(env.post_change("wdrain-a", "a-1-1.fc40").0, 200);
    let first = wait_runtask_running(&env, "wdrain-a");
    w1.signal(libc::SIGTERM);
    wait_draining(&env, "w1");
    // The worker handles signals asynchronously: send the second after the first took effect.
    util::wait_for("worker to drain", Duration::from_secs(30), || {
        worker_log(&env, "w1").contains("draining:").then_some(())
    });
    w1.signal(libc::SIGTERM);
    util::wait_for("second SIGTERM handled", Duration::from_secs(30), || {
        worker_log(&env, "w1")
            .contains("second SIGTERM: finishing running commands")
            .then_some(())
    });
    env.set_gate(false);
    let st = w1.wait_exit(Duration::from_secs(60));
    assert!(st.success(), "worker exit {st:?}");
    let steps = master_support::steps(&env, first);
    assert!(
        steps.iter().any(|(n, r)| n == "runtask" && *r == 0),
        "the running command finished and reported: {steps:?}"
    );
    let _w2 = env.our_worker("w2", "pw2");
    let b = env.wait_done("wdrain-a", Duration::from_secs(120));
    assert_eq!(
        b["results"], 0,
        "the job ran to SUCCESS on the other worker: {b}"
    );
    assert_eq!(
        builds_with_worker(&env, "wdrain-a"),
        vec![("w1".to_string(), Some(5)), ("w2".to_string(), Some(0))],
        "one RETRY, then SUCCESS"
    );
}

/// Graceful worker drain through the master (REST `stop`, what `taskotron-master workers drain`
/// sends): the running build finishes as SUCCESS, then the master sends `shutdown` and the
/// worker exits 0.
#[test]
fn master_side_worker_drain_finishes_the_build_then_shuts_the_worker_down() {
    let env = Env::new(Opts::default());
    let mut w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    env.set_gate(true);
    assert_eq!(env.post_change("wdrain-b", "b-1-1.fc40").0, 200);
    wait_runtask_running(&env, "wdrain-b");
    worker_rpc(&env, "w1", "stop");
    env.set_gate(false);
    let st = w.wait_exit(Duration::from_secs(60));
    assert!(st.success(), "worker exit {st:?}");
    let b = env.wait_done("wdrain-b", Duration::from_secs(60));
    assert_eq!(b["results"], 0, "the build finished as SUCCESS: {b}");
    assert_eq!(
        env.builds_by_uuid()
            .iter()
            .filter(|(u, _)| u == "wdrain-b")
            .count(),
        1,
        "no RETRY attempt"
    );
    util::wait_for("worker detached", Duration::from_secs(30), || {
        (env.get("/healthz")["workers_connected"] == 0).then_some(())
    });
}
