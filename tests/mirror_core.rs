//! Task mirror core: local-path and file:// mirroring, pinning, snapshots (also after the
//! branch moved on or was force-pushed), the published manifest against real `git show-ref`,
//! read-only dumb-HTTP clones with real `git`, failure isolation, and ad-hoc allow-listing.

mod mirror_support;
mod util;

use std::io::Read;

use mirror_support::{git, git_env, serve, show_ref_fingerprint, task, Origin};
use taskotron_master::mirror::{MirrorConfig, MirrorError, Mirrors, TaskSource};

fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::blocking::get(url).expect("GET");
    let status = resp.status().as_u16();
    (status, resp.bytes().unwrap().to_vec())
}

/// name -> (mode, content) of a .tar.gz.
fn untar(bytes: &[u8]) -> std::collections::BTreeMap<String, (u32, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mode = e.header().mode().unwrap();
        let mut s = String::new();
        let _ = e.read_to_string(&mut s);
        out.insert(name, (mode, s));
    }
    out
}

fn manifest_json(bytes: &[u8]) -> serde_json::Value {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn mirrors_pins_snapshots_and_serves_clones() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "tasks/a.git", "main");
    let b = Origin::new(&top, "tasks/b.git", "develop");
    git(&a.work, &["tag", "-a", "v1.0", "-m", "release"]);
    git(&a.work, &["push", "-q", "origin", "v1.0"]);
    let tasks = vec![
        task("a", &a),
        TaskSource {
            name: "b".into(),
            url: format!("file://{}", b.url()),
            branch: "develop".into(),
        },
    ];
    let data = tmp.path().join("data");
    let srv = serve(
        &data,
        MirrorConfig {
            owner: Some("QA".into()),
            ..Default::default()
        },
        tasks,
    );
    let m = srv.mirrors.clone();

    let out = srv.rt.block_on(m.refresh_all());
    assert_eq!(out.len(), 2);
    assert!(
        out.iter().all(|o| o.changed && o.error.is_none()),
        "{out:?}"
    );
    let mirror_a = data.join("mirror/fedoraqa/a.git");
    assert_eq!(
        std::fs::read_to_string(mirror_a.join("HEAD"))
            .unwrap()
            .trim(),
        "ref: refs/heads/main"
    );
    let s1 = m.pin("a").unwrap();
    assert_eq!(s1, a.head());
    assert_eq!(m.pin("b").unwrap(), b.head());

    // The manifest: fingerprint exactly as `git show-ref | sha1sum`, same as the origin's.
    let (status, body) = get(&format!("{}/mirror/manifest.js.gz", srv.base()));
    assert_eq!(status, 200);
    let man = manifest_json(&body);
    let ea = &man["/fedoraqa/a.git"];
    assert_eq!(ea["fingerprint"], show_ref_fingerprint(&mirror_a));
    assert_eq!(ea["fingerprint"], show_ref_fingerprint(&a.bare));
    assert_eq!(ea["head"], "ref: refs/heads/main");
    assert_eq!(ea["owner"], "QA");
    assert_eq!(ea["reference"], serde_json::Value::Null);
    assert_eq!(man["/fedoraqa/b.git"]["head"], "ref: refs/heads/develop");
    assert_eq!(
        std::fs::read(data.join("mirror/manifest.js.gz")).unwrap(),
        body
    );

    // A second pass with nothing new fetches nothing.
    let out = srv.rt.block_on(m.refresh_all());
    assert!(
        out.iter().all(|o| !o.changed && o.error.is_none()),
        "{out:?}"
    );

    // Snapshot over HTTP: files at top level, executable bit kept.
    std::fs::write(a.work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        a.work.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let s2 = a.commit("sub/data.txt", "two\n", "second");
    let o = srv.rt.block_on(m.refresh("a"));
    assert!(o.changed && o.error.is_none(), "{o:?}");
    assert_eq!(o.head.as_deref(), Some(s2.as_str()));
    assert_eq!(m.pin("a").unwrap(), s2);
    let (status, tgz) = get(&format!("{}/tasks/a/archive/{s2}.tar.gz", srv.base()));
    assert_eq!(status, 200);
    let files = untar(&tgz);
    assert_eq!(files["runtask.yml"].1, "name: task\nactions: []\n");
    assert_eq!(files["sub/data.txt"].1, "two\n");
    assert_eq!(files["run.sh"].0, 0o755);
    assert_eq!(files["runtask.yml"].0, 0o644);

    // The old pin still serves the old tree, even rebuilt from scratch after the branch moved.
    std::fs::remove_dir_all(data.join("mirror-snapshots")).unwrap();
    let (status, tgz) = get(&format!("{}/tasks/a/archive/{s1}.tar.gz", srv.base()));
    assert_eq!(status, 200);
    let files = untar(&tgz);
    assert!(!files.contains_key("sub/data.txt"));

    // Force-push away s2: the mirror follows, and s2's snapshot still works.
    git(&a.work, &["reset", "-q", "--hard", &s1]);
    let s3 = a.commit("other.txt", "three\n", "rewritten");
    srv.rt.block_on(m.refresh("a"));
    assert_eq!(m.pin("a").unwrap(), s3);
    let p = m.snapshot("a", &s2).unwrap();
    assert!(untar(&std::fs::read(p).unwrap()).contains_key("sub/data.txt"));

    // Read-only clones with real git over smart HTTP (default) and dumb HTTP: branch and
    // annotated tag arrive; an incremental fetch after a push negotiates and gets the new commit.
    let url = format!("{}/mirror/fedoraqa/a.git", srv.base());
    let smart = tmp.path().join("smart");
    let dumb = tmp.path().join("dumb");
    git(tmp.path(), &["clone", "-q", &url, smart.to_str().unwrap()]);
    assert!(srv
        .hits_for("/mirror/fedoraqa/a.git/git-upload-pack")
        .iter()
        .all(|h| h.0 == "POST" && h.2 == 200));
    assert!(!srv
        .hits_for("/mirror/fedoraqa/a.git/git-upload-pack")
        .is_empty());
    let n_objects_before = srv.hits_for("/mirror/fedoraqa/a.git/objects/").len();
    git_env(
        tmp.path(),
        &["clone", "-q", &url, dumb.to_str().unwrap()],
        &[("GIT_SMART_HTTP", "0")],
    );
    assert!(
        srv.hits_for("/mirror/fedoraqa/a.git/objects/").len() > n_objects_before,
        "dumb clone fetched no objects"
    );
    for clone in [&smart, &dumb] {
        assert_eq!(git(clone, &["rev-parse", "HEAD"]).trim(), s3);
        assert_eq!(git(clone, &["cat-file", "-t", "v1.0"]).trim(), "tag");
        git(clone, &["fsck", "--no-progress"]);
    }
    let s4 = a.commit("four.txt", "4\n", "fourth");
    srv.rt.block_on(m.refresh("a"));
    git(&smart, &["fetch", "-q", "origin"]);
    assert_eq!(git(&smart, &["rev-parse", "origin/main"]).trim(), s4);
    git(&smart, &["fsck", "--no-progress"]);
    // A client with many commits we do not have: several negotiation rounds, gzip-encoded
    // request bodies (git compresses bodies over 1 KiB), unknown haves ignored.
    for i in 0..60 {
        git(
            &smart,
            &["commit", "-q", "--allow-empty", "-m", &format!("local {i}")],
        );
    }
    let s5 = a.commit("five.txt", "5\n", "fifth");
    srv.rt.block_on(m.refresh("a"));
    git(&smart, &["fetch", "-q", "origin"]);
    assert_eq!(git(&smart, &["rev-parse", "origin/main"]).trim(), s5);
    git(&smart, &["fsck", "--no-progress"]);
    git_env(
        &dumb,
        &["fetch", "-q", "origin"],
        &[("GIT_SMART_HTTP", "0")],
    );
    assert_eq!(git(&dumb, &["rev-parse", "origin/main"]).trim(), s5);
    // Pushing is refused.
    let push = std::process::Command::new("git")
        .args(["push", "-q", &url, "HEAD:refs/heads/evil"])
        .current_dir(&smart)
        .output()
        .unwrap();
    assert!(!push.status.success());
    // Nothing outside the protocol files is served.
    assert_eq!(
        get(&format!("{}/mirror/fedoraqa/a.git/config", srv.base())).0,
        404
    );
    assert_eq!(
        get(&format!(
            "{}/mirror/fedoraqa/a.git/objects/../config",
            srv.base()
        ))
        .0,
        404
    );
    assert_eq!(
        get(&format!("{}/mirror/fedoraqa/zzz.git/HEAD", srv.base())).0,
        404
    );

    // Bad requests.
    assert!(matches!(m.pin("nope"), Err(MirrorError::UnknownTask(_))));
    assert_eq!(
        get(&format!("{}/tasks/nope/archive/{s1}.tar.gz", srv.base())).0,
        404
    );
    assert_eq!(
        get(&format!("{}/tasks/a/archive/abc.tar.gz", srv.base())).0,
        400
    );
    assert_eq!(
        get(&format!(
            "{}/tasks/a/archive/{}.tar.gz",
            srv.base(),
            "0".repeat(40)
        ))
        .0,
        404
    );
}

