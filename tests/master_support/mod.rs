//! Helpers for the master's end-to-end tests: a temp deployment (task git repo, runtask
//! config, master.yaml), the real `taskotron-master` binary, stock `buildbot-worker`s from the
//! test venv, our `taskotron-worker`, and small HTTP helpers for the change hook and REST API.
#![allow(dead_code)]

pub mod wsclient;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{self, ChildGuard};

pub const TOKEN: &str = "test-token";

/// The example formula the tests run: prints, writes `job.txt` (uuid + item) into its artifacts
/// dir, optionally sleeps while a gate file exists (fault tests), reports PASSED.
pub const FORMULA: &str = r#"name: demo
desc: demo task for the master's end-to-end tests
maintainer: tests
input:
  args:
    - koji_build
    - arch
environment:
  rpm: []
actions:
  - name: say hello
    shell:
      - echo hello ${koji_build} ${arch}
  - name: mark
    shell:
      - sh -c "echo ${uuid} ${koji_build} > ${artifactsdir}/job.txt"
  - name: wait for the gate
    shell:
      - sh -c "while [ -e GATE_FILE ]; do sleep 0.1; done"
  - name: report
    dummy:
      result: PASSED
"#;

pub struct Opts {
    pub workers: Vec<(&'static str, &'static str)>,
    pub heartbeat: (f64, f64),
    pub extra: String,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            workers: vec![("w1", "pw1")],
            heartbeat: (1.0, 3.0),
            extra: String::new(),
        }
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub worker_port: u16,
    pub master: Option<ChildGuard>,
    pub gate: PathBuf,
}

