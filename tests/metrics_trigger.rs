//! The trigger's `/metrics`, `/healthz` and `/readyz` (config `http.listen`) with a real fedmsg
//! publisher on loopback: counters for messages by topic, duplicates, signature failures, rule
//! matches, jobs, submit failures and the outbox depth move as messages flow and the master
//! stand-in fails and recovers; every scrape passes `promtool check metrics`.

mod trigger_support;
mod ui_support;
mod util;

use std::time::Duration;

use serde_json::json;
use trigger_support::{write_config, Publisher, StandInMaster, Trigger};
use ui_support::{promtool_check, sample};

const T: Duration = Duration::from_secs(60);
const TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";

fn fx(name: &str) -> String {
    util::fixtures()
        .join("fedmsg")
        .join(name)
        .display()
        .to_string()
}

fn scrape(port: u16) -> String {
    let r = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().unwrap();
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- scrape ---\n{text}");
    }
    text
}

fn v(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or(0.0)
}

fn rule_matches(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("taskotron_trigger_rule_matches_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn trigger_metrics_follow_messages_and_submissions() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport, hport) = (util::free_port(), util::free_port(), util::free_port());
    let master = StandInMaster::start(mport);
    *master.status.lock().unwrap() = 503;
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let cfg = write_config(
        dir.path(),
        relay,
        &master.url(),
        &rules,
        &format!("signatures:\n  validate: true\nhttp:\n  listen: 127.0.0.1:{hport}\n"),
    );
    let good = std::fs::read_to_string(fx(
        "fedmsg.buildsys.build.state.change.complete.signed.json",
    ))
    .unwrap();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(
        &tampered,
        good.replace("\"name\":\"python-ply\"", "\"name\":\"python-plx\""),
    )
    .unwrap();

    let trigger = Trigger::start(&cfg);
    let base = format!("http://127.0.0.1:{hport}");
    util::wait_for("readyz", T, || {
        reqwest::blocking::get(format!("{base}/readyz"))
            .ok()
            .filter(|r| r.status() == 200)
    });
    let health = reqwest::blocking::get(format!("{base}/healthz")).unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.text().unwrap().starts_with("ok"));
    let before = scrape(hport);
    assert_eq!(v(&before, "taskotron_trigger_outbox_depth"), 0.0);
    assert_eq!(
        v(
            &before,
            "taskotron_trigger_submit_failures_total{reason=\"unavailable\"}"
        ),
        0.0
    );

    // The master is down (503): a good message, its duplicate and a tampered copy arrive.
    let mut publisher = Publisher::start(
        dir.path(),
        relay,
        &json!([
            {"raw": fx("fedmsg.buildsys.build.state.change.complete.signed.json")},
            {"raw": tampered.display().to_string()},
            {"raw": fx("fedmsg.buildsys.build.state.change.complete.signed.json")},
        ]),
    );
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();
    let stuck = util::wait_for("jobs stuck in the outbox", T, || {
        let t = scrape(hport);
        (v(&t, "taskotron_trigger_messages_duplicate_total") == 1.0
            && v(
                &t,
                "taskotron_trigger_submit_failures_total{reason=\"unavailable\"}",
            ) >= 1.0)
            .then_some(t)
    });
    assert_eq!(
        v(
            &stuck,
            &format!("taskotron_trigger_messages_total{{topic=\"{TOPIC}\"}}")
        ),
        3.0,
        "{stuck}"
    );
    assert_eq!(v(&stuck, "taskotron_trigger_signature_failures_total"), 1.0);
    let jobs = v(&stuck, "taskotron_trigger_jobs_total");
    assert!(jobs >= 1.0, "{stuck}");
    assert!(rule_matches(&stuck) >= 1.0, "{stuck}");
    assert!(rule_matches(&stuck) <= jobs, "{stuck}");
    assert_eq!(
        v(&stuck, "taskotron_trigger_outbox_depth"),
        jobs,
        "nothing submitted yet"
    );
    assert_eq!(v(&stuck, "taskotron_trigger_submitted_total"), 0.0);

    // The master recovers: the outbox drains and every job is counted as submitted.
    *master.status.lock().unwrap() = 200;
    let drained = util::wait_for("outbox drained", T, || {
        let t = scrape(hport);
        (v(&t, "taskotron_trigger_outbox_depth") == 0.0).then_some(t)
    });
    assert_eq!(v(&drained, "taskotron_trigger_submitted_total"), jobs);
    assert_eq!(master.submissions().len() as f64, jobs);
    assert_eq!(v(&drained, "taskotron_trigger_outbox_dead_letters"), 0.0);
}

#[test]
fn bad_listen_address_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write_config(
        dir.path(),
        util::free_port(),
        "http://127.0.0.1:9",
        &rules,
        &format!("http:\n  listen: 127.0.0.1:{port}\n"),
    );
    let mut trigger = Trigger::start(&cfg);
    let status = trigger.guard.wait_exit(T);
    assert!(!status.success());
    util::wait_for("error in log", T, || {
        trigger
            .log()
            .contains(&format!("http.listen 127.0.0.1:{port}: cannot bind"))
            .then_some(())
    });
    let bad = write_config(
        dir.path(),
        util::free_port(),
        "http://127.0.0.1:9",
        &rules,
        "http:\n  listen: nowhere\n",
    );
    let out = std::process::Command::new(util::bin("taskotron-trigger"))
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.listen") || err.contains("listen"),
        "{err}"
    );
}
