//! `taskotron-worker` command line: create-worker output, argument and config errors.

mod util;

use std::process::Command;

fn worker() -> Command {
    Command::new(util::bin("taskotron-worker"))
}

#[test]
fn create_worker_writes_config_and_info() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("w");
    let out = worker()
        .arg("create-worker")
        .arg(&base)
        .args([
            "master.example:9989",
            "w7",
            "pw",
            "--arch",
            "i386",
            "--numcpus",
            "3",
        ])
        .args([
            "--keepalive",
            "5",
            "--maxdelay",
            "60",
            "--admin",
            "QA <qa@example.org>",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(base.join("worker.yaml")).unwrap())
            .unwrap();
    assert_eq!(yaml["master"].as_str(), Some("master.example:9989"));
    assert_eq!(yaml["name"].as_str(), Some("w7"));
    assert_eq!(yaml["password"].as_str(), Some("pw"));
    assert_eq!(yaml["numcpus"].as_u64(), Some(3));
    assert_eq!(yaml["keepalive"].as_f64(), Some(5.0));
    assert_eq!(yaml["maxdelay"].as_f64(), Some(60.0));
    let info = |f: &str| std::fs::read_to_string(base.join("info").join(f)).unwrap();
    assert_eq!(info("arch"), "i386\n");
    assert_eq!(info("admin"), "QA <qa@example.org>\n");
    assert!(info("host").ends_with('\n') && info("host").len() > 1);

    // A second create-worker refuses to overwrite without --force.
    let again = worker()
        .arg("create-worker")
        .arg(&base)
        .args(["h:1", "w7", "pw"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn bad_arguments_and_configs_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // Usage errors: exit 2 (clap).
    let out = worker().arg("create-worker").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A master without a port.
    let out = worker()
        .arg("create-worker")
        .arg(tmp.path().join("x"))
        .args(["nohost", "w", "p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("master: expected HOST:PORT"));
    // start: missing and broken worker.yaml name the file and the field.
    let out = worker()
        .arg("start")
        .arg(tmp.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("worker.yaml"));
    let base = tmp.path().join("bad");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("worker.yaml"),
        "master: h:1\nname: w\npassword: p\nkeepalive: -1\n",
    )
    .unwrap();
    let out = worker().arg("start").arg(&base).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("worker.yaml") && err.contains("keepalive"),
        "{err}"
    );
    std::fs::write(
        base.join("worker.yaml"),
        "master: h:1\nname: w\npassword: p\nbogus: 1\n",
    )
    .unwrap();
    let out = worker().arg("start").arg(&base).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `bogus`"), "{err}");
    // --help exists for each command.
    for sub in ["create-worker", "start"] {
        let out = worker().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
    }
}