#[test]
fn failing_upstreams_keep_the_last_good_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "tasks/a.git", "main");
    let b = Origin::new(&top, "tasks/b.git", "main");
    let dead_port = util::free_port();
    let tasks = vec![
        task("a", &a),
        task("b", &b),
        TaskSource {
            name: "down".into(),
            url: format!("http://127.0.0.1:{dead_port}/down.git"),
            branch: "main".into(),
        },
    ];
    let data = tmp.path().join("data");
    let srv = serve(&data, MirrorConfig::default(), tasks);
    let m = srv.mirrors.clone();
    let out = srv.rt.block_on(m.refresh_all());
    let by = |n: &str| out.iter().find(|o| o.name == n).unwrap().clone();
    assert!(by("a").changed && by("b").changed);
    assert!(
        by("down")
            .error
            .as_deref()
            .unwrap_or("")
            .contains("127.0.0.1"),
        "{:?}",
        by("down")
    );
    let a1 = m.pin("a").unwrap();

    // Repo a vanishes upstream; b moves on.
    std::fs::rename(&a.bare, top.join("gone.git")).unwrap();
    let b2 = b.commit("x", "y", "b2");
    let out = srv.rt.block_on(m.refresh_all());
    let by = |n: &str| out.iter().find(|o| o.name == n).unwrap().clone();
    assert!(by("a").error.is_some(), "{:?}", by("a"));
    assert!(by("b").changed && by("b").error.is_none());
    assert_eq!(by("b").head.as_deref(), Some(b2.as_str()));

    let st = m.status();
    let sa = st.iter().find(|s| s.name == "a").unwrap();
    assert!(
        sa.last_error.is_some() && sa.head.as_deref() == Some(a1.as_str()),
        "{sa:?}"
    );
    assert!(st
        .iter()
        .find(|s| s.name == "b")
        .unwrap()
        .last_error
        .is_none());

    // The last good copy of a keeps serving: pin, snapshot, manifest, clone.
    assert_eq!(m.pin("a").unwrap(), a1);
    assert_eq!(
        get(&format!("{}/tasks/a/archive/{a1}.tar.gz", srv.base())).0,
        200
    );
    let man = manifest_json(&get(&format!("{}/mirror/manifest.js.gz", srv.base())).1);
    assert!(man.get("/fedoraqa/a.git").is_some());
    assert!(
        man.get("/fedoraqa/down.git").is_none(),
        "repos without refs are not published"
    );
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            &format!("{}/mirror/fedoraqa/a.git", srv.base()),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), a1);
    // A task that never fetched cannot be pinned, with a message naming it.
    let err = m.pin("down").unwrap_err().to_string();
    assert!(err.contains("down"), "{err}");

    // The repo comes back: the next pass picks it up again.
    std::fs::rename(top.join("gone.git"), &a.bare).unwrap();
    let a2 = a.commit("z", "z", "a2");
    let o = srv.rt.block_on(m.refresh("a"));
    assert!(o.changed && o.error.is_none(), "{o:?}");
    assert_eq!(m.pin("a").unwrap(), a2);
    assert!(m
        .status()
        .iter()
        .find(|s| s.name == "a")
        .unwrap()
        .last_error
        .is_none());
}

