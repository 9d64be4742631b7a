//! `discover` reactions: keep a bare clone of the repository in the cache directory, pick the
//! branch (or the fallback branch), and list the `runtask.yml` formulas under `base_dir`
//! (directly in it or one level down, at any depth with `recursive: true`).
//!
//! Uses the `git` program, like Taskotron's trigger did, so every URL scheme git knows works.
//! A slow or hanging git server must not hold the trigger up: each discover has a deadline
//! (`discover_timeout_secs`), and a git process still running at the deadline is killed together
//! with its helpers (its own process group). Repositories are locked one by one, so discovers of
//! different repositories run in parallel while two discovers of one repository never clone or
//! fetch it at the same time.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::rules::DiscoverSpec;

pub const FORMULA: &str = "runtask.yml";

/// One formula found in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The formula's directory relative to the repo root (the repo's name when at the root).
    pub taskname: String,
    /// The formula's path relative to the repo root.
    pub path: String,
    pub branch: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("git {args}: {reason}")]
    Git { args: String, reason: String },
    #[error("{repo}: neither branch {branch:?} nor fallback {fallback:?} exists")]
    NoBranch {
        repo: String,
        branch: String,
        fallback: Option<String>,
    },
    #[error("{repo}: git {args}: still running after {secs}s (discover_timeout_secs); killed")]
    Timeout {
        repo: String,
        args: String,
        secs: u64,
    },
    #[error("{repo}: skipped: the git run for this repository that it waited for timed out")]
    WaitedForTimeout { repo: String },
}

impl DiscoverError {
    /// True when the discover ran out of time (counted as a timeout, not an error).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            DiscoverError::Timeout { .. } | DiscoverError::WaitedForTimeout { .. }
        )
    }
}

/// What the cache knows about one repository; its mutex serialises clone/fetch of that repo.
#[derive(Default)]
struct RepoState {
    fetched_at: Option<Instant>,
    /// When a git run for this repo last timed out.
    timed_out_at: Option<Instant>,
}

/// The clone cache; fetches a repo at most once per `refresh`.
pub struct Discoverer {
    cache_dir: PathBuf,
    refresh: Duration,
    /// Per-discover deadline; `None`: no limit.
    timeout: Option<Duration>,
    /// The git program (tests substitute a wrapper).
    git: PathBuf,
    repos: Mutex<HashMap<String, Arc<Mutex<RepoState>>>>,
}

/// Unique suffixes for temporary clone directories.
static CLONE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Everything one discover needs to run git: the program, the repo (for errors) and the deadline.
struct Run<'a> {
    git: &'a Path,
    repo: &'a str,
    deadline: Option<(Instant, Duration)>,
}

impl Discoverer {
    pub fn new(cache_dir: &Path, refresh: Duration) -> Discoverer {
        Discoverer {
            cache_dir: cache_dir.to_path_buf(),
            refresh,
            timeout: None,
            git: PathBuf::from("git"),
            repos: Mutex::new(HashMap::new()),
        }
    }

