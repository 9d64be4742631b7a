//! The trigger feeds a real Buildbot 4.3 master through its `base` change hook (with HTTP
//! basic credentials, Buildbot's `change_hook_auth`), and the master records the changes with
//! Taskotron's properties.

mod trigger_support;
mod util;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use trigger_support::{count_rows, write_config, Publisher, Trigger};
use util::ChildGuard;

const T: Duration = Duration::from_secs(90);

fn api(port: u16, path: &str) -> Value {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v2/{path}"))
        .and_then(|r| r.json())
        .unwrap()
}

#[test]
fn real_buildbot_master_accepts_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("master");
    let ok = Command::new(util::venv_bin("buildbot"))
        .args(["create-master", "-q"])
        .arg(&bb)
        .status()
        .unwrap();
    assert!(ok.success(), "buildbot create-master failed");
    std::fs::copy(
        util::repo_root().join("tests/trigger_support/buildbot/master.cfg"),
        bb.join("master.cfg"),
    )
    .unwrap();
    let (www, pb) = (util::free_port(), util::free_port());
    let log = std::fs::File::create(dir.path().join("buildbot.log")).unwrap();
    let _master = ChildGuard::spawn(
        "buildbot",
        Command::new(util::venv_bin("buildbot"))
            .args(["start", "--nodaemon"])
            .arg(&bb)
            .env("TT_WWW_PORT", www.to_string())
            .env("TT_PB_PORT", pb.to_string())
            .env("TT_HOOK_USER", "trigger")
            .env("TT_HOOK_PASSWORD", "hook-pw")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log)),
    );
    util::wait_for("buildbot www", T, || util::port_open(www).then_some(()));

    // Without credentials the real change hook refuses (401): a permanent refusal.
    let anon = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{www}/change_hook/base"))
        .form(&[("project", "rpmcheck")])
        .send()
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    let relay = util::free_port();
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let cfg = write_config(
        dir.path(),
        relay,
        &format!("http://127.0.0.1:{www}"),
        &rules,
        "  username: trigger\n  password: hook-pw\nvalid_arches: [x86_64, armhfp]\n",
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let fx =
        util::fixtures().join("fedmsg/fedmsg.buildsys.build.state.change.complete.signed.json");
    let mut publisher = Publisher::start(
        dir.path(),
        relay,
        &json!([{"raw": fx.display().to_string()}]),
    );
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();

    util::wait_for("outbox drained", T, || {
        (count_rows(&dir.path().join("state"), "jobs") == 0).then_some(())
    });
    assert_eq!(
        count_rows(&dir.path().join("state"), "dead_letters"),
        0,
        "{}",
        trigger.log()
    );
    // Buildbot's own answer for each accepted job is logged.
    trigger.wait_log("1 change found", 6, T);

    let changes = api(www, "changes")["changes"].as_array().unwrap().clone();
    assert_eq!(changes.len(), 6);
    let mut seen = BTreeSet::new();
    for ch in &changes {
        assert_eq!(ch["project"], "rpmcheck");
        let p = &ch["properties"];
        assert_eq!(p["item"][0], "python-ply-3.9-4.module_bd16c34d");
        assert_eq!(p["item_type"][0], "koji_build");
        assert_eq!(p["arch"][0], ch["category"]);
        assert_eq!(p["uuid"][1], "Change");
        seen.insert((
            p["taskname"][0].as_str().unwrap().to_string(),
            ch["category"].as_str().unwrap().to_string(),
        ));
    }
    let want: BTreeSet<(String, String)> = [
        ("rpmlint", "x86_64"),
        ("rpmlint", "armhfp"),
        ("python-versions", "noarch"),
        ("rpmgrill", "noarch"),
        ("abicheck", "x86_64"),
        ("abicheck", "armhfp"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want);
    // The master's schedulers turned them into build requests for the per-arch builders.
    util::wait_for("6 build requests", T, || {
        (api(www, "buildrequests")["buildrequests"]
            .as_array()
            .map(Vec::len)
            == Some(6))
        .then_some(())
    });
}
