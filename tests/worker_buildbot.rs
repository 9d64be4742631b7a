//! Our worker against a STOCK Buildbot 4.3.0 master (from the test venv) on loopback: a
//! Taskotron-style factory (shell steps with argv/string commands and env handling, FileUpload,
//! DirectoryUpload plain and gz, MakeDirectory/CopyDirectory/RemoveDirectory/FileExists,
//! MultipleFileUpload with glob, StringDownload, maxTime), a REST stop that interrupts a
//! running command, reconnection after the master goes silent and after it restarts, and
//! SIGTERM: Buildbot does not know our `graceful_shutdown` op, so the worker falls back to
//! finishing the running command and exiting.

mod util;
mod worker_support;

use std::time::Duration;

use serde_json::json;
use worker_support::{BuildbotMaster, OurWorker, CANCELLED, FAILURE, SUCCESS, WARNINGS};

const T: Duration = Duration::from_secs(90);

#[test]
fn stock_master_runs_taskotron_factory_and_stop_interrupts() {
    let tmp = tempfile::tempdir().unwrap();
    // Buildbot's own keepalive (3600 s) never fires here: only Autobahn's answers to our
    // WebSocket pings show the master is alive. With a 3 s silence limit, a master that did
    // not answer pings would be dropped mid-build (checked at the end).
    let master = BuildbotMaster::create(tmp.path(), 3600);
    let worker = OurWorker::start(tmp.path(), master.worker_port, "ping_timeout: 2\n");
    master.wait_worker(T);

    // The worker reported what create-worker wrote into info/.
    let w = master.api("workers/w1")["workers"][0].clone();
    assert_eq!(
        w["workerinfo"]["host"].as_str().map(|s| s.ends_with('\n')),
        Some(true)
    );
    assert!(w["workerinfo"]["admin"].as_str().is_some());

    let uuid = "7d1e2c3a-test";
    let brid = master.force("runtask", json!({"uuid": uuid, "item": "bar-2.0-1.fc40"}));
    let build = master.build_of(brid, T);
    let buildid = build["buildid"].as_u64().unwrap();
    let build = master.wait_complete(buildid, T);

    let steps = master.steps(buildid);
    let result_of = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["results"].as_u64())
            .unwrap_or_else(|| panic!("step {name} missing in {steps:#?}"))
    };
    for name in [
        "clean",
        "env-argv",
        "runtask",
        "upload-log",
        "upload-artifacts",
        "upload-adir-gz",
        "MakeDirectory",
        "fill-newdir",
        "CopyDirectory",
        "RemoveDirectory",
        "check-fs",
        "FileExists",
        "upload",
        "string_download",
        "download-is-empty",
    ] {
        assert_eq!(result_of(name), SUCCESS, "step {name}: {steps:#?}");
    }
    // exit 3 decoded as WARNINGS; maxTime kill is a (non-flunking) FAILURE.
    assert_eq!(result_of("string-cmd"), WARNINGS);
    assert_eq!(result_of("maxtime"), FAILURE);
    assert_eq!(build["results"].as_u64(), Some(WARNINGS), "{build}");

    // Output streamed with properties rendered and both streams; logfiles followed.
    let stdio = master.log_raw(buildid, "env-argv", "stdio");
    assert!(
        stdio.contains("taskname=rpmlint item=bar-2.0-1.fc40 type=koji_build"),
        "{stdio}"
    );
    assert!(
        stdio.contains("env-ok") && stdio.contains("to-stderr"),
        "{stdio}"
    );
    assert!(stdio.contains(" using PTY: False"), "{stdio}");
    assert!(master
        .log_raw(buildid, "env-argv", "extra")
        .contains("logline"));
    let maxtime = master.log_raw(buildid, "maxtime", "stdio");
    assert!(
        maxtime.contains("command timed out: 1 seconds elapsed"),
        "{maxtime}"
    );
    assert!(master
        .log_raw(buildid, "runtask", "stdio")
        .contains("1\n2\n3\n4\n5\n"));

    // Uploads arrived on the master, byte for byte.
    let up = &master.upload_dir;
    let expected_log = "artifact-line-1\nartifact-line-2\n";
    assert_eq!(
        std::fs::read_to_string(up.join("taskotron.log")).unwrap(),
        expected_log
    );
    let art = up.join("artifacts").join(uuid).join("taskotron");
    assert_eq!(
        std::fs::read_to_string(art.join("taskotron.log")).unwrap(),
        expected_log
    );
    assert_eq!(
        std::fs::read_to_string(art.join("results.yml")).unwrap(),
        "results: []\n"
    );
    assert_eq!(
        std::fs::read_to_string(up.join("adir-gz/f")).unwrap(),
        "x\n"
    );
    assert_eq!(
        std::fs::read_to_string(up.join("adir-gz/sub/g")).unwrap(),
        "y\n"
    );
    assert_eq!(std::fs::read_to_string(up.join("globup/f")).unwrap(), "x\n");
    // Worker-side filesystem effects.
    let build_dir = worker.basedir.join("runtask/build");
    assert!(build_dir.join("newdir2/n").is_file());
    assert!(!build_dir.join("newdir").exists());

    // A REST stop interrupts the running command: rc -1, build CANCELLED.
    let brid = master.force("sleeper", json!({}));
    let buildid = master.build_of(brid, T)["buildid"].as_u64().unwrap();
    util::wait_for("sleep step running", T, || {
        master
            .steps(buildid)
            .iter()
            .any(|s| s["name"] == "sleep" && !s["started_at"].is_null() && s["complete"] == false)
            .then_some(())
    });
    // The stdio log exists once the worker sent the header: the process is running.
    util::wait_for("sleep command header", T, || {
        master
            .log_raw(buildid, "sleep", "stdio")
            .contains("argv:")
            .then_some(())
    });
    master.stop_build(buildid);
    let build = master.wait_complete(buildid, T);
    assert_eq!(build["results"].as_u64(), Some(CANCELLED), "{build}");
    let log = master.log_raw(buildid, "sleep", "stdio");
    assert!(
        log.contains("command interrupted, attempting to kill"),
        "{log}"
    );
    assert!(log.contains("process killed by signal 9"), "{log}");
    assert!(worker.log_text().contains("interrupting command"));
    let log = worker.log_text();
    assert_eq!(
        log.matches("connected master").count(),
        1,
        "one connection throughout:\n{log}"
    );
    assert!(!log.contains("master silent"), "{log}");
}

