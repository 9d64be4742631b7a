//! Every remote directive (koji's three actions, bodhi, distgit, yumrepoinfo) through the real
//! `runtask` binary against the loopback stand-ins, and the failure paths: unknown build, hub
//! down, hub hanging, truncated download, `ignore_missing`, bad parameters.

mod remote_support;
mod util;

use std::path::Path;
use std::time::Duration;

use remote_support::rpms::Spec;
use remote_support::server::{Data, Knobs, Server};
use remote_support::{add_build, custom_task, record, run_env, runtask};

const YUMREPOINFO: &str = "\
[DEFAULT]
baseurl = http://mirror.example/pub/fedora/linux
baseurl_altarch = http://mirror.example/pub/fedora-secondary
goldurl = %(baseurl)s/releases/%(path)s/Everything/%(arch)s/os
updatesurl = %(baseurl)s/updates/%(path)s/%(arch)s
primary_arches = armhfp, x86_64
alternate_arches = aarch64, i386, ppc64le
parent =
tag =
release_status =

[f27]
url = %(goldurl)s
path = 27
tag = f27
release_status = stable

[f27-updates]
url = %(updatesurl)s
path = 27
parent = f27
tag = f27-updates

[f27-updates-testing]
url = %(updatesurl)s
path = testing/27
parent = f27-updates
tag = f27-updates-testing
";

