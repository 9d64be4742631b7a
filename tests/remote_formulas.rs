//! The real Taskotron formulas that use remote directives (tests/fixtures/taskotron:
//! python-versions*, check_modulemd*, csmock) run unchanged under the real `runtask` binary
//! against the loopback Koji / dist-git stand-ins, with real RPMs built by rpmbuild and task
//! code written for the tests (tests/remote_support/tasks/).

mod remote_support;
mod util;

use std::path::Path;

use remote_support::rpms::{env_root, Spec};
use remote_support::server::{Data, Server};
use remote_support::{add_build, add_build_log, run_env, runtask, runtask_env, task_dir};

const PY_ENV: &[&str] = &[
    "rpm-python",
    "python2-dnf",
    "python2-libarchive-c",
    "python-bugzilla",
];

/// `pyconflict-1.0-1.fc27` (x86_64 + armv7hl + a noarch doc package + SRPM; its -tools package
/// requires Python 2 and 3) and `pyclean-2.0-1.fc27` (noarch, Python 3 only).
fn python_builds(dir: &Path, data: &mut Data) {
    let conflict = Spec::new("pyconflict", "1.0", "1.fc27")
        .sub("pyconflict", &["python(abi) = 3.6"], 0)
        .sub("python2-pyconflict", &["python(abi) = 2.7"], 0)
        .sub(
            "pyconflict-tools",
            &["/usr/bin/python2", "python(abi) = 3.6"],
            0,
        )
        .noarch_sub("pyconflict-doc");
    let files = conflict.build(&dir.join("rpmbuild-conflict"), &[None, Some("armv7hl")]);
    assert_eq!(files.len(), 8, "{files:?}");
    add_build(
        data,
        "pyconflict",
        "1.0",
        "1.fc27",
        &["f27-updates-testing"],
        &files,
    );
    add_build_log(data, "pyconflict", "1.0", "1.fc27", "x86_64");
    add_build_log(data, "pyconflict", "1.0", "1.fc27", "armv7hl");

    let mut clean =
        Spec::new("pyclean", "2.0", "1.fc27").sub("python3-pyclean", &["python(abi) = 3.6"], 0);
    clean.noarch = true;
    let files = clean.build(&dir.join("rpmbuild-clean"), &[None]);
    add_build(
        data,
        "pyclean",
        "2.0",
        "1.fc27",
        &["f27-updates-testing"],
        &files,
    );
}