    /// Gives every discover a deadline: git still running then is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Discoverer {
        self.timeout = Some(timeout);
        self
    }

    /// Runs `git` from this path instead of `$PATH`.
    pub fn with_git(mut self, git: &Path) -> Discoverer {
        self.git = git.to_path_buf();
        self
    }

    /// Finds the formulas for one `discover` reaction (blocking: runs git).
    pub fn discover(&self, spec: &DiscoverSpec) -> Result<Vec<Found>, DiscoverError> {
        let _in_flight = crate::metrics::global().discover_started();
        let run = Run {
            git: &self.git,
            repo: &spec.repo,
            deadline: self.timeout.map(|t| (Instant::now() + t, t)),
        };
        let dir = self.update(&run)?;
        let branch = if has_branch(&run, &dir, &spec.branch)? {
            spec.branch.clone()
        } else if let Some(fb) = match &spec.fallback_branch {
            Some(fb) if has_branch(&run, &dir, fb)? => Some(fb),
            _ => None,
        } {
            fb.clone()
        } else {
            return Err(DiscoverError::NoBranch {
                repo: spec.repo.clone(),
                branch: spec.branch.clone(),
                fallback: spec.fallback_branch.clone(),
            });
        };
        let listing = run.git(
            &dir,
            &[
                "ls-tree",
                "-r",
                "--name-only",
                &format!("refs/heads/{branch}"),
            ],
        )?;
        let base = spec.base_dir.trim_matches('/');
        let repo_name = repo_name(&spec.repo);
        let mut out = vec![];
        for path in listing.lines() {
            let Some(rel) = (if base.is_empty() {
                Some(path)
            } else {
                path.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
            }) else {
                continue;
            };
            let Some(dir_in_base) = (if rel == FORMULA {
                Some("")
            } else {
                rel.strip_suffix(&format!("/{FORMULA}"))
            }) else {
                continue;
            };
            if !spec.recursive && dir_in_base.contains('/') {
                continue;
            }
            let task_dir = path
                .strip_suffix(FORMULA)
                .unwrap_or("")
                .trim_end_matches('/');
            out.push(Found {
                taskname: if task_dir.is_empty() {
                    repo_name.clone()
                } else {
                    task_dir.to_string()
                },
                path: path.to_string(),
                branch: branch.clone(),
            });
        }
        out.sort_by(|a, b| a.taskname.cmp(&b.taskname));
        Ok(out)
    }

    /// The lock and state of one repository.
    fn slot(&self, url: &str) -> Arc<Mutex<RepoState>> {
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        repos.entry(url.to_string()).or_default().clone()
    }

    /// Clones or fetches the repo into the cache; returns the bare clone's path.
    fn update(&self, run: &Run) -> Result<PathBuf, DiscoverError> {
        let url = run.repo;
        let dir = self
            .cache_dir
            .join(format!("{:x}.git", Sha1::digest(url.as_bytes())));
        let waiting_since = Instant::now();
        let slot = self.slot(url);
        let mut st = slot.lock().unwrap_or_else(|e| e.into_inner());
        // A discover that queued behind a git run which then timed out gives up at once
        // instead of starting another run against the same unresponsive server.
        if st.timed_out_at.is_some_and(|t| t >= waiting_since) {
            return Err(DiscoverError::WaitedForTimeout { repo: url.into() });
        }
        let result = self.clone_or_fetch(run, &dir, &st);
        match &result {
            Ok(true) => st.fetched_at = Some(Instant::now()),
            Ok(false) => {}
            Err(e) if e.is_timeout() => st.timed_out_at = Some(Instant::now()),
            Err(_) => {}
        }
        result.map(|_| dir)
    }

    /// Returns true when git ran (clone or fetch), false when the cached clone was fresh.
    fn clone_or_fetch(&self, run: &Run, dir: &Path, st: &RepoState) -> Result<bool, DiscoverError> {
        let fresh = st.fetched_at.is_some_and(|t| t.elapsed() < self.refresh);
        if dir.join("HEAD").exists() {
            if fresh {
                return Ok(false);
            }
            run.git(
                dir,
                &[
                    "fetch",
                    "--quiet",
                    "--prune",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                ],
            )?;
            return Ok(true);
        }
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| DiscoverError::Git {
            args: "clone".into(),
            reason: format!("{}: {e}", self.cache_dir.display()),
        })?;
        // A unique temporary name: a git left running by a killed trigger may still be
        // writing to an older one.
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        remove_stale_clones(&self.cache_dir, &name);
        let tmp = self.cache_dir.join(format!(
            "{name}.tmp-{}-{}",
            std::process::id(),
            CLONE_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let cloned = run.git(
            &self.cache_dir,
            &[
                "clone",
                "--quiet",
                "--bare",
                "--",
                run.repo,
                &tmp.to_string_lossy(),
            ],
        );
        if let Err(e) = cloned {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            if !dir.join("HEAD").exists() {
                return Err(DiscoverError::Git {
                    args: "clone".into(),
                    reason: format!("rename to {}: {e}", dir.display()),
                });
            }
        }
        Ok(true)
    }
}