/// Two builds of `tool` (1.0 stable in f27-updates, 1.1 in updates-testing) and `lib` (noarch),
/// real RPMs; Bodhi update FEDORA-2017-a1b2c3 = tool 1.1 + lib 3.
fn world(dir: &Path) -> Data {
    let mut data = Data::default();
    data.hub.checksums = true;
    data.hub.empty_tags = vec!["f27".into()];
    for (ver, tag) in [("1.0", "f27-updates"), ("1.1", "f27-updates-testing")] {
        let spec = Spec::new("tool", ver, "1.fc27")
            .sub("tool", &[], 0)
            .sub("tool-devel", &[], 0)
            .noarch_sub("tool-doc");
        let files = spec.build(&dir.join(format!("rpmbuild-tool-{ver}")), &[None]);
        add_build(&mut data, "tool", ver, "1.fc27", &[tag], &files);
    }
    let mut lib = Spec::new("lib", "3", "1.fc27").sub("lib", &[], 0);
    lib.noarch = true;
    let files = lib.build(&dir.join("rpmbuild-lib"), &[None]);
    add_build(
        &mut data,
        "lib",
        "3",
        "1.fc27",
        &["f27-updates-testing"],
        &files,
    );
    data.updates.insert(
        "FEDORA-2017-a1b2c3".into(),
        vec!["tool-1.1-1.fc27".into(), "lib-3-1.fc27".into()],
    );
    data.distgit
        .insert("rpms/tool/f27/tool.spec".into(), "Name: tool\n".into());
    data
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| {
            let p = p.as_str().unwrap();
            assert!(p.starts_with('/'), "not absolute: {p}");
            p.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    out.sort();
    out
}

const ALL_DIRECTIVES: &str = r#"
name: remote-all
desc: every remote directive
maintainer: tester
input:
  args: [koji_build]
actions:
  - name: download the build
    koji:
      action: download
      koji_build: ${koji_build}
      arch: x86_64
      target_dir: ${workdir}/build
    export: build
  - name: download the latest stable build
    koji:
      action: download_latest_stable
      koji_build: ${koji_build}
      arch: [x86_64]
      arch_exclude: [noarch]
      target_dir: ${workdir}/stable
    export: stable
  - name: download the tag
    koji:
      action: download_tag
      koji_tag: f27-updates-testing
      arch: noarch
      target_dir: ${workdir}/tag
    export: tag
  - name: download the update
    bodhi:
      action: download
      update_id: FEDORA-2017-a1b2c3
      arch: [x86_64]
    export: update
  - name: spec files from dist-git
    distgit:
      nvr: ${koji_build}
      path: [tool.spec, sources]
      ignore_missing: True
      target_dir: ${workdir}/dg
    export: dg
  - name: repos
    yumrepoinfo:
      koji_tag: f27-updates-testing-pending
      arch: [x86_64, i386, noarch]
    export: repos
  - name: record
    python:
      file: record.py
      callable: run
      artifactsdir: ${artifactsdir}
      build: ${build}
      stable: ${stable}
      tag: ${tag}
      update: ${update}
      dg: ${dg}
      repos: ${repos}
"#;

#[test]
fn every_remote_directive_through_runtask() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(world(tmp.path()));
    let env = run_env(tmp.path(), &srv.base(), "");
    std::fs::write(env.dir.join("yumrepoinfo.conf"), YUMREPOINFO).unwrap();
    let formula = custom_task(tmp.path(), "all", ALL_DIRECTIVES);
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "tool-1.1-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let r = record(&run);
    assert_eq!(
        names(&r["build"]["downloaded_rpms"]),
        [
            "tool-1.1-1.fc27.x86_64.rpm",
            "tool-devel-1.1-1.fc27.x86_64.rpm",
            "tool-doc-1.1-1.fc27.noarch.rpm"
        ]
    );
    assert_eq!(r["build"]["downloaded_logs"], serde_json::json!([]));
    assert_eq!(
        names(&r["stable"]["downloaded_rpms"]),
        [
            "tool-1.0-1.fc27.x86_64.rpm",
            "tool-devel-1.0-1.fc27.x86_64.rpm"
        ]
    );
    assert_eq!(
        names(&r["tag"]["downloaded_rpms"]),
        ["lib-3-1.fc27.noarch.rpm", "tool-doc-1.1-1.fc27.noarch.rpm"]
    );
    assert_eq!(
        names(&r["update"]["downloaded_rpms"]),
        [
            "lib-3-1.fc27.noarch.rpm",
            "tool-1.1-1.fc27.x86_64.rpm",
            "tool-devel-1.1-1.fc27.x86_64.rpm",
            "tool-doc-1.1-1.fc27.noarch.rpm"
        ]
    );
    // nvr → rpms/tool, branch f27; the missing `sources` file is ignored.
    assert_eq!(names(&r["dg"]["downloaded_files"]), ["tool.spec"]);
    let repos = &r["repos"];
    assert_eq!(
        repos["f27-updates-testing"]["x86_64"],
        "http://mirror.example/pub/fedora/linux/updates/testing/27/x86_64"
    );
    assert_eq!(
        repos["f27"]["i386"],
        "http://mirror.example/pub/fedora-secondary/releases/27/Everything/i386/os"
    );
    assert_eq!(repos.as_object().unwrap().len(), 3, "{repos}");
    assert!(repos["f27"].get("noarch").is_none());

    // The update's tool-1.1 files were downloaded before: the second time they come from the
    // cache (keyed by name and size), so the server saw each file once.
    let gets = srv.stats().gets;
    assert_eq!(
        gets["/packages/tool/1.1/1.fc27/x86_64/tool-1.1-1.fc27.x86_64.rpm"], 1,
        "{gets:?}"
    );
    assert_eq!(
        gets["/packages/tool/1.1/1.fc27/noarch/tool-doc-1.1-1.fc27.noarch.rpm"], 1,
        "{gets:?}"
    );
}

const DOWNLOAD: &str = r#"
name: remote-download
desc: one koji download
maintainer: tester
input:
  args: [koji_build]
actions:
  - name: download rpms from koji
    koji:
      action: download
      koji_build: ${koji_build}
      arch: ['all']
      src: True
    export: build
  - name: record
    python:
      file: record.py
      callable: run
      artifactsdir: ${artifactsdir}
      build: ${build}
"#;

#[test]
fn unknown_build_fails_naming_the_nvr() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(world(tmp.path()));
    let env = run_env(tmp.path(), &srv.base(), "");
    let formula = custom_task(tmp.path(), "dl", DOWNLOAD);
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "nosuch-2.0-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(
        run.stderr()
            .contains("No such build found in Koji: nosuch-2.0-1.fc27"),
        "{}",
        run.all()
    );
    assert!(!run.artifacts.join("record.json").exists());
}

#[test]
fn hub_down_fails_after_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let port = util::free_port();
    let env = run_env(tmp.path(), &format!("http://127.0.0.1:{port}"), "");
    let formula = custom_task(tmp.path(), "dl", DOWNLOAD);
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "tool-1.1-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 1, "{}", run.all());
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "http://127.0.0.1:{port}/kojihub (getBuild): giving up after 3 attempts"
        )),
        "{}",
        run.all()
    );
    // Each failed attempt was logged before giving up.
    assert_eq!(
        run.log().matches("transient failure, retrying").count(),
        2,
        "{}",
        run.log()
    );
}