#[test]
fn python_versions_formulas_check_downloaded_rpms() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Data::default();
    data.hub.checksums = true;
    python_builds(tmp.path(), &mut data);
    let srv = Server::start(data);
    let env = run_env(tmp.path(), &srv.base(), "");
    env_root(&tmp.path().join("envroot"), tmp.path(), PY_ENV);

    // 2018 formula: arch ['all'], src: True, build_log: True.
    let formula = task_dir(
        tmp.path(),
        "pv",
        "python-versions.runtask.yml",
        "runtask.yml",
        "python-versions",
    );
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "pyconflict-1.0-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let results: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.results_yml()).unwrap();
    let r = &results["results"][0];
    assert_eq!(r["item"], "pyconflict-1.0-1.fc27", "{}", run.results_yml());
    assert_eq!(r["type"], "koji_build");
    assert_eq!(r["checkname"], "python-versions.two_three");
    assert_eq!(r["outcome"], "FAILED");
    assert_eq!(r["note"], "2 of 7 RPMs require Python 2 and 3");
    // all = x86_64 + armhfp (armv7hl) + noarch; src: True adds the SRPM; logs for both arches.
    assert_eq!(r["rpms"], 8);
    assert_eq!(r["srpms"], 1);
    assert_eq!(r["build_logs"], 2);
    let log = std::fs::read_to_string(run.artifacts.join("python-versions.two_three.log")).unwrap();
    assert!(
        log.contains(
            "BAD pyconflict-tools-1.0-1.fc27.x86_64.rpm: /usr/bin/python2, python(abi) = 3.6"
        ),
        "{log}"
    );
    assert!(
        log.contains("BAD pyconflict-tools-1.0-1.fc27.armv7hl.rpm"),
        "{log}"
    );
    assert!(
        log.contains("checked pyconflict-doc-1.0-1.fc27.noarch.rpm"),
        "{log}"
    );
    let gets = srv.stats().gets;
    assert_eq!(
        gets.get("/packages/pyconflict/1.0/1.fc27/src/pyconflict-1.0-1.fc27.src.rpm"),
        Some(&1)
    );
    assert_eq!(
        gets.get("/packages/pyconflict/1.0/1.fc27/data/logs/x86_64/build.log"),
        Some(&1)
    );
    // noarch has no build.log on the server: reported in log_errors, not fatal.
    assert_eq!(
        gets.get("/packages/pyconflict/1.0/1.fc27/data/logs/noarch/build.log"),
        Some(&1)
    );

    // 2016 formula: src: False, no build logs; a clean noarch build (pyclean +
    // python3-pyclean) passes.
    let formula = task_dir(
        tmp.path(),
        "pv2016",
        "python-versions-2016.runtask.yml",
        "runtask.yml",
        "python-versions",
    );
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "pyclean-2.0-1.fc27",
        "koji_build",
        "x86_64",
        None,
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let results: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.results_yml()).unwrap();
    let r = &results["results"][0];
    assert_eq!(r["outcome"], "PASSED", "{}", run.results_yml());
    assert_eq!(
        (
            r["rpms"].as_u64(),
            r["srpms"].as_u64(),
            r["build_logs"].as_u64()
        ),
        (Some(2), Some(0), Some(0))
    );
}

// modulemd documents in JSON form (valid YAML, and readable without PyYAML).
const MODULE_OK: &str = r#"{"document": "modulemd", "version": 1, "data": {"summary": "A test module",
  "description": "A module for testing the distgit directive.", "license": {"module": ["MIT"]}}}"#;
const MODULE_BAD: &str = r#"{"document": "modulemd", "version": 1, "data": {"summary": "No license", "description": "Broken."}}"#;

