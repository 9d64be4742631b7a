//! The trigger's command line: check-rules (with a real `discover` clone), replay of a real
//! datagrepper page, publish (bind) -> run (connect) with the publisher going away and coming
//! back, SIGHUP reload keeping the last good rules, KojiTagChanged debouncing, config errors.

mod trigger_support;
mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use trigger_support::{count_rows, git, write_config, StandInMaster, Trigger};

const T: Duration = Duration::from_secs(60);

fn trigger() -> Command {
    Command::new(util::bin("taskotron-trigger"))
}

fn fx(name: &str) -> std::path::PathBuf {
    util::fixtures().join("fedmsg").join(name)
}

fn publish(endpoint: &str, bind: bool, topic: Option<&str>, file: &Path) {
    let mut cmd = trigger();
    cmd.args(["publish", "--endpoint", endpoint, "--settle-ms", "2500"]);
    if bind {
        cmd.arg("--bind");
    }
    if let Some(t) = topic {
        cmd.args(["--topic", t]);
    }
    let out = cmd.arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_rules_prints_jobs_and_discovered_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("task-repo");
    std::fs::create_dir_all(repo.join("abi")).unwrap();
    std::fs::create_dir_all(repo.join("deep/er")).unwrap();
    std::fs::write(repo.join("runtask.yml"), "name: a\n").unwrap();
    std::fs::write(repo.join("abi/runtask.yml"), "name: b\n").unwrap();
    // Two levels down: only found with `recursive: true`.
    std::fs::write(repo.join("deep/er/runtask.yml"), "name: c\n").unwrap();
    git(&repo, &["init", "-q", "-b", "master"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "tasks"]);
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        format!(
            "- when: {{message_type: KojiBuildPackageCompleted}}\n  do:\n    - {{tasks: [rpmlint]}}\n    \
             - discover: {{repo: '{}', branch: '${{distgit_branch}}x', fallback_branch: master}}\n      arches: [noarch]\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = trigger()
        .args(["check-rules", "--rules"])
        .arg(&rules)
        .arg("--message")
        .arg(fx(
            "fedmsg.buildsys.build.state.change.complete.signed.json",
        ))
        .arg("--git-cache-dir")
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: BTreeSet<String> = jobs
        .iter()
        .map(|j| {
            format!(
                "{} {} {} {}",
                j["taskname"], j["arch"], j["git_repo"], j["git_branch"]
            )
        })
        .collect();
    let r = format!("\"{}\"", repo.display());
    let want: BTreeSet<String> = [
        "\"rpmlint\" \"x86_64\" null null".to_string(),
        format!("\"task-repo\" \"noarch\" {r} \"master\""),
        format!("\"abi\" \"noarch\" {r} \"master\""),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert!(jobs
        .iter()
        .all(|j| j["item"] == "python-ply-3.9-4.module_bd16c34d" && j.get("uuid").is_none()));
}

#[test]
fn bad_rules_bad_config_and_usage_errors_have_clear_messages_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "- when: {tag: {$regex: '/(/'}}\n  do: [{tasks: [x]}]\n",
    )
    .unwrap();
    let out = trigger()
        .args(["check-rules", "--rules"])
        .arg(&rules)
        .arg("--message")
        .arg(fx("fedmsg.buildsys.tag.signed.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule 0: when.tag.$regex"), "{err}");

    // `run` refuses to start with that rules file, naming the rule.
    let cfg = write_config(
        dir.path(),
        util::free_port(),
        "http://127.0.0.1:1",
        &rules,
        "",
    );
    let out = trigger()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule 0: when.tag.$regex"));

    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "endpoints: [\"tcp://127.0.0.1:1\"]\nvalid_arches: []\n",
    )
    .unwrap();
    let out = trigger()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("valid_arches: expected a non-empty list")
    );

    std::fs::write(
        &cfg,
        "endpoints: [\"tcp://127.0.0.1:1\"]\nmaster: {urll: x}\n",
    )
    .unwrap();
    let out = trigger()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `urll`"));

    let out = trigger().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_of_a_real_datagrepper_page_submits_what_check_rules_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let page = fx("datagrepper.raw.response.sample.json");
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let predicted = trigger()
        .args(["check-rules", "--no-discover", "--rules"])
        .arg(&rules)
        .arg("--message")
        .arg(&page)
        .output()
        .unwrap();
    assert!(predicted.status.success());
    let predicted: BTreeSet<String> = String::from_utf8(predicted.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let j: Value = serde_json::from_str(l).unwrap();
            format!("{} {} {}", j["taskname"], j["arch"], j["item"])
        })
        .collect();
    assert!(
        !predicted.is_empty(),
        "the sample page has completed Koji builds"
    );

    let master = StandInMaster::start(util::free_port());
    // Signature checks on: every replayed message must still verify after datagrepper's fields
    // are removed, or its jobs would be missing.
    let cfg = write_config(
        dir.path(),
        util::free_port(),
        &master.url(),
        &rules,
        "signatures:\n  validate: true\n",
    );
    let out = trigger()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("invalid signature"));
    let got: BTreeSet<String> = master
        .submissions()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.properties["taskname"], s.properties["arch"], s.properties["item"]
            )
        })
        .collect();
    assert_eq!(got, predicted);
    let n = master.submissions().len();
    // Replaying again submits nothing new (message ids are remembered).
    let out = trigger()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(master.submissions().len(), n);
}

