//! Nothing is lost: jobs wait in the SQLite outbox while the master is down, survive a SIGKILL
//! of the trigger, and a permanent refusal is kept as a dead letter.

mod trigger_support;
mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use trigger_support::{count_rows, write_config, Publisher, StandInMaster, Trigger};

const T: Duration = Duration::from_secs(60);

fn rules(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("rules.yml");
    std::fs::write(
        &p,
        "- when: {message_type: KojiBuildPackageCompleted}\n  do:\n    - {tasks: [rpmlint]}\n",
    )
    .unwrap();
    p
}

fn builds(n: usize) -> serde_json::Value {
    builds_from(0, n)
}

fn builds_from(first: usize, n: usize) -> serde_json::Value {
    let actions: Vec<_> = (first..first + n)
        .map(|i| {
            json!({"publish": {"modname": "buildsys", "topic": "build.state.change", "msg": {
            "build_id": i, "instance": "primary", "name": format!("pkg{i}"), "new": 1, "old": 0,
            "owner": "x", "release": "1.fc30", "version": "1.0"}}})
        })
        .collect();
    json!(actions)
}

fn items(master: &StandInMaster) -> (usize, BTreeSet<String>, BTreeSet<String>) {
    let subs = master.submissions();
    let items = subs
        .iter()
        .map(|s| s.properties["item"].as_str().unwrap().to_string())
        .collect();
    let uuids = subs
        .iter()
        .map(|s| s.properties["uuid"].as_str().unwrap().to_string())
        .collect();
    (subs.len(), items, uuids)
}

#[test]
fn master_down_while_50_messages_arrive_then_up_gives_exactly_50_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport) = (util::free_port(), util::free_port());
    let joblog = dir.path().join("jobs.csv");
    let cfg = write_config(
        dir.path(),
        relay,
        &format!("http://127.0.0.1:{mport}"),
        &rules(dir.path()),
        &format!("job_log: {}\n", joblog.display()),
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let mut publisher = Publisher::start(dir.path(), relay, &builds(50));
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();
    // All 50 recorded while nothing listens on the master's port.
    let state = dir.path().join("state");
    util::wait_for("50 jobs in the outbox", T, || {
        (count_rows(&state, "jobs") == 50).then_some(())
    });
    trigger.wait_log("master unavailable", 1, T);

    let master = StandInMaster::start(mport);
    util::wait_for("outbox drained", T, || {
        (count_rows(&state, "jobs") == 0).then_some(())
    });
    let (n, items, uuids) = items(&master);
    assert_eq!(n, 50, "each job exactly once");
    assert_eq!(items.len(), 50);
    assert_eq!(uuids.len(), 50);
    assert_eq!(
        items,
        (0..50).map(|i| format!("pkg{i}-1.0-1.fc30")).collect()
    );
}

#[test]
fn jobs_recorded_before_a_sigkill_are_submitted_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport) = (util::free_port(), util::free_port());
    let cfg = write_config(
        dir.path(),
        relay,
        &format!("http://127.0.0.1:{mport}"),
        &rules(dir.path()),
        "",
    );
    let state = dir.path().join("state");
    {
        let mut trigger = Trigger::start(&cfg);
        trigger.wait_log("SUB bound", 1, T);
        let mut publisher = Publisher::start(dir.path(), relay, &builds(5));
        trigger.wait_log("publisher connected", 1, T);
        publisher.go();
        util::wait_for("5 jobs in the outbox", T, || {
            (count_rows(&state, "jobs") == 5).then_some(())
        });
        trigger.guard.signal(libc::SIGKILL);
        trigger.guard.wait_exit(T);
    }
    let master = StandInMaster::start(mport);
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("resuming jobs left in the outbox", 1, T);
    util::wait_for("outbox drained", T, || {
        (count_rows(&state, "jobs") == 0).then_some(())
    });
    let (n, items, uuids) = items(&master);
    assert_eq!((n, items.len(), uuids.len()), (5, 5, 5));
}

#[test]
fn a_permanent_refusal_is_kept_as_a_dead_letter_and_5xx_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport) = (util::free_port(), util::free_port());
    let master = StandInMaster::start(mport);
    *master.status.lock().unwrap() = 503;
    let cfg = write_config(dir.path(), relay, &master.url(), &rules(dir.path()), "");
    let state = dir.path().join("state");
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let mut publisher = Publisher::start(dir.path(), relay, &builds(2));
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();
    util::wait_for("2 jobs pending", T, || {
        (count_rows(&state, "jobs") == 2).then_some(())
    });
    trigger.wait_log("HTTP 503", 2, T);
    *master.status.lock().unwrap() = 400;
    util::wait_for("dead letters", T, || {
        (count_rows(&state, "dead_letters") == 2).then_some(())
    });
    assert_eq!(count_rows(&state, "jobs"), 0);
    assert!(trigger.log().contains("master refused job"));

    // 409 = the master already has this uuid (re-sent after a crash): done, not a dead letter.
    *master.status.lock().unwrap() = 409;
    let mut again = Publisher::start(dir.path(), relay, &builds_from(100, 1));
    trigger.wait_log("publisher connected", 2, T);
    again.go();
    trigger.wait_log("master already has this job", 1, T);
    util::wait_for("outbox drained", T, || {
        (count_rows(&state, "jobs") == 0).then_some(())
    });
    assert_eq!(count_rows(&state, "dead_letters"), 2);
}
