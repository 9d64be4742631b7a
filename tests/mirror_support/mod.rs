//! Helpers for the mirror tests: origin repositories driven with the real `git` CLI, and the
//! mirror's axum router served on an ephemeral loopback port with a log of every response.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use taskotron_master::mirror::{MirrorConfig, Mirrors, TaskSource};

/// Runs `git` with a fixed identity; panics with its stderr on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables (e.g. `GIT_SMART_HTTP=0`).
pub fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Task Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.org")
        .env("GIT_COMMITTER_NAME", "Task Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.org")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A task's origin: a bare repo (what the mirror fetches) plus a work tree to commit from.
pub struct Origin {
    pub bare: PathBuf,
    pub work: PathBuf,
    pub branch: String,
}

impl Origin {
    /// Creates `<top>/<rel>` (bare, e.g. `tasks/rpmlint.git`) with one commit on `branch`
    /// holding `runtask.yml`.
    pub fn new(top: &Path, rel: &str, branch: &str) -> Origin {
        let bare = top.join(rel);
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", branch]);
        let work = top.join(".work").join(rel.trim_end_matches(".git"));
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", branch]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        let o = Origin {
            bare,
            work,
            branch: branch.into(),
        };
        o.commit("runtask.yml", "name: task\nactions: []\n", "initial");
        o
    }

    /// Writes a file, commits and pushes; returns the new commit sha.
    pub fn commit(&self, file: &str, content: &str, msg: &str) -> String {
        let p = self.work.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", msg]);
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--force",
                "origin",
                &format!("HEAD:refs/heads/{}", self.branch),
            ],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_string()
    }

    pub fn url(&self) -> String {
        self.bare.to_str().unwrap().to_string()
    }
}

/// `git show-ref | sha1sum` of a repo, computed with the real tools.
pub fn show_ref_fingerprint(repo: &Path) -> String {
    let sha = Command::new("sh")
        .arg("-c")
        .arg("git show-ref | sha1sum")
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// One served response: method, path, status.
pub type Hit = (String, String, u16);

/// The mirror router on 127.0.0.1:<ephemeral>, on its own runtime (so tests can block).
pub struct Served {
    pub rt: tokio::runtime::Runtime,
    pub port: u16,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    pub mirrors: Arc<Mirrors>,
}

impl Served {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Responses so far whose path starts with `prefix`.
    pub fn hits_for(&self, prefix: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.1.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// Opens the mirrors and serves their router.
pub fn serve(data: &Path, cfg: MirrorConfig, tasks: Vec<TaskSource>) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mirrors = Mirrors::open(data, cfg, tasks).expect("open mirrors");
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let h2 = hits.clone();
    let app = mirrors.router().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let hits = h2.clone();
            async move {
                let (m, p) = (req.method().to_string(), req.uri().path().to_string());
                let resp = next.run(req).await;
                hits.lock().unwrap().push((m, p, resp.status().as_u16()));
                resp
            }
        },
    ));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served {
        rt,
        port,
        hits,
        mirrors,
    }
}

pub fn task(name: &str, origin: &Origin) -> TaskSource {
    TaskSource {
        name: name.into(),
        url: origin.url(),
        branch: origin.branch.clone(),
    }
}