#[test]
fn connect_mode_follows_a_publisher_that_goes_away_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let master = StandInMaster::start(util::free_port());
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "- when: {message_type: KojiBuildPackageCompleted}\n  do: [{tasks: [rpmlint]}]\n",
    )
    .unwrap();
    let pub_port = util::free_port();
    let cfg = write_config(dir.path(), util::free_port(), &master.url(), &rules, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("endpoints: [\"tcp://127.0.0.1:{pub_port}\"]\n{text}"),
    )
    .unwrap();
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("trigger running", 1, T);
    let endpoint = format!("tcp://127.0.0.1:{pub_port}");
    // First publisher: binds, publishes a real fixture envelope, exits.
    publish(
        &endpoint,
        true,
        None,
        &fx("fedmsg.buildsys.build.state.change.complete.signed.json"),
    );
    util::wait_for("first job", T, || {
        (master.submissions().len() == 1).then_some(())
    });
    // Second publisher on the same endpoint: the trigger reconnects and re-subscribes.
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"build_id":2,"instance":"primary","name":"bash","new":1,"old":0,"owner":"x","release":"1.fc30","version":"5.0"}"#).unwrap();
    publish(
        &endpoint,
        true,
        Some("org.fedoraproject.prod.buildsys.build.state.change"),
        &payload,
    );
    util::wait_for("second job", T, || {
        (master.submissions().len() == 2).then_some(())
    });
    let items: Vec<_> = master
        .submissions()
        .iter()
        .map(|s| s.properties["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        items,
        ["python-ply-3.9-4.module_bd16c34d", "bash-5.0-1.fc30"]
    );
}

