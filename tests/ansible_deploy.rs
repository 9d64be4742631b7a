//! A real deployment with the Ansible roles: `ansible-playbook -c local` into a temp prefix
//! (ansible/tests/inventory.local.yml + local-vars.yml: no users, no service manager), then the
//! deployed master, two deployed workers and the deployed trigger are started exactly as their
//! systemd units say, a fedmsg message published on loopback becomes a SUCCESS build, a rerun
//! changes nothing, and adding a buildslave registers it without touching the others.

mod ansible_support;
mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ansible_support::deploy::TestDeployment;
use ansible_support::units::read_unit;
use serde_json::Value;
use util::{wait_for, ChildGuard};

const MESSAGE: &str = "fedmsg/fedmsg.buildsys.build.state.change.complete.signed.json";

#[test]
fn deploy_run_a_job_rerun_and_add_a_buildslave() {
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let d = TestDeployment::new();
    phase("test deployment prepared");

    let first = d.run_site(false);
    first.assert_ok("first run");
    for host in ["master.test", "slave1.test"] {
        assert!(
            first.changed(host) > 0,
            "first run changed nothing on {host}"
        );
    }

    phase("first ansible-playbook run done");
    let second = d.run_site(false);
    second.assert_ok("second run");
    for host in ["master.test", "slave1.test"] {
        assert_eq!(
            second.changed(host),
            0,
            "rerun changed {host}: {:?}",
            second.changed_tasks(host)
        );
    }

    phase("second run done (changed=0)");
    check_deployed_files(&d);

    // Start everything from the deployed units and configs.
    let logs = d.root().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut master = start_master(&d, &logs, "master-1");
    let _workers: Vec<ChildGuard> = ["slave1-a", "slave1-b"]
        .iter()
        .map(|w| start_worker(&d, "slave1", w, &logs))
        .collect();
    wait_connected(&d, &["slave1-a", "slave1-b"], &logs);
    let trigger_unit = read_unit(
        &d.host("master")
            .join("etc/systemd/system/taskotron-trigger.service"),
        None,
    );
    let _trigger = ChildGuard::spawn(
        "taskotron-trigger",
        &mut trigger_unit.command(&logs.join("trigger.log")),
    );
    let mut publisher = ChildGuard::spawn(
        "publisher",
        Command::new(util::venv_bin("python"))
            .arg(util::repo_root().join("tests/ansible_support/publish.py"))
            .arg(format!("tcp://127.0.0.1:{}", d.fedmsg_port))
            .arg(util::fixtures().join(MESSAGE)),
    );

    let build = wait_or_dump("a complete build", &logs, || {
        if let Ok(Some(status)) = publisher.child.try_wait() {
            panic!("publisher exited: {status}");
        }
        let builds = get_json(&d, "/api/v2/builds?property=uuid")?;
        builds["builds"]
            .as_array()?
            .iter()
            .find(|b| b["complete"] == Value::Bool(true))
            .cloned()
    })
    .clone();
    assert_eq!(
        build["results"],
        0,
        "the build did not succeed: {build}\n{}",
        log_tails(&logs)
    );
    drop(publisher);
    // The python step used the deployed libtaskotron shim; its result went through resultsdb.
    let uuid = build["properties"]["uuid"][0]
        .as_str()
        .unwrap_or_else(|| panic!("build without uuid: {build}"));
    let results = get_text(&d, &format!("/artifacts/{uuid}/taskotron/results.yml"));
    assert!(
        results.contains("smoke") && results.contains("PASSED"),
        "unexpected results.yml: {results}"
    );
    phase("published message became a SUCCESS build");

    // Add a buildslave: only it and master.yaml change.
    let slave1_before = snapshot(&d.host("slave1"));
    let master_workers_before = master_workers(&d);
    let third = d.run_site(true);
    phase("third run (slave2 added) done");
    third.assert_ok("run with the added buildslave");
    assert_eq!(
        third.changed("slave1.test"),
        0,
        "adding slave2 touched slave1: {:?}",
        third.changed_tasks("slave1.test")
    );
    assert!(third.changed("slave2.test") > 0);
    assert!(
        third
            .changed_tasks("master.test")
            .iter()
            .any(|t| t.contains("Write master.yaml")),
        "master.yaml was not updated: {:?}",
        third.changed_tasks("master.test")
    );
    // The changed master.yaml notified the master's restart handler (skipped: no service manager).
    assert!(
        third
            .stdout
            .contains("RUNNING HANDLER [taskotron_master : Restart taskotron-master]"),
        "no restart handler for the changed master.yaml"
    );
    assert_eq!(
        snapshot(&d.host("slave1")),
        slave1_before,
        "slave1's files changed"
    );
    let master_workers_after = master_workers(&d);
    for (name, entry) in &master_workers_before {
        assert_eq!(
            master_workers_after.get(name),
            Some(entry),
            "the master entry of {name} changed"
        );
    }
    assert!(master_workers_after.contains_key("slave2-a"));
    assert!(d.host("slave2").join("usr/local/bin/runtask").exists());
    assert!(
        d.host("slave1")
            .join("usr/local/lib/taskotron/releases")
            .is_dir(),
        "slave1 did not install from the tarball"
    );

    // The master restarted with its new config (the role's handler does this under systemd)
    // accepts the new worker.
    master.signal(libc::SIGTERM);
    master.wait_exit(Duration::from_secs(90));
    let _master = start_master(&d, &logs, "master-2");
    let _slave2 = start_worker(&d, "slave2", "slave2-a", &logs);
    wait_connected(&d, &["slave2-a"], &logs);

    phase("slave2-a connected to the restarted master");
}

