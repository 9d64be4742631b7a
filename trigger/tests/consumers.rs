//! Each consumer's message data from real (or realistically shaped) messages, and the field it
//! names when a message is malformed.

use std::path::PathBuf;

use serde_json::{json, Value};
use taskotron_trigger::config::Config;
use taskotron_trigger::fedmsg::Envelope;
use taskotron_trigger::jobtriggers::{self, Context, MessageData};

fn ctx() -> Context {
    Context::new(&Config::default(), vec!["bash".into()])
}

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fedmsg")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn data(msg: Value) -> Result<Option<Vec<MessageData>>, String> {
    let env = Envelope::from_value(msg).unwrap();
    jobtriggers::dispatch(&jobtriggers::all(), &env, &ctx()).map_err(|e| e.to_string())
}

fn one(msg: Value) -> Value {
    let mut d = data(msg).unwrap().expect("a consumer handles it");
    assert_eq!(d.len(), 1);
    let mut v = Value::Object(d.remove(0));
    v.as_object_mut().unwrap().remove("_msg");
    v
}

#[test]
fn koji_build_completed() {
    assert_eq!(
        one(fixture(
            "fedmsg.buildsys.build.state.change.complete.signed.json"
        )),
        json!({"message_type": "KojiBuildPackageCompleted", "item": "python-ply-3.9-4.module_bd16c34d",
               "item_type": "koji_build", "name": "python-ply", "version": "3.9", "release": "4.module_bd16c34d",
               "critpath_pkgs": ["bash"], "distgit_branch": "master", "build_id": 966557,
               "owner": "mbs/mbs.fedoraproject.org"})
    );
    assert_eq!(
        data(fixture(
            "fedmsg.buildsys.build.state.change.building.signed.json"
        ))
        .unwrap(),
        Some(vec![])
    );
    let mut secondary = fixture("fedmsg.buildsys.build.state.change.complete.signed.json");
    secondary["msg"]["instance"] = "s390".into();
    assert_eq!(data(secondary).unwrap(), Some(vec![]));
    let mut bad = fixture("fedmsg.buildsys.build.state.change.complete.signed.json");
    bad["msg"]["name"] = json!(5);
    assert_eq!(
        data(bad).unwrap_err(),
        "KojiBuildCompleted: field \"msg.name\": expected a string"
    );
}

#[test]
fn koji_tag_only_pending() {
    assert_eq!(
        data(fixture("fedmsg.buildsys.tag.signed.json")).unwrap(),
        Some(vec![])
    );
    let mut m = fixture("fedmsg.buildsys.tag.signed.json");
    m["msg"]["tag"] = "f28-updates-testing-pending".into();
    assert_eq!(
        one(m),
        json!({"message_type": "KojiTagChanged", "item": "f28-updates-testing-pending", "item_type": "koji_tag",
               "tag": "f28-updates-testing-pending", "name": "f28-updates-testing-pending"})
    );
}

#[test]
fn distgit_compose_bodhi() {
    let d = one(fixture("fedmsg.git.receive.json"));
    assert_eq!(d["message_type"], "DistGitCommit");
    assert_eq!(
        d["item"],
        "rpms/php-simplepie#81e09b9c83e8550b54a64c7bdb4e5d7b534df058"
    );
    assert_eq!(d["item_type"], "dist_git_commit");
    assert_eq!(
        (
            d["namespace"].as_str(),
            d["repo"].as_str(),
            d["branch"].as_str()
        ),
        (Some("rpms"), Some("php-simplepie"), Some("f24"))
    );

    let composes = data(fixture("fedmsg.pungi.compose.status.change.finished.json"))
        .unwrap()
        .unwrap();
    let types: Vec<_> = composes
        .iter()
        .map(|d| d["message_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["AtomicCompose", "CloudCompose"]);
    assert_eq!(composes[0]["compose_id"], "Fedora-24-20151208.n.7");
    assert_eq!(composes[0]["status"], "FINISHED");
    assert_eq!(composes[0]["item_type"], "compose");

    let b = one(fixture("fedmsg.bodhi.update.request.testing.json"));
    assert_eq!(b["message_type"], "BodhiUpdate");
    assert_eq!(
        b["item"],
        "gnome-settings-daemon-3.6.1-1.fc18 control-center-3.6.1-1.fc18"
    );
    assert_eq!(
        b["builds"],
        json!([
            "gnome-settings-daemon-3.6.1-1.fc18",
            "control-center-3.6.1-1.fc18"
        ])
    );
    assert_eq!(b["tag"], "f18-updates-testing-pending");
    let b = one(fixture(
        "fedmsg.bodhi.update.status.testing.koji-build-group.build.complete.json",
    ));
    assert_eq!(
        (b["item"].as_str(), b["release"].as_str()),
        (Some("FEDORA-2021-53a7dfa185"), Some("f34"))
    );
    assert_eq!(b["builds"], json!(["gdb-11.1-5.fc34"]));
    // Comments are not update changes: no consumer.
    assert_eq!(
        data(fixture("fedmsg.bodhi.update.comment.json")).unwrap(),
        None
    );
}

#[test]
fn module_pagure_github() {
    let m = json!({"topic": "org.fedoraproject.prod.mbs.module.state.change", "msg_id": "x",
        "msg": {"name": "nodejs", "stream": "f26", "version": "20170511113257", "state": 5, "state_name": "ready"}});
    assert_eq!(one(m)["item"], "nodejs-f26-20170511113257");
    let m = json!({"topic": "org.fedoraproject.prod.mbs.module.state.change", "msg_id": "x",
        "msg": {"name": "nodejs", "stream": "f26", "version": "1", "state": 3, "state_name": "done"}});
    assert_eq!(data(m).unwrap(), Some(vec![]));

    let p = json!({"topic": "io.pagure.prod.pagure.git.receive", "msg_id": "x",
        "msg": {"repo": {"fullname": "taskotron/task-foo", "name": "task-foo", "namespace": "taskotron"},
                "branch": "master", "end_commit": "abc"}});
    let d = one(p);
    assert_eq!(d["item"], "https://pagure.io/taskotron/task-foo#master#abc");
    assert_eq!(
        (d["repo"].as_str(), d["item_type"].as_str()),
        (Some("taskotron/task-foo"), Some("git_commit"))
    );

    let g = json!({"topic": "org.fedoraproject.prod.github.pull_request.opened", "msg_id": "x",
        "msg": {"action": "opened", "pull_request": {"html_url": "https://github.com/container-images/memcached/pull/12",
                "number": 12, "head": {"sha": "def"}, "base": {"ref": "master"}},
                "repository": {"full_name": "container-images/memcached"}}});
    let d = one(g);
    assert_eq!(
        d["item"],
        "https://github.com/container-images/memcached/pull/12"
    );
    assert_eq!(
        (d["repo_name"].as_str(), d["item_type"].as_str()),
        (Some("container-images/memcached"), Some("pull_request"))
    );
    let closed = json!({"topic": "org.fedoraproject.prod.github.pull_request.closed", "msg_id": "x",
        "msg": {"action": "closed"}});
    assert_eq!(data(closed).unwrap(), Some(vec![]));
    let bad = json!({"topic": "org.fedoraproject.prod.github.pull_request.opened", "msg_id": "x",
        "msg": {"action": "opened", "pull_request": {}}});
    assert_eq!(
        data(bad).unwrap_err(),
        "GitHubPullRequestOpened: field \"msg.pull_request.html_url\": expected a string"
    );
}