#[test]
fn worker_reconnects_after_silence_and_master_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut master = BuildbotMaster::create(tmp.path(), 2);
    // Pings every 1 s; 2 s without any frame means the master is gone.
    let worker = OurWorker::start(tmp.path(), master.worker_port, "ping_timeout: 2\n");
    master.wait_worker(T);

    // A frozen master (SIGSTOP) answers nothing, not even pings: the worker notices.
    master.signal(libc::SIGSTOP);
    util::wait_for("worker to notice the silent master", T, || {
        worker.log_text().contains("master silent").then_some(())
    });
    master.signal(libc::SIGCONT);
    util::wait_for("worker to reconnect after the freeze", T, || {
        worker
            .log_text()
            .matches("connected master")
            .count()
            .ge(&2)
            .then_some(())
    });
    master.wait_worker(T);

    // Master crash and restart: the worker comes back by itself and runs builds.
    master.kill();
    util::wait_for("worker to see the connection drop", T, || {
        worker.log_text().contains("connection lost").then_some(())
    });
    master.start();
    master.wait_worker(T);
    let brid = master.force("quick", json!({}));
    let buildid = master.build_of(brid, T)["buildid"].as_u64().unwrap();
    let build = master.wait_complete(buildid, T);
    assert_eq!(build["results"].as_u64(), Some(SUCCESS), "{build}");
    assert!(master
        .log_raw(buildid, "hello", "stdio")
        .contains("hello again"));
}

/// SIGTERM on our worker during a command, with a stock Buildbot 4.3.0 master: the worker's
/// `graceful_shutdown` request gets Buildbot's "Command graceful_shutdown does not exist."
/// exception, so it falls back: the running command finishes and reports, and the worker
/// exits 0.
#[test]
fn sigterm_with_stock_master_falls_back_to_finishing_the_running_command() {
    let tmp = tempfile::tempdir().unwrap();
    let master = BuildbotMaster::create(tmp.path(), 3600);
    std::fs::write(&master.gate, "").unwrap();
    let mut worker = OurWorker::start(tmp.path(), master.worker_port, "");
    master.wait_worker(T);
    let brid = master.force("gated", json!({}));
    let buildid = master.build_of(brid, T)["buildid"].as_u64().unwrap();
    // The stdio log has the header once the worker started the process.
    util::wait_for("wait-gate command running", T, || {
        let running = master.steps(buildid).iter().any(|s| {
            s["name"] == "wait-gate" && s["complete"] == false && !s["started_at"].is_null()
        });
        (running
            && master
                .log_raw(buildid, "wait-gate", "stdio")
                .contains("argv:"))
        .then_some(())
    });

    worker.proc.signal(libc::SIGTERM);
    util::wait_for("worker to fall back", T, || {
        worker
            .log_text()
            .contains("the master cannot drain us: finishing running commands, then exiting")
            .then_some(())
    });
    let log = worker.log_text();
    assert!(
        log.contains("Command graceful_shutdown does not exist."),
        "Buildbot's answer is logged:\n{log}"
    );
    std::fs::remove_file(&master.gate).unwrap();
    let st = worker.proc.wait_exit(T);
    assert_eq!(st.code(), Some(0), "worker exit");

    let build = master.wait_complete(buildid, T);
    // The command ran to its end and Buildbot got its output and exit code...
    assert!(master
        .log_raw(buildid, "wait-gate", "stdio")
        .contains("gate-open"));
    let twistd = std::fs::read_to_string(master.dir.join("twistd.log")).unwrap();
    assert!(
        twistd
            .lines()
            .any(|l| l.contains("echo gate-open") && l.ends_with("> rc=0")),
        "Buildbot logs the command's rc"
    );
    // ...but a stock master cannot be told to keep the worker for the rest of the build: the
    // worker leaves, Buildbot sees it lost and the build does not end SUCCESS here (Buildbot
    // normally marks it RETRY and runs it again on another worker).
    assert_ne!(build["results"].as_u64(), Some(SUCCESS), "{build}");
}
