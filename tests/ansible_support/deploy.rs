//! The local test deployment: a temp tree with one directory per inventory host, the task
//! repository the master mirrors, a release tarball for the tarball install path, and the
//! extra-vars file that points ansible/tests/local-vars.yml at them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;

/// Everything the deployment test creates, under one temp dir.
pub struct TestDeployment {
    pub tmp: tempfile::TempDir,
    /// A frozen copy of the built binaries (the "local build dir" the roles install from).
    pub build_dir: tempfile::TempDir,
    pub http_port: u16,
    pub worker_port: u16,
    pub fedmsg_port: u16,
    pub vars_file: PathBuf,
}

/// The formula of the test task: a shell step, a python step through the libtaskotron shim
/// (proves runtask finds it on a deployed worker) and a resultsdb step (report off).
const FORMULA: &str = r#"---
name: smoke
namespace: dist
desc: deployment smoke test
maintainer: taskotron-rs tests
input:
  args: [koji_build, arch]
environment:
  rpm: []
actions:
  - name: say what is checked
    shell:
      - echo "checking ${koji_build} on ${arch}"
  - name: check with the libtaskotron shim
    python:
      file: check.py
      callable: run
      item: ${koji_build}
    export: smoke_output
  - name: report
    resultsdb:
      results: ${smoke_output}
"#;

const CHECK_PY: &str = r#"from libtaskotron import check


def run(item, **kwargs):
    detail = check.CheckDetail(item, check.ReportType.KOJI_BUILD, outcome='PASSED',
                               checkname='smoke')
    return check.export_YAML(detail)
"#;

impl TestDeployment {
    pub fn new() -> TestDeployment {
        let tmp = tempfile::Builder::new()
            .prefix("ansible-deploy")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path();
        let build_dir = snapshot_binaries(&BINARIES);
        let task_repo = root.join("task-smoke");
        make_task_repo(&task_repo);
        let tarball = root.join("taskotron-release.tar.gz");
        make_release_tarball(&tarball, build_dir.path(), &["taskotron-worker", "runtask"]);

        let (http_port, worker_port, fedmsg_port) =
            (util::free_port(), util::free_port(), util::free_port());
        // visudo checks the rendered sudo rules when sudo is installed (scripts/test-deps does).
        let visudo = ["/usr/sbin/visudo", "/usr/bin/visudo"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(|p| format!("{p} -cf %s"))
            .unwrap_or_default();
        let vars = serde_json::json!({
            "taskotron_test_root": root.join("hosts"),
            "taskotron_test_task_repo": task_repo,
            "taskotron_build_dir": build_dir.path(),
            "taskotron_release_tarball": tarball,
            "taskotron_master_http_port": http_port,
            "taskotron_master_worker_port": worker_port,
            "taskotron_trigger_endpoints": [format!("tcp://127.0.0.1:{fedmsg_port}")],
            "taskotron_worker_sudo_validate": visudo,
        });
        let vars_file = root.join("test-vars.json");
        std::fs::write(&vars_file, vars.to_string()).expect("write vars");
        TestDeployment {
            tmp,
            build_dir,
            http_port,
            worker_port,
            fedmsg_port,
            vars_file,
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The prefix of one inventory host (`master`, `slave1`, `slave2`).
    pub fn host(&self, short_name: &str) -> PathBuf {
        self.root().join("hosts").join(short_name)
    }

    pub fn master_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// ansible/tests/<name>
    pub fn test_file(name: &str) -> PathBuf {
        super::ansible::ansible_dir().join("tests").join(name)
    }

    /// Runs site.yml against the test inventory (plus the extra buildslave when `extra`).
    pub fn run_site(&self, extra: bool) -> super::ansible::PlaybookRun {
        self.run_site_with(extra, &[])
    }

    /// Like run_site, with more ansible-playbook arguments (`--check`, `-e k=v`).
    pub fn run_site_with(&self, extra: bool, args: &[&str]) -> super::ansible::PlaybookRun {
        let base = Self::test_file("inventory.local.yml");
        let more = Self::test_file("inventory.local-extra.yml");
        let vars = Self::test_file("local-vars.yml");
        let mut inventories = vec![base.as_path()];
        if extra {
            inventories.push(more.as_path());
        }
        super::ansible::run_site(self.root(), &inventories, &[&vars, &self.vars_file], args)
    }
}

const BINARIES: [&str; 4] = [
    "taskotron-master",
    "taskotron-worker",
    "runtask",
    "taskotron-trigger",
];

/// Hard links (or copies) of the built binaries in a private dir next to them: a `cargo build`
/// running meanwhile replaces target/<profile>/* and would make the rerun look non-idempotent.
fn snapshot_binaries(names: &[&str]) -> tempfile::TempDir {
    let bin_dir = util::bin("runtask")
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let target = bin_dir.parent().expect("target dir");
    let dir = tempfile::Builder::new()
        .prefix("ansible-test-bin")
        .tempdir_in(target)
        .expect("tempdir in target/");
    for name in names {
        let (from, to) = (util::bin(name), dir.path().join(name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).expect("copy binary");
        }
    }
    dir
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Taskotron Test",
            "-c",
            "user.email=test@example.org",
        ])
        .args(args)
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?} failed");
}

/// A git repository (branch master) holding the smoke task.
fn make_task_repo(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir task repo");
    git(dir, &["init", "-q", "-b", "master"]);
    std::fs::write(dir.join("runtask.yml"), FORMULA).expect("write formula");
    std::fs::write(dir.join("check.py"), CHECK_PY).expect("write check.py");
    git(dir, &["add", "runtask.yml", "check.py"]);
    git(dir, &["commit", "-q", "-m", "smoke task"]);
}

/// A release tarball with the binaries under `taskotron/bin/` (slave1's
/// taskotron_release_tarball_bindir).
fn make_release_tarball(path: &Path, build_dir: &Path, binaries: &[&str]) {
    let file = std::fs::File::create(path).expect("create tarball");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::none());
    let mut tar = tar::Builder::new(gz);
    for name in binaries {
        tar.append_path_with_name(build_dir.join(name), format!("taskotron/bin/{name}"))
            .expect("add binary to tarball");
    }
    tar.into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gzip");
}