#[test]
fn adhoc_repos_are_allow_listed_and_not_published() {
    let tmp = tempfile::tempdir().unwrap();
    let allowed_top = tmp.path().join("allowed");
    let other_top = tmp.path().join("other");
    let ok = Origin::new(&allowed_top, "x/task.git", "main");
    let bad = Origin::new(&other_top, "x/task.git", "main");
    let cfg = MirrorConfig {
        adhoc_allow: vec![format!("{}/", allowed_top.display())],
        ..Default::default()
    };
    let data = tmp.path().join("data");
    let m = Mirrors::open(&data, cfg, vec![]).unwrap();

    let (key, sha) = m.pin_adhoc(&ok.url(), "main").unwrap();
    assert!(key.starts_with("_adhoc_"), "{key}");
    assert_eq!(sha, ok.head());
    assert!(m.snapshot(&key, &sha).unwrap().is_file());
    // Same repo again: same key; a push is seen.
    let sha2 = ok.commit("f", "g", "next");
    assert_eq!(m.pin_adhoc(&ok.url(), "main").unwrap(), (key.clone(), sha2));

    assert!(matches!(
        m.pin_adhoc(&bad.url(), "main"),
        Err(MirrorError::NotAllowed(_))
    ));
    let sneaky = format!("{}/../other/x/task.git", allowed_top.display());
    assert!(matches!(
        m.pin_adhoc(&sneaky, "main"),
        Err(MirrorError::NotAllowed(_))
    ));
    assert!(m.pin_adhoc(&ok.url(), "no-such-branch").is_err());
    assert!(m.pin_adhoc(&ok.url(), "bad..branch").is_err());

    let (gz, _) = m.manifest();
    let mut s = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "{}");

    // The ad-hoc upstream vanishes: the last good cache mirror still pins.
    let sha_now = ok.head();
    std::fs::rename(&ok.bare, tmp.path().join("moved.git")).unwrap();
    assert_eq!(m.pin_adhoc(&ok.url(), "main").unwrap(), (key, sha_now));
}