#[test]
fn sighup_reload_keeps_the_last_good_rules() {
    let dir = tempfile::tempdir().unwrap();
    let master = StandInMaster::start(util::free_port());
    let rules = dir.path().join("rules.yml");
    let rule = |task: &str| {
        format!(
            "- when: {{message_type: KojiBuildPackageCompleted}}\n  do: [{{tasks: [{task}]}}]\n"
        )
    };
    std::fs::write(&rules, rule("rpmlint")).unwrap();
    let relay = util::free_port();
    let cfg = write_config(dir.path(), relay, &master.url(), &rules, "");
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let endpoint = format!("tcp://127.0.0.1:{relay}");
    let topic = Some("org.fedoraproject.prod.buildsys.build.state.change");
    let payload = |name: &str| {
        let p = dir.path().join(format!("{name}.json"));
        std::fs::write(&p, format!(r#"{{"instance":"primary","name":"{name}","new":1,"release":"1.fc30","version":"1"}}"#)).unwrap();
        p
    };

    std::fs::write(
        &rules,
        "- when: {message_type: {$bogus: 1}}\n  do: [{tasks: [x]}]\n",
    )
    .unwrap();
    trigger.guard.signal(libc::SIGHUP);
    trigger.wait_log("rules reload failed; keeping the previous rules", 1, T);
    publish(&endpoint, false, topic, &payload("one"));
    util::wait_for("job with the old rules", T, || {
        (master.submissions().len() == 1).then_some(())
    });
    assert_eq!(master.submissions()[0].properties["taskname"], "rpmlint");

    std::fs::write(&rules, rule("rpmgrill")).unwrap();
    trigger.guard.signal(libc::SIGHUP);
    trigger.wait_log("rules reloaded", 1, T);
    publish(&endpoint, false, topic, &payload("two"));
    util::wait_for("job with the new rules", T, || {
        (master.submissions().len() == 2).then_some(())
    });
    assert_eq!(master.submissions()[1].properties["taskname"], "rpmgrill");
}

#[test]
fn koji_tag_messages_are_debounced_per_tag() {
    let dir = tempfile::tempdir().unwrap();
    let master = StandInMaster::start(util::free_port());
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "- when: {message_type: KojiTagChanged}\n  do: [{tasks: [rpmdeplint]}]\n",
    )
    .unwrap();
    let relay = util::free_port();
    let cfg = write_config(dir.path(), relay, &master.url(), &rules, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("fuse_delay: 0", "fuse_delay: 1.5");
    std::fs::write(&cfg, text).unwrap();
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let lines: Vec<String> = ["f30-updates-pending", "f30-updates-pending", "f30-updates-pending", "f31-updates-testing-pending"]
        .iter()
        .enumerate()
        .map(|(i, t)| format!(r#"{{"build_id":{i},"instance":"primary","name":"p{i}","tag":"{t}","release":"1","version":"1"}}"#))
        .collect();
    let file = dir.path().join("tags.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    publish(
        &format!("tcp://127.0.0.1:{relay}"),
        false,
        Some("org.fedoraproject.prod.buildsys.tag"),
        &file,
    );
    trigger.wait_log("fuse burnt down", 2, T);
    util::wait_for("outbox drained", T, || {
        (count_rows(&dir.path().join("state"), "jobs") == 0).then_some(())
    });
    let items: BTreeSet<String> = master
        .submissions()
        .iter()
        .map(|s| s.properties["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(master.submissions().len(), 2, "one job per tag");
    assert_eq!(
        items,
        ["f30-updates-pending", "f31-updates-testing-pending"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(
        trigger
            .log()
            .matches("fuse already burning; absorbed")
            .count(),
        2
    );
}

#[test]
fn publish_feeds_a_real_fedmsg_subscriber_that_verifies_the_signature() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let port = util::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let ca = util::fixtures().join("fedmsg/test_pki/ca.crt");
    let mut tail = util::ChildGuard::spawn(
        "fedmsg tail",
        Command::new(util::venv_bin("python"))
            .arg(util::repo_root().join("tests/trigger_support/fedmsg_tail.py"))
            .arg(&endpoint)
            .arg(&ca)
            .arg("2")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let mut out = BufReader::new(tail.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // A signed fixture (sent byte for byte) and a bare payload wrapped into a fresh envelope.
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"build_id": 7, "name": "café ✓", "new": 1}"#).unwrap();
    let file = dir.path().join("both.jsonl");
    let signed = std::fs::read_to_string(fx("fedmsg.testca.signed.good.json")).unwrap();
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            signed.trim(),
            std::fs::read_to_string(&payload).unwrap()
        ),
    )
    .unwrap();
    publish(
        &endpoint,
        true,
        Some("org.fedoraproject.prod.buildsys.build.state.change"),
        &file,
    );
    let got: Vec<Value> = (0..2)
        .map(|_| {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"))
        })
        .collect();
    tail.wait_exit(T);
    assert_eq!(
        got[0]["msg_id"],
        "2023-00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(
        got[0]["valid"], true,
        "real fedmsg validates the forwarded signature"
    );
    assert_eq!(
        got[1]["msg"],
        serde_json::json!({"build_id": 7, "name": "café ✓", "new": 1})
    );
    assert_eq!(
        got[1]["topic"],
        "org.fedoraproject.prod.buildsys.build.state.change"
    );
    assert!(got[1]["msg_id"].as_str().unwrap().len() > 30);
}

#[test]
fn a_message_whose_item_could_reach_a_shell_makes_no_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let good = fx("fedmsg.buildsys.build.state.change.complete.signed.json");
    let text = std::fs::read_to_string(&good).unwrap();
    let mut env: serde_json::Value = serde_json::from_str(&text).unwrap();
    env["msg"]["name"] = "$(touch /tmp/pwned)".into();
    let hostile = dir.path().join("hostile.json");
    std::fs::write(&hostile, env.to_string()).unwrap();
    let run = |msg: &Path| {
        trigger()
            .args(["check-rules", "--no-discover", "--rules"])
            .arg(&rules)
            .arg("--message")
            .arg(msg)
            .output()
            .unwrap()
    };
    // The 2017 message still gives its jobs ...
    let out = run(&good);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("python-ply-3.9-4.module_bd16c34d"));
    // ... the same message with a hostile name gives none, with the reason logged.
    let out = run(&hostile);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing the message's jobs") && err.contains("not a valid koji_build"),
        "{err}"
    );
}