/// The system-users path (a real deployment's default) in check mode: it renders and plans
/// users, groups and ownership for every host (one installing from a release tarball) without
/// failing, and writes nothing.
#[test]
fn check_mode_with_system_users() {
    let d = TestDeployment::new();
    let run = d.run_site_with(true, &["--check", "-e", "taskotron_manage_users=true"]);
    run.assert_ok("check mode with system users");
    for host in ["master.test", "slave1.test"] {
        assert!(run.changed(host) > 0, "{host}: nothing planned");
    }
    let planned = run.changed_tasks("slave1.test");
    assert!(
        planned
            .iter()
            .filter(|t| t.contains("Create the worker users"))
            .count()
            == 2,
        "worker users not planned: {planned:?}"
    );
    assert!(
        run.changed_tasks("master.test")
            .iter()
            .any(|t| t.contains("Create the master's system user")),
        "master user not planned"
    );
    assert!(
        !d.host("slave1").join("home").exists(),
        "check mode wrote into the prefix"
    );
}

/// The rendered configs are what the inventory says, and the sudo rules allow only dnf install.
fn check_deployed_files(d: &TestDeployment) {
    let master = d.host("master");
    let cfg: Value = yaml(&master.join("etc/taskotron/master.yaml"));
    let names: Vec<&str> = cfg["workers"]
        .as_array()
        .expect("workers list")
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["slave1-a", "slave1-b"]);
    for w in cfg["workers"].as_array().unwrap() {
        assert!(w.get("password").is_none(), "plain password in master.yaml");
        assert!(w["password_hash"].as_str().unwrap().starts_with("sha256$"));
    }
    assert_eq!(cfg["tasks"][0]["name"], "smoke");
    assert_eq!(cfg["http"]["listen"], format!("127.0.0.1:{}", d.http_port));

    let slave1 = d.host("slave1");
    let runtask: Value = yaml(&slave1.join("etc/taskotron/taskotron.yaml"));
    assert_eq!(
        runtask["artifactsdir"],
        slave1
            .join("var/lib/taskotron/artifacts")
            .display()
            .to_string()
    );
    for w in ["slave1-a", "slave1-b"] {
        let basedir = slave1.join("home/taskotron-workers").join(w);
        assert!(basedir.join("worker.yaml").exists(), "{w}: no worker.yaml");
        let rule = std::fs::read_to_string(
            slave1
                .join("etc/sudoers.d")
                .join(format!("taskotron-worker-{w}")),
        )
        .expect("sudo rule");
        assert!(
            rule.contains("NOPASSWD: /usr/bin/dnf ^-y install( "),
            "unexpected sudo rule: {rule}"
        );
    }
    let worker_unit = d.root().join("taskotron-worker@slave1-a.service");
    std::fs::copy(
        slave1.join("etc/systemd/system/taskotron-worker@.service"),
        &worker_unit,
    )
    .expect("worker template unit");
    verify_units(&[
        master.join("etc/systemd/system/taskotron-master.service"),
        master.join("etc/systemd/system/taskotron-trigger.service"),
        worker_unit,
    ]);
}

