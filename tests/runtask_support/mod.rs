//! Helpers for the runtask end-to-end tests: a temp task dir with a config, running the real
//! `runtask` binary, building tiny noarch RPMs with rpmbuild, and a ResultsDB test server.
#![allow(dead_code)]

pub mod resultsdb;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;

/// A temp dir holding a task dir (`task/`), an artifacts root, a tmpdir and `taskotron.yaml`.
pub struct TaskDir {
    pub tmp: tempfile::TempDir,
}

/// What a runtask run left behind.
pub struct RunOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `<artifacts root>/<uuid>`
    pub artifacts: PathBuf,
}

impl RunOut {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.artifacts.join("taskotron/taskotron.log")).unwrap_or_default()
    }

    pub fn results_yml(&self) -> Option<String> {
        std::fs::read_to_string(self.artifacts.join("taskotron/results.yml")).ok()
    }

    /// The last line runtask printed on stderr (the error line on failure).
    pub fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

impl TaskDir {
    /// A task dir with a config: artifacts/tmpdir inside the temp dir, python from PATH.
    pub fn new() -> TaskDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("task")).unwrap();
        let t = TaskDir { tmp };
        t.config("");
        t
    }

    pub fn task(&self) -> PathBuf {
        self.tmp.path().join("task")
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn artifacts_root(&self) -> PathBuf {
        self.tmp.path().join("artifacts")
    }

    /// Writes `taskotron.yaml` with the test paths plus `extra` YAML lines.
    pub fn config(&self, extra: &str) {
        let base = format!(
            "artifactsdir: {}\ntmpdir: {}\n",
            self.artifacts_root().display(),
            self.tmp.path().join("tmp").display()
        );
        std::fs::write(self.config_path(), format!("{base}{extra}")).unwrap();
    }

    pub fn config_path(&self) -> PathBuf {
        self.tmp.path().join("taskotron.yaml")
    }

    /// Writes a file into the task dir.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.task().join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Runs `runtask --config <cfg> --uuid <uuid> ARGS... <task>/runtask.yml` in the task dir.
    pub fn run(&self, uuid: &str, args: &[&str]) -> RunOut {
        self.run_formula("runtask.yml", uuid, args)
    }

    pub fn run_formula(&self, formula: &str, uuid: &str, args: &[&str]) -> RunOut {
        let out = Command::new(util::bin("runtask"))
            .arg("--config")
            .arg(self.config_path())
            .args(["--uuid", uuid])
            .args(args)
            .arg(formula)
            .current_dir(self.task())
            .env_remove("TASKOTRON_CONFIG")
            .env_remove("TASKOTRON_PYTHONPATH")
            .output()
            .expect("run runtask");
        RunOut {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            artifacts: self.artifacts_root().join(uuid),
        }
    }
}

/// Builds a tiny noarch RPM `name-version-1.noarch.rpm` owning `/usr/share/<name>/marker`
/// into `<repo>/noarch/`.
pub fn build_rpm(work: &Path, repo: &Path, name: &str, version: &str) {
    let spec = work.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: runtask test package\n\
             License: MIT\nBuildArch: noarch\n%description\nrpm built by a runtask test\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
             echo {name} > %{{buildroot}}/usr/share/{name}/marker\n\
             %files\n/usr/share/{name}/marker\n"
        ),
    )
    .unwrap();
    let out = Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", work.join("rpmbuild").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", repo.display()))
        .arg("--define")
        .arg("__os_install_post %{nil}")
        .arg(&spec)
        .output()
        .expect("rpmbuild (apt-get install rpm)");
    assert!(
        out.status.success(),
        "rpmbuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `createrepo_c <repo>`.
pub fn createrepo(repo: &Path) {
    let out = Command::new("createrepo_c")
        .arg(repo)
        .output()
        .expect("createrepo_c (apt-get install createrepo-c)");
    assert!(out.status.success(), "createrepo_c failed: {out:?}");
}

/// A python with PyYAML (the libtaskotron shim's export_YAML uses it when present).
pub fn python() -> String {
    let venv = util::venv().join("bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}
