//! Test helpers for the trigger: a loopback stand-in for the master's change hook, a runner
//! for the trigger binary that collects its log, and a real fedmsg publisher (Python, from the
//! test venv).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{self, ChildGuard};

pub mod slow_git;

/// One POST the stand-in master received.
#[derive(Debug, Clone)]
pub struct Submission {
    pub form: HashMap<String, String>,
    pub properties: serde_json::Value,
    pub authorization: Option<String>,
    /// When the POST arrived (wall clock, for latency measurements).
    pub at: std::time::SystemTime,
}

/// A stand-in for the master's `/change_hook/base`: records submissions and answers like a
/// real Buildbot ("1 change found"). `status` lets a test make it fail.
pub struct StandInMaster {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Submission>>>,
    pub status: Arc<Mutex<u16>>,
    _rt: tokio::runtime::Runtime,
}

impl StandInMaster {
    pub fn start(port: u16) -> StandInMaster {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;

        type Shared = (Arc<Mutex<Vec<Submission>>>, Arc<Mutex<u16>>);
        async fn hook(
            State((rec, status)): State<Shared>,
            headers: HeaderMap,
            body: String,
        ) -> (StatusCode, String) {
            let code = *status.lock().unwrap();
            if code != 200 {
                return (
                    StatusCode::from_u16(code).unwrap(),
                    "refused by test".into(),
                );
            }
            let form: HashMap<String, String> = url_decode(&body);
            let properties =
                serde_json::from_str(form.get("properties").map(String::as_str).unwrap_or("{}"))
                    .unwrap_or(serde_json::Value::Null);
            let authorization = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            rec.lock().unwrap().push(Submission {
                form,
                properties,
                authorization,
                at: std::time::SystemTime::now(),
            });
            (StatusCode::OK, "1 change found".into())
        }
        let received = Arc::new(Mutex::new(vec![]));
        let status = Arc::new(Mutex::new(200));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/change_hook/base", post(hook))
            .with_state((received.clone(), status.clone()));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .unwrap();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandInMaster {
            port,
            received,
            status,
            _rt: rt,
        }
    }

    pub fn submissions(&self) -> Vec<Submission> {
        self.received.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn url_decode(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(b' ');
        } else if b[i] == b'%' && i + 3 <= b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(h, 16).unwrap());
            i += 2;
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A running `taskotron-trigger run`, with its stderr collected.
pub struct Trigger {
    pub guard: ChildGuard,
    pub log: Arc<Mutex<String>>,
    pub config: PathBuf,
}

impl Trigger {
    pub fn start(config: &Path) -> Trigger {
        Trigger::start_with_env(config, &[])
    }

    /// Starts it with extra environment variables (e.g. a `PATH` with a git wrapper first).
    pub fn start_with_env(config: &Path, env: &[(&str, String)]) -> Trigger {
        let mut cmd = Command::new(util::bin("taskotron-trigger"));
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.args([
            "--log-level",
            "taskotron_trigger=debug,info",
            "run",
            "--config",
        ])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        Trigger::from_command("taskotron-trigger", cmd, config)
    }

    /// Runs `cmd` (a trigger, perhaps behind a wrapper) with its stderr piped and collected.
    pub fn from_command(name: &str, mut cmd: Command, config: &Path) -> Trigger {
        let mut guard = ChildGuard::spawn(name, &mut cmd);
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = guard.child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        Trigger {
            guard,
            log,
            config: config.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) {
        util::wait_for(
            &format!("{count}x {needle:?} in trigger log"),
            timeout,
            || (self.log().matches(needle).count() >= count).then_some(()),
        );
    }
}

/// Writes a trigger config; `extra` is appended YAML.
pub fn write_config(
    dir: &Path,
    bind_port: u16,
    master_url: &str,
    rules: &Path,
    extra: &str,
) -> PathBuf {
    let cfg = format!(
        "bind_endpoints: [\"tcp://127.0.0.1:{bind_port}\"]\n\
         rules: {rules}\n\
         state_dir: {state}\n\
         git_cache_dir: {cache}\n\
         fuse_delay: 0\n\
         master:\n  url: {master_url}\n  retry_initial_ms: 50\n  retry_max_ms: 200\n  timeout_secs: 5\n{extra}",
        rules = rules.display(),
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
    );
    let path = dir.join("trigger.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The real fedmsg publisher (tests/trigger_support/fedmsg_publish.py in the venv's Python).
pub struct Publisher {
    guard: ChildGuard,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Publisher {
    /// Starts it with a list of actions (see the script); waits until fedmsg is initialised.
    pub fn start(dir: &Path, relay_port: u16, actions: &serde_json::Value) -> Publisher {
        let spec = dir.join(format!("spec-{relay_port}-{}.json", rand_suffix()));
        std::fs::write(&spec, actions.to_string()).unwrap();
        let script = util::repo_root().join("tests/trigger_support/fedmsg_publish.py");
        let mut cmd = Command::new(util::venv_bin("python"));
        cmd.arg(script)
            .arg(format!("tcp://127.0.0.1:{relay_port}"))
            .arg(&spec)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut guard = ChildGuard::spawn("fedmsg publisher", &mut cmd);
        let mut stdout = BufReader::new(guard.child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "publisher failed to start");
        Publisher { guard, stdout }
    }

    /// Publishes everything and waits until fedmsg has handed it to ZeroMQ.
    pub fn go(&mut self) {
        let stdin = self.guard.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Runs the real `git` with `args` in `dir` (with a committer identity); panics with git's
/// stderr if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Counts rows of a table in the trigger's SQLite state.
pub fn count_rows(state_dir: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(state_dir.join("trigger.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or(0)
}