/// `systemd-analyze verify` accepts the deployed units (no unknown keys, absolute existing
/// executables). It works without a running systemd.
fn verify_units(units: &[PathBuf]) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("systemd-analyze not available ({e}); unit files not verified");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {units:?}: {}\n{stderr}",
        out.status
    );
}

fn start_master(d: &TestDeployment, logs: &Path, log: &str) -> ChildGuard {
    let unit = read_unit(
        &d.host("master")
            .join("etc/systemd/system/taskotron-master.service"),
        None,
    );
    let guard = ChildGuard::spawn(
        "taskotron-master",
        &mut unit.command(&logs.join(format!("{log}.log"))),
    );
    wait_for("the master's HTTP port", Duration::from_secs(60), || {
        util::port_open(d.http_port).then_some(())
    });
    guard
}

fn start_worker(d: &TestDeployment, host: &str, name: &str, logs: &Path) -> ChildGuard {
    let unit = read_unit(
        &d.host(host)
            .join("etc/systemd/system/taskotron-worker@.service"),
        Some(name),
    );
    ChildGuard::spawn(name, &mut unit.command(&logs.join(format!("{name}.log"))))
}

/// Waits until the master's REST API lists every named worker as connected.
fn wait_connected(d: &TestDeployment, names: &[&str], logs: &Path) {
    wait_or_dump(&format!("workers {names:?} to connect"), logs, || {
        let workers = get_json(d, "/api/v2/workers")?;
        let connected: Vec<&str> = workers["workers"]
            .as_array()?
            .iter()
            .filter(|w| w["connected_to"].as_array().is_some_and(|c| !c.is_empty()))
            .filter_map(|w| w["name"].as_str())
            .collect();
        names.iter().all(|n| connected.contains(n)).then_some(())
    });
}

/// Like util::wait_for (90 s), but a timeout panics with the tails of the programs' logs.
fn wait_or_dump<T>(what: &str, logs: &Path, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", log_tails(logs));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(d: &TestDeployment, path: &str) -> Option<Value> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}{path}", d.master_url()))
        .timeout(Duration::from_secs(5))
        .send()
        .ok()?;
    resp.json().ok()
}

fn get_text(d: &TestDeployment, path: &str) -> String {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}{path}", d.master_url()))
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.text().expect("body")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// name -> its entry in the deployed master.yaml.
fn master_workers(d: &TestDeployment) -> BTreeMap<String, Value> {
    let cfg = yaml(&d.host("master").join("etc/taskotron/master.yaml"));
    cfg["workers"]
        .as_array()
        .expect("workers list")
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), w.clone()))
        .collect()
}

/// Content and mtime of every file the roles manage on a host (not the workers' build dirs).
fn snapshot(host: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![host.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            let rel = path.strip_prefix(host).unwrap().to_path_buf();
            // The worker agents write their own state under their basedirs while running.
            let managed = rel.starts_with("etc")
                || rel.starts_with("usr")
                || rel
                    .file_name()
                    .is_some_and(|n| n == "worker.yaml" || n == ".taskotron-registration");
            if meta.is_dir() {
                if !rel.starts_with("var") {
                    stack.push(path);
                }
            } else if managed {
                out.insert(
                    rel,
                    (std::fs::read(&path).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

fn log_tails(logs: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        out.push_str(&format!(
            "--- {} ---\n{}\n",
            entry.path().display(),
            ansible_support::ansible::tail(&text, 30)
        ));
    }
    out
}