impl Env {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("master.yaml")
    }

    /// Creates the task repo, configs, and starts the master.
    pub fn new(opts: Opts) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let gate = root.join("gate");
        // Task repository (a local git repo, as `tasks[].url` allows).
        let task = root.join("task-demo");
        std::fs::create_dir_all(&task).unwrap();
        std::fs::write(
            task.join("runtask.yml"),
            FORMULA.replace("GATE_FILE", gate.to_str().unwrap()),
        )
        .unwrap();
        for args in [
            vec!["init", "-q", "-b", "master"],
            vec!["add", "runtask.yml"],
            vec![
                "-c",
                "user.email=t@example.org",
                "-c",
                "user.name=t",
                "commit",
                "-qm",
                "demo task",
            ],
        ] {
            let st = Command::new("git")
                .args(&args)
                .current_dir(&task)
                .status()
                .expect("git");
            assert!(st.success(), "git {args:?}");
        }
        std::fs::write(
            root.join("taskotron.yaml"),
            format!(
                "report_to_resultsdb: false\ntmpdir: {}\n",
                root.join("runtask-tmp").display()
            ),
        )
        .unwrap();
        let http_port = util::free_port();
        let worker_port = util::free_port();
        let mut workers = String::new();
        for (n, p) in &opts.workers {
            workers.push_str(&format!("  - {{name: {n}, password: {p}, arch: x86_64}}\n"));
        }
        let cfg = format!(
            "data_dir: {data}\nworker_host: 127.0.0.1\nworker_port: {worker_port}\nhttp:\n  listen: 127.0.0.1:{http_port}\n\
             workers:\n{workers}tasks:\n  - {{name: demo, url: {task}, branch: master}}\n\
             heartbeat: {{interval: {hi}, timeout: {ht}}}\nauth:\n  tokens: [{TOKEN}]\n  users: [{{name: hookuser, password: hookpw}}]\n\
             runtask:\n  command: runtask\n  env:\n    TASKOTRON_CONFIG: {rcfg}\n\
             build:\n  shutdown_grace: 20\nmirror:\n  refresh_interval: 0\n{extra}",
            data = root.join("data").display(),
            task = task.display(),
            hi = opts.heartbeat.0,
            ht = opts.heartbeat.1,
            rcfg = root.join("taskotron.yaml").display(),
            extra = opts.extra,
        );
        std::fs::write(root.join("master.yaml"), cfg).unwrap();
        let mut env = Env {
            dir,
            http_port,
            worker_port,
            master: None,
            gate,
        };
        env.start_master();
        env
    }

    pub fn start_master(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join("master.log"))
            .unwrap();
        let mut cmd = Command::new(util::bin("taskotron-master"));
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log);
        self.master = Some(ChildGuard::spawn("taskotron-master", &mut cmd));
        let port = self.http_port;
        util::wait_for("master http", Duration::from_secs(30), || {
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
                .ok()
                .filter(|r| r.status() == 200)
        });
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop_master(&mut self) {
        if let Some(mut m) = self.master.take() {
            m.signal(libc::SIGTERM);
            let st = m.wait_exit(Duration::from_secs(60));
            assert!(
                st.success(),
                "master exit status {st:?}; log:\n{}",
                self.master_log()
            );
        }
    }

    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.root().join("master.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn get(&self, path: &str) -> Value {
        let r =
            reqwest::blocking::get(self.url(path)).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    /// PATH for workers: the directory holding the built `runtask` first.
    pub fn worker_path() -> String {
        let bin_dir = util::bin("runtask").parent().unwrap().to_path_buf();
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Creates and starts a stock buildbot-worker 4.3 (msgpack protocol) in the foreground.
    pub fn stock_worker(&self, name: &str, password: &str) -> ChildGuard {
        self.stock_worker_with(name, password, &[])
    }

    /// Like [`Env::stock_worker`], with extra `create-worker` options.
    pub fn stock_worker_with(&self, name: &str, password: &str, extra: &[String]) -> ChildGuard {
        let base = self.root().join(format!("bbw-{name}"));
        if !base.join("buildbot.tac").exists() {
            let st = Command::new(util::venv_bin("buildbot-worker"))
                .args(["create-worker", "-q", "--protocol=msgpack_experimental_v7"])
                .args(extra)
                .arg(&base)
                .arg(format!("127.0.0.1:{}", self.worker_port))
                .args([name, password])
                .status()
                .expect("buildbot-worker create-worker");
            assert!(st.success());
            std::fs::write(base.join("info/arch"), "x86_64\n").unwrap();
        }
        let log = std::fs::File::create(self.root().join(format!("bbw-{name}.out"))).unwrap();
        let mut cmd = Command::new(util::venv_bin("buildbot-worker"));
        cmd.args(["start", "--nodaemon"])
            .arg(&base)
            .env("PATH", Self::worker_path())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        ChildGuard::spawn(&format!("buildbot-worker {name}"), &mut cmd)
    }

    /// Creates and starts our taskotron-worker in the foreground.
    pub fn our_worker(&self, name: &str, password: &str) -> ChildGuard {
        self.our_worker_with(name, password, &[])
    }

    /// Like [`Env::our_worker`], with extra `create-worker` options.
    pub fn our_worker_with(&self, name: &str, password: &str, extra: &[String]) -> ChildGuard {
        let base = self.root().join(format!("tw-{name}"));
        if !base.exists() {
            let st = Command::new(util::bin("taskotron-worker"))
                .arg("create-worker")
                .arg(&base)
                .arg(format!("127.0.0.1:{}", self.worker_port))
                .args([name, password, "--arch", "x86_64"])
                .args(extra)
                .status()
                .expect("taskotron-worker create-worker");
            assert!(st.success());
        }
        let log = std::fs::File::create(self.root().join(format!("tw-{name}.out"))).unwrap();
        let mut cmd = Command::new(util::bin("taskotron-worker"));
        cmd.arg("start")
            .arg(&base)
            .env("PATH", Self::worker_path())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        ChildGuard::spawn(&format!("taskotron-worker {name}"), &mut cmd)
    }

    pub fn wait_workers(&self, n: usize) {
        util::wait_for(
            &format!("{n} connected workers"),
            Duration::from_secs(60),
            || {
                let h = self.get("/healthz");
                (h["workers_connected"].as_u64() == Some(n as u64)).then_some(())
            },
        );
    }

    /// Taskotron-style change hook POST; returns (status, body).
    pub fn post_change(&self, uuid: &str, item: &str) -> (u16, String) {
        post_change_to(&self.url("/change_hook/base"), uuid, item, "x86_64")
    }

    /// All builds with their `uuid` property.
    pub fn builds_by_uuid(&self) -> Vec<(String, Value)> {
        let v = self.get("/api/v2/builds?property=*");
        v["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["properties"]["uuid"][0]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    b.clone(),
                )
            })
            .collect()
    }

    /// Waits until the request for `uuid` is complete; returns its final build.
    pub fn wait_done(&self, uuid: &str, timeout: Duration) -> Value {
        let buildid = util::wait_for(&format!("job {uuid} to complete"), timeout, || {
            let builds = self.builds_by_uuid();
            let mine: Vec<&Value> = builds
                .iter()
                .filter(|(u, _)| u == uuid)
                .map(|(_, b)| b)
                .collect();
            let last = mine.last()?;
            let brid = last["buildrequestid"].as_i64()?;
            let br = self.get(&format!("/api/v2/buildrequests/{brid}"));
            (br["buildrequests"][0]["complete"] == true)
                .then(|| last["buildid"].as_i64())
                .flatten()
        });
        let b = self.get(&format!("/api/v2/builds/{buildid}?property=*"));
        b["builds"][0].clone()
    }

    pub fn set_gate(&self, on: bool) {
        if on {
            std::fs::write(&self.gate, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.gate);
        }
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&urlencode(v));
    }
    s
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body Taskotron's trigger posts (no revision).
pub fn change_body(uuid: &str, item: &str, arch: &str) -> String {
    let props = serde_json::json!({
        "taskname": "demo", "item": item, "item_type": "koji_build", "arch": arch, "uuid": uuid,
    });
    form(&[
        ("project", "rpmcheck"),
        ("category", arch),
        ("repository", ""),
        ("author", "taskotron"),
        ("comments", "fedmsg: demo job"),
        ("properties", &props.to_string()),
    ])
}

pub fn post_change_to(url: &str, uuid: &str, item: &str, arch: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(change_body(uuid, item, arch))
        .send()
        .expect("POST change_hook");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// Step names and results of a build.
pub fn steps(env: &Env, buildid: i64) -> Vec<(String, i64)> {
    env.get(&format!("/api/v2/builds/{buildid}/steps"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["results"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// The logid of the `stdio` log of a build's `runtask` step.
pub fn runtask_stdio(env: &Env, buildid: i64) -> Option<i64> {
    let steps = env.get(&format!("/api/v2/builds/{buildid}/steps"));
    let step = steps["steps"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "runtask")?
        .clone();
    let logs = env.get(&format!(
        "/api/v2/builds/{buildid}/steps/{}/logs",
        step["number"]
    ));
    logs["logs"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == "stdio")?["logid"]
        .as_i64()
}