/// Removes unfinished clones (`<name>.tmp-*`) left behind by a crash or a timeout.
fn remove_stale_clones(cache_dir: &Path, name: &str) {
    let prefix = format!("{name}.tmp");
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `https://pagure.io/taskotron/task-foo.git` -> `task-foo`.
fn repo_name(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(url);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

fn has_branch(run: &Run, dir: &Path, branch: &str) -> Result<bool, DiscoverError> {
    match run.git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.is_timeout() => Err(e),
        Err(_) => Ok(false),
    }
}

impl Run<'_> {
    /// Runs git in `dir`; kills it (and its helpers) when the deadline passes.
    fn git(&self, dir: &Path, args: &[&str]) -> Result<String, DiscoverError> {
        let failed = |reason: String| DiscoverError::Git {
            args: args.join(" "),
            reason,
        };
        let timed_out = || DiscoverError::Timeout {
            repo: self.repo.to_string(),
            args: args.join(" "),
            secs: self.deadline.map_or(0, |(_, t)| t.as_secs()),
        };
        if self.deadline.is_some_and(|(d, _)| Instant::now() >= d) {
            return Err(timed_out());
        }
        let mut child = Command::new(self.git)
            .args(args)
            .current_dir(dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a kill reaches ssh, git-remote-* and ext:: helpers.
            .process_group(0)
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let pid = child.id() as libc::pid_t;
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let stdout = std::thread::spawn(move || read_all(out.as_mut()));
        let stderr = std::thread::spawn(move || read_all(err.as_mut()));
        let watchdog = self.deadline.map(|(d, _)| Watchdog::start(pid, d));
        // Wait for the exit without reaping, so the process group id cannot be reused while
        // the watchdog may still signal it; then kill what is left of the group (helpers that
        // outlived git would keep the pipes open).
        let exited = wait_without_reaping(pid);
        let killed = watchdog.is_some_and(Watchdog::stop);
        // SAFETY: kill(2) on our child's process group; its leader is a zombie not yet reaped.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        exited.map_err(|e| failed(e.to_string()))?;
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if killed {
            return Err(timed_out());
        }
        if !status.success() {
            return Err(failed(String::from_utf8_lossy(&stderr).trim().to_string()));
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }
}

fn read_all(r: Option<&mut impl Read>) -> Vec<u8> {
    let mut buf = vec![];
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

/// waitid(WEXITED | WNOWAIT): returns once `pid` has exited, leaving it a zombie.
fn wait_without_reaping(pid: libc::pid_t) -> std::io::Result<()> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid(2).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall on our own child with a valid pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Kills a process group at a deadline unless stopped first.
struct Watchdog {
    state: Arc<(Mutex<WatchState>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct WatchState {
    stopped: bool,
    killed: bool,
}

impl Watchdog {
    fn start(pgid: libc::pid_t, deadline: Instant) -> Watchdog {
        let state = Arc::new((Mutex::new(WatchState::default()), Condvar::new()));
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !st.stopped {
                let now = Instant::now();
                if now >= deadline {
                    // SAFETY: kill(2) on the group of a child that has not been reaped yet
                    // (`stopped` is set before the reap).
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    st.killed = true;
                    return;
                }
                st = cv
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        });
        Watchdog { state, thread }
    }

    /// Stops the watchdog; true if it had killed the group.
    fn stop(self) -> bool {
        let (lock, cv) = &*self.state;
        let killed = {
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            st.stopped = true;
            st.killed
        };
        cv.notify_all();
        let _ = self.thread.join();
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    #[test]
    fn finds_formulas_with_branch_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("task-foo");
        std::fs::create_dir_all(repo.join("tests/a/deep")).unwrap();
        for f in [
            "runtask.yml",
            "tests/a/runtask.yml",
            "tests/a/deep/runtask.yml",
            "README",
        ] {
            std::fs::write(repo.join(f), "x").unwrap();
        }
        sh(&repo, &["init", "-q", "-b", "main"]);
        sh(&repo, &["add", "."]);
        sh(&repo, &["commit", "-q", "-m", "x"]);
        let d = Discoverer::new(&tmp.path().join("cache"), Duration::ZERO);
        let url = repo.to_string_lossy().to_string();
        let spec = |branch: &str, fb: Option<&str>, base: &str, rec: bool| DiscoverSpec {
            repo: url.clone(),
            branch: branch.into(),
            fallback_branch: fb.map(String::from),
            base_dir: base.into(),
            recursive: rec,
        };
        let names = |v: Vec<Found>| v.into_iter().map(|f| f.taskname).collect::<Vec<_>>();
        assert_eq!(
            names(d.discover(&spec("main", None, "", false)).unwrap()),
            vec!["task-foo"]
        );
        assert_eq!(
            names(d.discover(&spec("f99", Some("main"), "", true)).unwrap()),
            vec!["task-foo", "tests/a", "tests/a/deep"]
        );
        assert_eq!(
            names(d.discover(&spec("main", None, "tests", false)).unwrap()),
            vec!["tests/a"]
        );
        assert!(matches!(
            d.discover(&spec("f99", Some("nope"), "", false)),
            Err(DiscoverError::NoBranch { .. })
        ));
    }

    #[test]
    fn a_hanging_git_is_killed_with_its_helpers_at_the_deadline() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        // The helper keeps git's stdout open: unless the whole process group is killed,
        // reading git's output would never end and this test would hang.
        let wrapper = tmp.path().join("git");
        std::fs::write(&wrapper, "#!/bin/sh\nsleep 600\n").unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = Discoverer::new(&tmp.path().join("cache"), Duration::ZERO)
            .with_git(&wrapper)
            .with_timeout(Duration::from_millis(300));
        let spec = DiscoverSpec {
            repo: "https://example.invalid/slow.git".into(),
            branch: "master".into(),
            fallback_branch: None,
            base_dir: String::new(),
            recursive: false,
        };
        let err = d.discover(&spec).unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let text = err.to_string();
        assert!(text.contains("https://example.invalid/slow.git"), "{text}");
        assert!(text.contains("killed"), "{text}");
        // No half-finished clone is left behind.
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("cache"))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