#[test]
fn check_modulemd_formulas_fetch_from_distgit() {
    let tmp = tempfile::tempdir().unwrap();
    let good_ref = "5c63315a4b4d2c4e2c8e0f1b2a3c4d5e6f708192";
    let bad_ref = "0123456789abcdef0123456789abcdef01234567";
    let mut data = Data::default();
    data.distgit.insert(
        format!("modules/testmodule/{good_ref}/testmodule.yaml"),
        MODULE_OK.into(),
    );
    data.distgit.insert(
        format!("modules/testmodule/{bad_ref}/testmodule.yaml"),
        MODULE_BAD.into(),
    );
    let srv = Server::start(data);
    // The formulas hard-code Fedora's dist-git URLs; url_rewrites sends them to the stand-in.
    let extra = format!(
        "url_rewrites:\n  http://pkgs.stg.fedoraproject.org: {d}\n  https://src.fedoraproject.org: {d}\n",
        d = srv.distgit_url()
    );
    let env = run_env(tmp.path(), &srv.base(), &extra);
    env_root(
        &tmp.path().join("envroot"),
        tmp.path(),
        &[
            "python2-aexpect",
            "python2-avocado",
            "python2-modulemd",
            "python2-pdc-client",
            "python2-requests",
            "python2-enchant",
            "hunspell-en-US",
        ],
    );

    // 2016 formula (namespace modules, staging dist-git, avocado without ignorereturn).
    let formula = task_dir(
        tmp.path(),
        "cm2016",
        "check_modulemd-2016.runtask.yml",
        "runtask.yml",
        "check_modulemd",
    );
    let bin = formula.parent().unwrap().join("bin");
    let item = format!("modules/testmodule#{good_ref}");
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        &item,
        "dist_git_commit",
        "noarch",
        Some(&bin),
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let results: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.results_yml()).unwrap();
    let r = &results["results"][0];
    assert_eq!(r["item"], item.as_str(), "{}", run.results_yml());
    assert_eq!(r["type"], "dist_git_commit");
    assert_eq!(r["checkname"], "modulemd");
    assert_eq!(r["outcome"], "PASSED");
    assert_eq!(r["note"], "0 of 5 tests failed");
    assert!(run.artifacts.join("avocado-results.json").is_file());
    let gets = srv.stats().gets;
    assert_eq!(
        gets.get(&format!(
            "/distgit/modules/testmodule/raw/{good_ref}/f/testmodule.yaml"
        )),
        Some(&1),
        "{gets:?}"
    );

    // 2017 formula (dnf/copr shell steps, avocado under ignorereturn): a module without a
    // license fails the check but not the run.
    let formula = task_dir(
        tmp.path(),
        "cm2017",
        "check_modulemd.runtask.yml",
        "runtask.yml",
        "check_modulemd",
    );
    let bin = formula.parent().unwrap().join("bin");
    let item = format!("modules/testmodule#{bad_ref}");
    let dnf_log = tmp.path().join("dnf.log");
    let run = runtask_env(
        &util::bin("runtask"),
        &env,
        &formula,
        (&item, "dist_git_commit", "noarch"),
        Some(&bin),
        &[("RT_DNF_LOG", dnf_log.as_path())],
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let results: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.results_yml()).unwrap();
    let r = &results["results"][0];
    assert_eq!(r["outcome"], "FAILED", "{}", run.results_yml());
    assert_eq!(r["note"], "1 of 5 tests failed");
    let dnf = std::fs::read_to_string(&dnf_log).unwrap();
    assert!(
        dnf.contains("dnf copr -y enable phracek/Modularity-testing-framework"),
        "{dnf}"
    );

    // A module that is not in dist-git: the distgit action fails with the URL and the 404.
    let item = "modules/nosuchmodule#ffffffffffffffffffffffffffffffffffffffff";
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        item,
        "dist_git_commit",
        "noarch",
        Some(&bin),
    );
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(
        run.stderr().contains("/distgit/modules/nosuchmodule/raw/ffffffffffffffffffffffffffffffffffffffff/f/nosuchmodule.yaml: HTTP 404"),
        "{}",
        run.all()
    );
}

#[test]
fn csmock_formula_downloads_only_the_srpm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Data::default();
    data.hub.checksums = true;
    let mut spec = Spec::new("csdemo", "1.0", "1.fc27").sub("csdemo", &[], 0);
    spec.install_extra
        .push("chmod 777 %{buildroot}/usr/share/rt-csdemo".into());
    let files = spec.build(&tmp.path().join("rpmbuild"), &[None]);
    add_build(&mut data, "csdemo", "1.0", "1.fc27", &["f27"], &files);
    let srv = Server::start(data);
    let env = run_env(tmp.path(), &srv.base(), "");
    env_root(
        &tmp.path().join("envroot"),
        tmp.path(),
        &["csmock", "tar", "xz"],
    );

    let formula = task_dir(
        tmp.path(),
        "csmock",
        "csmock.task.yml",
        "task.yml",
        "csmock",
    );
    let bin = formula.parent().unwrap().join("bin");
    let run = runtask(
        &util::bin("runtask"),
        &env,
        &formula,
        "csdemo-1.0-1.fc27",
        "koji_build",
        "x86_64",
        Some(&bin),
    );
    assert_eq!(run.code(), 0, "{}", run.all());
    let gets = srv.stats().gets;
    assert_eq!(
        gets.keys().collect::<Vec<_>>(),
        ["/packages/csdemo/1.0/1.fc27/src/csdemo-1.0-1.fc27.src.rpm"]
    );
    // The python action got the koji result dict (type preserved) and found one defect.
    let log = run.log();
    assert!(log.contains("csdemo-1.0-1.fc27.src.rpm"), "{log}");
    assert!(log.contains("1 defects"), "{log}");
}
