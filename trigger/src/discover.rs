//! `discover` reactions: keep a bare clone of the repository in the cache directory, pick the
//! branch (or the fallback branch), and list the `runtask.yml` formulas under `base_dir`
//! (directly in it or one level down, at any depth with `recursive: true`).
//!
//! Uses the `git` program, like Taskotron's trigger did, so every URL scheme git knows works.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
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
}

/// The clone cache; fetches a repo at most once per `refresh`.
pub struct Discoverer {
    cache_dir: PathBuf,
    refresh: Duration,
    fetched: Mutex<HashMap<String, Instant>>,
}

impl Discoverer {
    pub fn new(cache_dir: &Path, refresh: Duration) -> Discoverer {
        Discoverer {
            cache_dir: cache_dir.to_path_buf(),
            refresh,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// Finds the formulas for one `discover` reaction (blocking: runs git).
    pub fn discover(&self, spec: &DiscoverSpec) -> Result<Vec<Found>, DiscoverError> {
        let dir = self.update(&spec.repo)?;
        let branch = if has_branch(&dir, &spec.branch) {
            spec.branch.clone()
        } else if let Some(fb) = spec
            .fallback_branch
            .as_ref()
            .filter(|fb| has_branch(&dir, fb))
        {
            fb.clone()
        } else {
            return Err(DiscoverError::NoBranch {
                repo: spec.repo.clone(),
                branch: spec.branch.clone(),
                fallback: spec.fallback_branch.clone(),
            });
        };
        let listing = git(
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

    /// Clones or fetches the repo into the cache; returns the bare clone's path.
    fn update(&self, url: &str) -> Result<PathBuf, DiscoverError> {
        let dir = self
            .cache_dir
            .join(format!("{:x}.git", Sha1::digest(url.as_bytes())));
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = fetched.get(url).is_some_and(|t| t.elapsed() < self.refresh);
        if dir.join("HEAD").exists() {
            if !fresh {
                git(
                    &dir,
                    &[
                        "fetch",
                        "--quiet",
                        "--prune",
                        "origin",
                        "+refs/heads/*:refs/heads/*",
                    ],
                )?;
            }
        } else {
            std::fs::create_dir_all(&self.cache_dir).map_err(|e| DiscoverError::Git {
                args: "clone".into(),
                reason: format!("{}: {e}", self.cache_dir.display()),
            })?;
            let tmp = dir.with_extension("tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            git(
                &self.cache_dir,
                &[
                    "clone",
                    "--quiet",
                    "--bare",
                    "--",
                    url,
                    &tmp.to_string_lossy(),
                ],
            )?;
            std::fs::rename(&tmp, &dir).map_err(|e| DiscoverError::Git {
                args: "clone".into(),
                reason: e.to_string(),
            })?;
        }
        fetched.insert(url.to_string(), Instant::now());
        Ok(dir)
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

fn has_branch(dir: &Path, branch: &str) -> bool {
    git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok()
}

fn git(dir: &Path, args: &[&str]) -> Result<String, DiscoverError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| DiscoverError::Git {
            args: args.join(" "),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(DiscoverError::Git {
            args: args.join(" "),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
}