#[test]
fn hung_hub_times_out_after_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(world(tmp.path()));
    srv.set_knobs(Knobs {
        hub_delay: Duration::from_secs(60),
        ..Knobs::default()
    });
    // remote_timeout: 2 (run_env), remote_retries: 2 → three attempts.
    let env = run_env(tmp.path(), &srv.base(), "");
    let formula = custom_task(tmp.path(), "dl", DOWNLOAD);
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "tool-1.1-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(
        run.stderr().contains("giving up after 3 attempts"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr().to_lowercase().contains("timed out"),
        "{}",
        run.all()
    );
    assert_eq!(
        srv.stats().calls,
        ["getBuild", "getBuild", "getBuild"]
            .map(String::from)
            .to_vec()
    );
}

#[test]
fn truncated_download_is_retried_and_503s_are_ridden_out() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(world(tmp.path()));
    srv.set_knobs(Knobs {
        hub_fail_first: 1,
        truncate: [("tool-1.1-1.fc27.src.rpm".to_string(), 1)].into(),
        ..Knobs::default()
    });
    let env = run_env(tmp.path(), &srv.base(), "");
    let formula = custom_task(tmp.path(), "dl", DOWNLOAD);
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "tool-1.1-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(
        names(&record(&run)["build"]["downloaded_rpms"]),
        [
            "tool-1.1-1.fc27.src.rpm",
            "tool-1.1-1.fc27.x86_64.rpm",
            "tool-devel-1.1-1.fc27.x86_64.rpm",
            "tool-doc-1.1-1.fc27.noarch.rpm"
        ]
    );
    let gets = srv.stats().gets;
    assert_eq!(
        gets["/packages/tool/1.1/1.fc27/src/tool-1.1-1.fc27.src.rpm"],
        2
    );
    assert!(run.log().contains("download truncated"), "{}", run.log());
}

#[test]
fn distgit_missing_file_fails_unless_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(world(tmp.path()));
    let env = run_env(tmp.path(), &srv.base(), "");
    let formula = custom_task(
        tmp.path(),
        "dg",
        "name: dg\ndesc: d\nmaintainer: m\nactions:\n  - name: fetch\n    distgit:\n      package: tool\n      gitref: f27\n      path: [tool.spec, tool.patch]\n      localpath: [a/tool.spec, b/tool.patch]\n",
    );
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "x-1-1",
        "koji_build",
        "noarch",
        None,
    );
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(
        run.stderr()
            .contains("/distgit/rpms/tool/raw/f27/f/tool.patch: HTTP 404"),
        "{}",
        run.all()
    );
}

#[test]
fn bad_parameters_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let env = run_env(tmp.path(), "http://127.0.0.1:9", "");
    for (body, want) in [
        ("koji:\n      action: download\n      koji_build: a-1-1", "parameter `arch`: missing (required)"),
        ("koji:\n      action: fetch\n      arch: x86_64", "parameter `action`: 'fetch' is not one of download, download_tag, download_latest_stable"),
        ("koji:\n      action: download_tag\n      arch: x86_64", "parameter `koji_tag`: missing (required)"),
        ("koji:\n      action: download\n      koji_build: a-1-1\n      arch: x86_64\n      arches: x86_64", "parameter `arches`: unknown parameter"),
        ("bodhi:\n      action: download\n      update_id: F-1\n      arch: []", "leaves nothing to download"),
        ("distgit:\n      package: p\n      path: [a, b]\n      localpath: [a]", "parameter `localpath`: has 1 entries but path has 2"),
        ("yumrepoinfo:\n      koji_tag: f27\n      arch: [noarch, src]", "parameter `arch`: no base arch"),
    ] {
        let formula = custom_task(
            tmp.path(),
            "bad",
            &format!("name: bad\ndesc: d\nmaintainer: m\nactions:\n  - name: bad action\n    {body}\n"),
        );
        let run = runtask(&util::bin("runtask"), &env, &formula, "x-1-1", "koji_build", "noarch", None);
        assert_eq!(run.code(), 1, "{body}\n{}", run.all());
        assert!(run.stderr().contains(want), "want {want:?}\n{}", run.all());
    }
}