#[test]
fn adhoc_pin_of_a_configured_repo_uses_its_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Origin::new(&tmp.path().join("origin"), "a.git", "main");
    git(&a.work, &["checkout", "-q", "-b", "feature"]);
    let feature = a.commit("feature.txt", "f\n", "feature work");
    git(&a.work, &["push", "-q", "origin", "feature"]);
    // No adhoc_allow at all: the configured URL is trusted by the config.
    let m = Mirrors::open(
        &tmp.path().join("data"),
        MirrorConfig::default(),
        vec![task("a", &a)],
    )
    .unwrap();
    let url = format!("file://{}", a.url());
    assert_eq!(
        m.pin_adhoc(&url, "feature").unwrap(),
        ("a".to_string(), feature.clone())
    );
    assert!(m.snapshot("a", &feature).unwrap().is_file());
    assert_eq!(m.status().len(), 1, "no second mirror was made");
}

#[test]
fn bad_config_is_reported_with_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad =
        |tasks: Vec<TaskSource>, cfg: MirrorConfig| match Mirrors::open(tmp.path(), cfg, tasks) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
    let t = |name: &str, url: &str| TaskSource {
        name: name.into(),
        url: url.into(),
        branch: "main".into(),
    };
    assert!(bad(vec![t("a", "relative/path")], MirrorConfig::default()).contains("tasks[0].url"));
    assert!(bad(vec![t("../a", "/x")], MirrorConfig::default()).contains("tasks[0].name"));
    let cfg = MirrorConfig {
        concurrency: 0,
        ..Default::default()
    };
    assert!(bad(vec![], cfg).contains("mirror.concurrency"));
    let e = serde_yaml_ng::from_str::<MirrorConfig>("upstream_manifest: ftp://x\n").unwrap();
    assert!(bad(vec![], e).contains("mirror.upstream_manifest"));
}

#[test]
fn periodic_refresh_picks_up_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Origin::new(&tmp.path().join("origin"), "a.git", "main");
    let cfg = MirrorConfig {
        refresh_interval: 1,
        ..Default::default()
    };
    let srv = serve(&tmp.path().join("data"), cfg, vec![task("a", &a)]);
    let m = srv.mirrors.clone();
    srv.rt.block_on(m.refresh_all());
    let _guard = srv.rt.enter();
    let handle = m.spawn_background();
    let new = a.commit("f", "x", "pushed without a webhook");
    let manifest_before = m.manifest().1;
    util::wait_for(
        "the periodic refresh to fetch the push",
        std::time::Duration::from_secs(30),
        || {
            let st = m.status();
            // The manifest is republished (Last-Modified moves on) after the fetch.
            (st[0].head.as_deref() == Some(new.as_str()) && m.manifest().1 > manifest_before)
                .then_some(())
        },
    );
    handle.abort();
}

#[test]
fn restart_keeps_the_manifest_and_drops_removed_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "a.git", "main");
    let b = Origin::new(&top, "b.git", "main");
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let m = Mirrors::open(
        &data,
        MirrorConfig::default(),
        vec![task("a", &a), task("b", &b)],
    )
    .unwrap();
    rt.block_on(m.refresh_all());
    let (gz, lm) = m.manifest();
    drop(m);
    // Same tasks: same bytes and Last-Modified, so replicas polling us see 304.
    let m = Mirrors::open(
        &data,
        MirrorConfig::default(),
        vec![task("a", &a), task("b", &b)],
    )
    .unwrap();
    assert_eq!(m.manifest(), (gz, lm));
    assert_eq!(m.pin("b").unwrap(), b.head());
    drop(m);
    // b removed from the config: it leaves the manifest.
    let m = Mirrors::open(&data, MirrorConfig::default(), vec![task("a", &a)]).unwrap();
    let (gz, lm2) = m.manifest();
    assert!(lm2 > lm);
    let man = manifest_json(&gz);
    assert!(
        man.get("/fedoraqa/a.git").is_some() && man.get("/fedoraqa/b.git").is_none(),
        "{man}"
    );
}
