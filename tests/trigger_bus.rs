//! End to end: a real fedmsg 1.1.7 publisher (pyzmq, loopback) -> taskotron-trigger (SUB bound
//! like a relay inbound) -> the loopback stand-in master's change hook.

mod trigger_support;
mod util;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use trigger_support::{count_rows, write_config, Publisher, StandInMaster, Trigger};

const T: Duration = Duration::from_secs(60);

fn fx(name: &str) -> String {
    util::fixtures()
        .join("fedmsg")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn fixture_messages_become_the_expected_jobs_with_signatures_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport) = (util::free_port(), util::free_port());
    let master = StandInMaster::start(mport);
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let cfg = write_config(
        dir.path(),
        relay,
        &master.url(),
        &rules,
        "valid_arches: [x86_64, armhfp]\nsignatures:\n  validate: true\n",
    );
    // A tampered copy of a signed production message must be dropped.
    let good = std::fs::read_to_string(fx(
        "fedmsg.buildsys.build.state.change.complete.signed.json",
    ))
    .unwrap();
    let tampered = good.replace("\"name\":\"python-ply\"", "\"name\":\"python-plx\"");
    assert_ne!(good, tampered);
    let tampered_path = dir.path().join("tampered.json");
    std::fs::write(&tampered_path, tampered).unwrap();

    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let mut publisher = Publisher::start(
        dir.path(),
        relay,
        &json!([
            {"ssldir": util::fixtures().join("fedmsg/test_pki").display().to_string()},
            {"raw": fx("fedmsg.buildsys.build.state.change.complete.signed.json")},
            {"raw": fx("fedmsg.buildsys.build.state.change.building.signed.json")},
            {"raw": fx("fedmsg.buildsys.tag.signed.json")},
            {"raw": fx("fedmsg.git.receive.json")},
            {"raw": tampered_path.display().to_string()},
            {"publish": {"modname": "buildsys", "topic": "tag", "msg": {
                "build_id": 1, "instance": "primary", "name": "bash", "owner": "x", "release": "1.fc32",
                "tag": "f32-updates-testing-pending", "tag_id": 1, "user": "bodhi", "version": "5.0"}}},
            {"raw": fx("fedmsg.buildsys.build.state.change.complete.signed.json")},
        ]),
    );
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();

    trigger.wait_log("duplicate message ignored", 1, T);
    util::wait_for("outbox drained", T, || {
        (count_rows(&dir.path().join("state"), "jobs") == 0).then_some(())
    });
    let subs = master.submissions();
    let got: BTreeSet<(String, String, String)> = subs
        .iter()
        .map(|s| {
            let p = &s.properties;
            (
                p["taskname"].as_str().unwrap().into(),
                p["arch"].as_str().unwrap().into(),
                p["item"].as_str().unwrap().into(),
            )
        })
        .collect();
    let ply = "python-ply-3.9-4.module_bd16c34d";
    let tag = "f32-updates-testing-pending";
    let want: BTreeSet<(String, String, String)> = [
        ("rpmlint", "x86_64", ply),
        ("rpmlint", "armhfp", ply),
        ("python-versions", "noarch", ply),
        ("rpmgrill", "noarch", ply),
        ("abicheck", "x86_64", ply),
        ("abicheck", "armhfp", ply),
        ("rpmdeplint", "x86_64", tag),
        ("rpmdeplint", "armhfp", tag),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        subs.len(),
        8,
        "no job twice (the duplicate message was ignored)"
    );
    let uuids: BTreeSet<_> = subs
        .iter()
        .map(|s| s.properties["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(uuids.len(), 8);
    for s in &subs {
        assert_eq!(s.form["project"], "rpmcheck");
        assert_eq!(s.form["category"], s.properties["arch"].as_str().unwrap());
        let item_type = s.properties["item_type"].as_str().unwrap();
        assert!(item_type == "koji_build" || item_type == "koji_tag");
    }
    // The unsigned git.receive and the tampered copy were refused.
    assert_eq!(
        trigger.log().matches("invalid signature").count(),
        2,
        "{}",
        trigger.log()
    );
}

#[test]
fn ca_and_crl_refuse_a_revoked_signer_and_bearer_token_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mport) = (util::free_port(), util::free_port());
    let master = StandInMaster::start(mport);
    let rules = util::fixtures().join("taskotron/trigger_rules.prod-2020-02.yml");
    let pki = util::fixtures().join("fedmsg/test_pki");
    let cfg = write_config(
        dir.path(),
        relay,
        &master.url(),
        &rules,
        &format!(
            "  token: s3cret-token\nsignatures:\n  validate: true\n  ca_cert: {}\n  crl: {}\n",
            pki.join("ca.crt").display(),
            pki.join("crl.pem").display()
        ),
    );
    let tag_msg = |tag: &str| {
        json!({"build_id": 1, "instance": "primary", "name": "bash", "owner": "x",
        "release": "1.fc31", "tag": tag, "tag_id": 1, "user": "bodhi", "version": "5.0"})
    };
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let mut publisher = Publisher::start(
        dir.path(),
        relay,
        &json!([
            {"ssldir": pki.display().to_string()},
            {"publish": {"modname": "buildsys", "topic": "tag", "msg": tag_msg("f30-updates-pending")},
             "certname": "revoked-test.localdomain"},
            {"publish": {"modname": "buildsys", "topic": "tag", "msg": tag_msg("f31-updates-pending")},
             "certname": "trigger-test.localdomain"},
        ]),
    );
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();
    util::wait_for("one job", T, || {
        (master.submissions().len() == 1).then_some(())
    });
    trigger.wait_log("is revoked", 1, T);
    let s = &master.submissions()[0];
    assert_eq!(s.properties["item"], "f31-updates-pending");
    assert_eq!(s.properties["taskname"], "rpmdeplint");
    assert_eq!(s.authorization.as_deref(), Some("Bearer s3cret-token"));
}
