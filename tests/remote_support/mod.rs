//! Loopback stand-ins for the services the remote directives talk to (Koji hub and package
//! server, Bodhi, dist-git), real RPMs built with rpmbuild, and a helper that runs the real
//! `runtask` binary against them. Use from a test file with `mod remote_support;`.
#![allow(dead_code)]

pub mod koji_hub;
pub mod rpms;
pub mod server;
pub mod xmlrpc;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::body::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

use koji_hub::{BuildRec, RpmRec};
use server::Data;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers a Koji build made of the given RPM files (file names must be
/// `<name>-<version>-<release>.<arch>.rpm`) and serves them under the package layout. Returns
/// the build id.
pub fn add_build(
    data: &mut Data,
    name: &str,
    version: &str,
    release: &str,
    tags: &[&str],
    files: &[PathBuf],
) -> i64 {
    let id = 1000 + data.hub.builds.len() as i64;
    data.hub.builds.push(BuildRec {
        id,
        name: name.into(),
        version: version.into(),
        release: release.into(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    });
    for f in files {
        let file_name = f.file_name().unwrap().to_string_lossy().to_string();
        let stem = file_name.strip_suffix(".rpm").expect("an .rpm file");
        let (nvr, arch) = stem.rsplit_once('.').expect("arch in file name");
        let rpm_name = nvr
            .strip_suffix(&format!("-{version}-{release}"))
            .unwrap_or_else(|| panic!("{file_name} is not of build {name}-{version}-{release}"));
        let content = std::fs::read(f).unwrap();
        let rpm = RpmRec {
            id: 50_000 + data.hub.rpms.len() as i64,
            build_id: id,
            name: rpm_name.into(),
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
            size: content.len() as u64,
            sha256: hex(&Sha256::digest(&content)),
            md5: hex(&Md5::digest(&content)),
        };
        data.files.insert(
            format!("{name}/{version}/{release}/{arch}/{file_name}"),
            Bytes::from(content),
        );
        data.hub.rpms.push(rpm);
    }
    id
}

/// Serves a `build.log` for `arch` of a build.
pub fn add_build_log(data: &mut Data, name: &str, version: &str, release: &str, arch: &str) {
    data.files.insert(
        format!("{name}/{version}/{release}/data/logs/{arch}/build.log"),
        Bytes::from(format!(
            "Mock Version: 1.4\nbuilding {name} for {arch}\nChild return code was: 0\n"
        )),
    );
}

/// Settings for one runtask run against a stand-in server.
pub struct RunEnv {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub artifacts: PathBuf,
    pub tmpdir: PathBuf,
    pub cache: PathBuf,
}

/// Writes a runtask config pointing every service at `base` (the stand-in server's URL, or
/// any URL for "service down" tests), with an rpm database at `<dir>/envroot` for
/// `environment.rpm` checks. `extra` is appended verbatim (YAML).
pub fn run_env(dir: &Path, base: &str, extra: &str) -> RunEnv {
    let artifacts = dir.join("artifacts");
    let tmpdir = dir.join("tmp");
    let cache = dir.join("cache");
    for d in [&artifacts, &tmpdir, &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    let envroot = dir.join("envroot");
    let config = dir.join("taskotron.yaml");
    let yaml = format!(
        "artifactsdir: {artifacts}\n\
         tmpdir: {tmpdir}\n\
         report_to_resultsdb: false\n\
         koji_url: {base}/kojihub\n\
         pkg_url: {base}/packages\n\
         bodhi_server: {base}/bodhi/\n\
         distgit_baseurl: {base}/distgit\n\
         supported_arches: [x86_64, armhfp]\n\
         yumrepoinfo: {dir}/yumrepoinfo.conf\n\
         download_cache_dir: {cache}\n\
         remote_timeout: 2\n\
         remote_retries: 2\n\
         provision:\n  rpm_query: [rpm, --root, {envroot}, -q, --whatprovides]\n  \
         dnf_install: [\"false\"]\n  allow_install: false\n{extra}",
        artifacts = artifacts.display(),
        tmpdir = tmpdir.display(),
        cache = cache.display(),
        dir = dir.display(),
        envroot = envroot.display(),
    );
    std::fs::write(&config, yaml).unwrap();
    RunEnv {
        dir: dir.to_path_buf(),
        config,
        artifacts,
        tmpdir,
        cache,
    }
}

/// One finished runtask run.
pub struct Run {
    pub out: Output,
    pub uuid: String,
    pub artifacts: PathBuf,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    /// Everything runtask said, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }
    /// `taskotron/results.yml` of the run ("" if absent).
    pub fn results_yml(&self) -> String {
        std::fs::read_to_string(self.artifacts.join("taskotron/results.yml")).unwrap_or_default()
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.artifacts.join("taskotron/taskotron.log")).unwrap_or_default()
    }
}

/// Runs `runtask -i item -t type -a arch --uuid <fresh> --config … formula`; `path_prefix` is
/// put in front of PATH (for task tools such as a test `avocado`).
pub fn runtask(
    runtask_bin: &Path,
    env: &RunEnv,
    formula: &Path,
    item: &str,
    item_type: &str,
    arch: &str,
    path_prefix: Option<&Path>,
) -> Run {
    runtask_env(
        runtask_bin,
        env,
        formula,
        (item, item_type, arch),
        path_prefix,
        &[],
    )
}

/// [`runtask`] with extra environment variables for the run.
pub fn runtask_env(
    runtask_bin: &Path,
    env: &RunEnv,
    formula: &Path,
    (item, item_type, arch): (&str, &str, &str),
    path_prefix: Option<&Path>,
    vars: &[(&str, &Path)],
) -> Run {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let uuid = format!(
        "remote-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let mut cmd = Command::new(runtask_bin);
    cmd.args(["-i", item, "-t", item_type, "-a", arch, "--uuid", &uuid])
        .arg("--config")
        .arg(&env.config)
        .arg(formula)
        .current_dir(formula.parent().unwrap());
    if let Some(prefix) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", prefix.display()));
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run runtask");
    Run {
        out,
        artifacts: env.artifacts.join(&uuid),
        uuid,
    }
}

/// The test tree (`tests/remote_support`).
pub fn support_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/remote_support")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A task checkout in `dir/<name>`: the fixture formula `fixture` (verbatim, from
/// tests/fixtures/taskotron/) saved as `formula_name`, plus the test task code `tasks/<code>`.
/// Returns the formula path.
pub fn task_dir(dir: &Path, name: &str, fixture: &str, formula_name: &str, code: &str) -> PathBuf {
    let task = dir.join(name);
    copy_tree(&support_dir().join("tasks").join(code), &task);
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/taskotron")
        .join(fixture);
    let formula = task.join(formula_name);
    std::fs::copy(&src, &formula).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    formula
}

/// A task checkout with a formula written by the test (and the `record` helper task).
pub fn custom_task(dir: &Path, name: &str, formula_text: &str) -> PathBuf {
    let task = dir.join(name);
    copy_tree(&support_dir().join("tasks/record"), &task);
    let formula = task.join("runtask.yml");
    std::fs::write(&formula, formula_text).unwrap();
    formula
}

/// `<artifacts>/record.json` written by the `record` task.
pub fn record(run: &Run) -> serde_json::Value {
    let p = run.artifacts.join("record.json");
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", p.display(), run.all()));
    serde_json::from_str(&text).unwrap()
}
