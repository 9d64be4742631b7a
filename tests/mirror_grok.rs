//! Interoperability with the real GrokMirror 2.0.12 tools from the test venv:
//! - `grok-pull` replicates our mirror from our `/mirror/manifest.js.gz` over loopback HTTP
//!   (first clone; after a push only the changed repo is fetched; an unchanged poll gets 304);
//! - our follow mode mirrors the repos listed in a manifest written by `grok-manifest`.

mod mirror_support;
mod util;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mirror_support::{git, serve, show_ref_fingerprint, task, Origin};
use taskotron_master::mirror::{MirrorConfig, Mirrors};

/// Runs a grokmirror tool to completion (bounded), panicking with its output on failure.
fn run_tool(name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(util::venv_bin(name));
    cmd.args(args)
        .env("GITBIN", "/usr/bin/git")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = util::ChildGuard::spawn(name, &mut cmd);
    let out = wait_output(child, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    format!("{}{}", out.stdout, out.stderr)
}

struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

fn wait_output(mut g: util::ChildGuard, timeout: Duration) -> Output {
    let mut so = g.child.stdout.take().unwrap();
    let mut se = g.child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = g.wait_exit(timeout);
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

fn read_lines(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn real_grok_pull_replicates_from_our_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "tasks/a.git", "main");
    let b = Origin::new(&top, "tasks/b.git", "develop");
    let data = tmp.path().join("data");
    let srv = serve(
        &data,
        MirrorConfig {
            owner: Some("QA Team".into()),
            ..Default::default()
        },
        vec![task("a", &a), task("b", &b)],
    );
    let m = srv.mirrors.clone();
    srv.rt.block_on(m.refresh_all());

    let replica = tmp.path().join("replica");
    std::fs::create_dir_all(&replica).unwrap();
    let hook_log = tmp.path().join("hook.log");
    let hook = tmp.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", hook_log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = tmp.path().join("replica.conf");
    std::fs::write(
        &conf,
        format!(
            "[core]\ntoplevel = {top}\nmanifest = ${{toplevel}}/manifest.js.gz\nlog = {log}\nloglevel = info\n\
             objstore = {tmp}/objstore\n\n[remote]\nsite = {base}/mirror\nmanifest = {base}/mirror/manifest.js.gz\n\n\
             [pull]\npost_update_hook = {hook}\npurge = no\npull_threads = 1\nretries = 1\ndefault_owner = Nobody\n",
            top = replica.display(),
            log = tmp.path().join("grok.log").display(),
            tmp = tmp.path().display(),
            base = srv.base(),
            hook = hook.display(),
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let rep_a = replica.join("fedoraqa/a.git");
    let rep_b = replica.join("fedoraqa/b.git");

    // 1. First run clones everything.
    run_tool("grok-pull", &["-v", "-c", conf]);
    assert_eq!(
        git(&rep_a, &["rev-parse", "refs/heads/main"]).trim(),
        a.head()
    );
    assert_eq!(
        git(&rep_b, &["rev-parse", "refs/heads/develop"]).trim(),
        b.head()
    );
    assert_eq!(
        git(&rep_b, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/develop"
    );
    assert_eq!(git(&rep_a, &["config", "gitweb.owner"]).trim(), "QA Team");
    assert_eq!(
        show_ref_fingerprint(&rep_a),
        show_ref_fingerprint(&data.join("mirror/fedoraqa/a.git"))
    );
    assert_eq!(
        read_lines(&hook_log),
        vec![rep_a.display().to_string(), rep_b.display().to_string()]
    );

    // 2. A push to a, picked up by our mirror: the next run fetches only a.
    let a2 = a.commit("new.txt", "2\n", "second");
    let o = srv.rt.block_on(m.refresh("a"));
    assert!(o.changed, "{o:?}");
    std::fs::remove_file(&hook_log).unwrap();
    let before = srv.hits.lock().unwrap().len();
    run_tool("grok-pull", &["-v", "-c", conf]);
    assert_eq!(git(&rep_a, &["rev-parse", "refs/heads/main"]).trim(), a2);
    assert_eq!(read_lines(&hook_log), vec![rep_a.display().to_string()]);
    let later: Vec<_> = srv.hits.lock().unwrap()[before..].to_vec();
    assert!(
        later
            .iter()
            .any(|h| h.1 == "/mirror/manifest.js.gz" && h.2 == 200),
        "{later:?}"
    );
    assert!(
        later
            .iter()
            .any(|h| h.1.starts_with("/mirror/fedoraqa/a.git/")),
        "{later:?}"
    );
    assert!(
        !later
            .iter()
            .any(|h| h.1.starts_with("/mirror/fedoraqa/b.git/")),
        "b was fetched: {later:?}"
    );

    // 3. Nothing changed: the manifest poll gets 304 and nothing is fetched.
    std::fs::remove_file(&hook_log).unwrap();
    let before = srv.hits.lock().unwrap().len();
    let out = run_tool("grok-pull", &["-v", "-c", conf]);
    let later: Vec<_> = srv.hits.lock().unwrap()[before..].to_vec();
    assert_eq!(
        later
            .iter()
            .map(|h| (h.1.as_str(), h.2))
            .collect::<Vec<_>>(),
        vec![("/mirror/manifest.js.gz", 304)]
    );
    assert!(
        out.contains("unchanged")
            || std::fs::read_to_string(tmp.path().join("grok.log"))
                .unwrap()
                .contains("unchanged")
    );
    assert!(!hook_log.exists());
}

#[test]
fn follow_mode_mirrors_a_grok_manifest_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let x = Origin::new(&top, "tasks/x.git", "main");
    let y = Origin::new(&top, "tasks/y.git", "develop");
    let z = Origin::new(&top, "other/z.git", "main");
    std::fs::write(x.bare.join("description"), "Task x\n").unwrap();
    git(&x.bare, &["config", "gitweb.owner", "Upstream Owner"]);
    git(&x.work, &["tag", "-a", "v1", "-m", "v1"]);
    git(&x.work, &["push", "-q", "origin", "v1"]);
    std::fs::remove_dir_all(top.join(".work")).ok();
    // The work trees are gone; commit from fresh clones later.
    let manifest = top.join("manifest.js.gz");
    let (m_arg, t_arg) = (manifest.to_str().unwrap(), top.to_str().unwrap());
    run_tool("grok-manifest", &["-m", m_arg, "-t", t_arg]);

    let cfg = MirrorConfig {
        upstream_manifest: Some(format!("file://{m_arg}")),
        include: vec!["/tasks/*".into()],
        exclude: vec!["/tasks/excluded*".into()],
        ..Default::default()
    };
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let m = Mirrors::open(&data, cfg.clone(), vec![]).unwrap();
    let out = rt.block_on(m.refresh_all());
    let mut names: Vec<_> = out
        .iter()
        .map(|o| (o.name.clone(), o.changed, o.error.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("tasks/x".into(), true, None),
            ("tasks/y".into(), true, None)
        ],
        "{out:?}"
    );

    // Our published entries match the upstream's for fingerprint, head, owner, description.
    let upstream = read_manifest(&manifest);
    let ours = read_manifest(&data.join("mirror/manifest.js.gz"));
    for p in ["/tasks/x.git", "/tasks/y.git"] {
        for k in ["fingerprint", "head"] {
            assert_eq!(ours[p][k], upstream[p][k], "{p} {k}");
        }
    }
    assert_eq!(ours["/tasks/x.git"]["owner"], "Upstream Owner");
    assert_eq!(ours["/tasks/x.git"]["description"], "Task x");
    assert!(ours.get("/other/z.git").is_none());
    assert_eq!(
        m.pin("tasks/y").unwrap().as_str(),
        git(&y.bare, &["rev-parse", "refs/heads/develop"]).trim()
    );
    let _ = z;

    // Push to x, update the upstream manifest hook-style: only x is fetched.
    let work = tmp.path().join("xwork");
    git(
        tmp.path(),
        &["clone", "-q", x.url().as_str(), work.to_str().unwrap()],
    );
    std::fs::write(work.join("f"), "new").unwrap();
    git(&work, &["add", "f"]);
    git(&work, &["commit", "-q", "-m", "x2"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let x2 = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    // grok-pull compares mtimes at 1 s resolution; make sure the rewrite is visibly newer.
    let old_mtime = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    run_tool(
        "grok-manifest",
        &["-m", m_arg, "-t", t_arg, "-n", x.bare.to_str().unwrap()],
    );
    let f = std::fs::File::options()
        .append(true)
        .open(&manifest)
        .unwrap();
    f.set_modified(old_mtime + Duration::from_secs(2)).unwrap();
    let out = rt.block_on(m.refresh_all());
    let changed: Vec<_> = out
        .iter()
        .filter(|o| o.changed)
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(changed, vec!["tasks/x".to_string()], "{out:?}");
    assert!(out.iter().all(|o| o.error.is_none()), "{out:?}");
    assert_eq!(m.pin("tasks/x").unwrap(), x2);
    assert_eq!(
        read_manifest(&data.join("mirror/manifest.js.gz"))["/tasks/x.git"]["fingerprint"],
        read_manifest(&manifest)["/tasks/x.git"]["fingerprint"]
    );

    // A restart remembers the followed repos before the upstream is read again.
    drop(m);
    let m = Mirrors::open(&data, cfg, vec![]).unwrap();
    assert_eq!(m.pin("tasks/x").unwrap(), x2);
}

fn read_manifest(p: &Path) -> serde_json::Value {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

/// Follow mode over HTTP, with another of our masters as the upstream: our manifest (with
/// Last-Modified/304) and our smart HTTP serve a libgit2 client.
#[test]
fn follow_mode_over_http_from_another_master() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "a.git", "main");
    let b = Origin::new(&top, "b.git", "main");
    let up = serve(
        &tmp.path().join("upstream"),
        MirrorConfig::default(),
        vec![task("a", &a), task("b", &b)],
    );
    up.rt.block_on(up.mirrors.refresh_all());

    let cfg = MirrorConfig {
        upstream_manifest: Some(format!("{}/mirror/manifest.js.gz", up.base())),
        ..Default::default()
    };
    let down = serve(&tmp.path().join("downstream"), cfg, vec![]);
    let out = down.rt.block_on(down.mirrors.refresh_all());
    assert_eq!(
        out.iter()
            .filter(|o| o.changed && o.error.is_none())
            .count(),
        2,
        "{out:?}"
    );
    // Same namespace: the short task name resolves to the followed repo.
    assert_eq!(down.mirrors.pin("a").unwrap(), a.head());
    assert_eq!(down.mirrors.pin("fedoraqa/b").unwrap(), b.head());
    let fp = |s: &mirror_support::Served| read_manifest(&s.mirrors.root().join("manifest.js.gz"));
    assert_eq!(
        fp(&down)["/fedoraqa/a.git"]["fingerprint"],
        fp(&up)["/fedoraqa/a.git"]["fingerprint"]
    );

    // Unchanged upstream: 304, no git traffic.
    let before = up.hits.lock().unwrap().len();
    let out = down.rt.block_on(down.mirrors.refresh_all());
    assert!(
        out.iter().all(|o| !o.changed && o.error.is_none()),
        "{out:?}"
    );
    let later: Vec<_> = up.hits.lock().unwrap()[before..].to_vec();
    assert_eq!(
        later
            .iter()
            .map(|h| (h.1.as_str(), h.2))
            .collect::<Vec<_>>(),
        vec![("/mirror/manifest.js.gz", 304)]
    );

    // A push reaches the downstream through the upstream's manifest; only a is fetched.
    let a2 = a.commit("n", "2", "two");
    up.rt.block_on(up.mirrors.refresh("a"));
    let before = up.hits.lock().unwrap().len();
    let out = down.rt.block_on(down.mirrors.refresh_all());
    let changed: Vec<_> = out
        .iter()
        .filter(|o| o.changed)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(changed, vec!["fedoraqa/a"], "{out:?}");
    assert_eq!(down.mirrors.pin("a").unwrap(), a2);
    let later: Vec<_> = up.hits.lock().unwrap()[before..].to_vec();
    assert!(
        !later
            .iter()
            .any(|h| h.1.starts_with("/mirror/fedoraqa/b.git")),
        "{later:?}"
    );

    // The upstream goes away: errors are reported, the downstream keeps serving what it has.
    drop(up);
    let out = down.rt.block_on(down.mirrors.refresh("a"));
    assert!(out.error.is_some(), "{out:?}");
    assert_eq!(down.mirrors.pin("a").unwrap(), a2);
    let (status, _) = {
        let r =
            reqwest::blocking::get(format!("{}/tasks/a/archive/{a2}.tar.gz", down.base())).unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 200);
}
