//! Helpers shared by the end-to-end tests: find the built binaries, the test venv and the
//! fixtures, pick free ports, wait on conditions with a deadline, and kill children on drop.
//!
//! Use from a test file with `mod util;`. Each area keeps its own stand-ins and helpers in its
//! own module next to this one (e.g. `tests/runtask_support/`).
#![allow(dead_code)]

pub mod pki;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The repository root (where the workspace Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of ../shared/fixtures kept in the repo, so a clean clone has them.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// Path of a binary built from one of the workspace crates (`runtask`, `taskotron-master`, ...).
/// `make test` builds them with `cargo build --workspace --bins` before running the tests.
pub fn bin(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/; the binaries one level up.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is under target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run `cargo build --workspace --bins` (make test does this)",
        path.display()
    );
    path
}

/// The venv made by scripts/test-deps (override with TASKOTRON_TEST_VENV).
pub fn venv() -> PathBuf {
    std::env::var_os("TASKOTRON_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// A program from the test venv (`python`, `buildbot`, `buildbot-worker`, `grok-pull`, ...).
pub fn venv_bin(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.exists(),
        "{} missing; run scripts/test-deps (make test does this)",
        path.display()
    );
    path
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `cond` every 50 ms until it returns Some or `timeout` passes (then panics with `what`).
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True once something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test
/// leaves nothing running.
pub struct ChildGuard {
    pub child: Child,
    pub name: String,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal (libc::SIGTERM, SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit, up to `timeout`; returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        let name = self.name.clone();
        wait_for(&format!("{name} to exit"), timeout, || {
            child.try_wait().ok().flatten()
        })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
