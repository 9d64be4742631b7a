//! The log is written while the task runs (the master follows taskotron.log), `-d` keeps the
//! work dir, and TASKOTRON_PYTHONPATH replaces the embedded libtaskotron package.

mod runtask_support;
mod util;

use std::process::{Command, Stdio};
use std::time::Duration;

use runtask_support::{python, TaskDir};
use util::{wait_for, ChildGuard};

#[test]
fn taskotron_log_grows_while_the_task_runs() {
    let t = TaskDir::new();
    t.write(
        "runtask.yml",
        r#"name: live
desc: d
maintainer: m
actions:
  - name: first
    shell: ['echo marker-one']
  - name: wait for the test
    shell:
      - [sh, -c, 'while [ ! -e go ]; do sleep 0.05; done; echo marker-two']
"#,
    );
    let mut child = ChildGuard::spawn(
        "runtask",
        Command::new(util::bin("runtask"))
            .arg("--config")
            .arg(t.config_path())
            .args(["--uuid", "live", "runtask.yml"])
            .current_dir(t.task())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let log = t.artifacts_root().join("live/taskotron/taskotron.log");
    wait_for(
        "marker-one in taskotron.log",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|s| s.contains("[out] marker-one") && s.contains("[2/2] wait for the test"))
        },
    );
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "runtask ended early"
    );
    assert!(!std::fs::read_to_string(&log)
        .unwrap()
        .contains("[out] marker-two"));
    std::fs::write(t.task().join("go"), "").unwrap();
    let status = child.wait_exit(Duration::from_secs(30));
    assert!(status.success());
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("[out] marker-two"));
}

#[test]
fn debug_keeps_the_work_dir_and_pythonpath_override_is_used() {
    let t = TaskDir::new();
    t.config(&format!("python: {}\n", python()));
    // A replacement libtaskotron package that says who it is.
    let pkg = t.root().join("pkg");
    std::fs::create_dir_all(pkg.join("libtaskotron")).unwrap();
    std::fs::write(pkg.join("libtaskotron/__init__.py"), "WHO = 'override'\n").unwrap();
    std::fs::copy(
        util::repo_root().join("worker/python/libtaskotron/_shim.py"),
        pkg.join("libtaskotron/_shim.py"),
    )
    .unwrap();
    std::fs::copy(
        util::repo_root().join("worker/python/libtaskotron/check.py"),
        pkg.join("libtaskotron/check.py"),
    )
    .unwrap();
    std::fs::copy(
        util::repo_root().join("worker/python/libtaskotron/exceptions.py"),
        pkg.join("libtaskotron/exceptions.py"),
    )
    .unwrap();
    t.write(
        "w.py",
        "import libtaskotron\n\ndef run():\n    return libtaskotron.WHO\n",
    );
    t.write(
        "runtask.yml",
        "name: d\ndesc: d\nmaintainer: m\nactions:\n  - name: who\n    python: {file: w.py, callable: run}\n    export: who\n  - name: check\n    shell: [['test', '${who}', '=', 'override']]\n  - name: mark\n    shell: [['touch', '${workdir}/kept']]\n",
    );
    let out = Command::new(util::bin("runtask"))
        .arg("--config")
        .arg(t.config_path())
        .args(["--uuid", "dbg", "-d", "runtask.yml"])
        .env("TASKOTRON_PYTHONPATH", &pkg)
        .current_dir(t.task())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let kept = stderr
        .lines()
        .find_map(|l| l.split("work dir kept (--debug): ").nth(1))
        .expect("work dir kept line");
    assert!(std::path::Path::new(kept).join("kept").exists());
    assert!(stderr.contains("DEBUG"), "-d logs DEBUG on the console");
}
