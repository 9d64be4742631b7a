//! Graceful drain (issue 5):
//! - SIGTERM on the master stops dispatching (a queued request gets no build while the master
//!   drains), waits for the running build (bounded by `build.shutdown_grace`), records it as
//!   SUCCESS and exits 0; after a restart the queued request runs;
//! - SIGTERM on our worker lets its running command finish and report, then the worker exits 0;
//!   the rest of the build is retried elsewhere (see the test's comment for why);
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

/// SIGTERM on our worker mid-build: the running command (runtask) finishes and reports, the
/// worker then refuses new commands and exits 0. It cannot finish the rest of the *build* by
/// itself (the protocol has no build boundaries on the worker side; the next step's
/// `start_command` is refused), so the build ends RETRY and a second worker runs the job to
/// SUCCESS: nothing is lost. Draining a worker through the master (next test) finishes the
/// whole build first.
#[test]
fn sigterm_on_worker_finishes_its_command_then_exits_and_the_job_is_not_lost() {
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
    let all: Vec<_> = env
        .builds_by_uuid()
        .into_iter()
        .filter(|(u, _)| u == "wdrain-a")
        .map(|(_, b)| b["results"].as_i64())
        .collect();
    assert_eq!(all, vec![Some(5), Some(0)], "one RETRY, then SUCCESS");
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
    let r = reqwest::blocking::Client::new()
        .post(env.url("/api/v2/workers/w1"))
        .header("Authorization", format!("Bearer {}", master_support::TOKEN))
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","method":"stop","id":1,"params":{}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
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
