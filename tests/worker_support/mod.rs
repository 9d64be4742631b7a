//! Test helpers for taskotron-worker: a stock Buildbot 4.3.0 master from the test venv
//! (config in `buildbot/master.cfg`), our worker process, and a small REST client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{self, ChildGuard};

pub mod fake_master;
pub mod transcript;

/// A stock Buildbot master running in the foreground on loopback.
pub struct BuildbotMaster {
    pub dir: PathBuf,
    pub upload_dir: PathBuf,
    /// While this file exists, the `gated` builder's first step waits.
    pub gate: PathBuf,
    pub worker_port: u16,
    pub www_port: u16,
    pub proc: Option<ChildGuard>,
    /// Master → worker keepalive interval (Buildbot's default is 3600 s).
    pub keepalive: u32,
}

impl BuildbotMaster {
    /// `buildbot create-master` in `root/master` with our master.cfg, then start it.
    pub fn create(root: &Path, keepalive: u32) -> BuildbotMaster {
        let dir = root.join("master");
        let status = Command::new(util::venv_bin("buildbot"))
            .args(["create-master", "-q"])
            .arg(&dir)
            .status()
            .expect("run buildbot create-master");
        assert!(status.success(), "buildbot create-master failed");
        std::fs::copy(
            util::repo_root().join("tests/worker_support/buildbot/master.cfg"),
            dir.join("master.cfg"),
        )
        .expect("copy master.cfg");
        let upload_dir = root.join("uploads");
        std::fs::create_dir_all(&upload_dir).unwrap();
        let mut m = BuildbotMaster {
            dir,
            upload_dir,
            gate: root.join("gate"),
            worker_port: util::free_port(),
            www_port: util::free_port(),
            proc: None,
            keepalive,
        };
        m.start();
        m
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("foreground.log")).unwrap();
        let guard = ChildGuard::spawn(
            "buildbot master",
            Command::new(util::venv_bin("buildbot"))
                .args(["start", "--nodaemon"])
                .arg(&self.dir)
                .env("TT_WORKER_PORT", self.worker_port.to_string())
                .env("TT_WWW_PORT", self.www_port.to_string())
                .env("TT_UPLOAD_DIR", &self.upload_dir)
                .env("TT_GATE_FILE", &self.gate)
                .env("TT_KEEPALIVE", self.keepalive.to_string())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log)),
        );
        self.proc = Some(guard);
        let port = self.www_port;
        util::wait_for("buildbot REST API", Duration::from_secs(60), || {
            util::port_open(port).then_some(())
        });
    }

    /// Kills the master (SIGKILL, like a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait_exit(Duration::from_secs(30));
        }
    }

    pub fn signal(&self, sig: i32) {
        if let Some(p) = &self.proc {
            p.signal(sig);
        }
    }

    pub fn api(&self, path: &str) -> Value {
        let url = format!("http://127.0.0.1:{}/api/v2/{path}", self.www_port);
        reqwest::blocking::get(&url)
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    fn rpc(&self, path: &str, method: &str, params: Value) -> Value {
        let url = format!("http://127.0.0.1:{}/api/v2/{path}", self.www_port);
        let body = json!({"jsonrpc": "2.0", "method": method, "id": 1, "params": params});
        let reply: Value = reqwest::blocking::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(reply.get("error").is_none(), "{method} on {path}: {reply}");
        reply["result"].clone()
    }

    /// True when worker `w1` is attached to the master.
    pub fn worker_connected(&self) -> bool {
        let url = format!("http://127.0.0.1:{}/api/v2/workers/w1", self.www_port);
        let Ok(v) = reqwest::blocking::get(&url).and_then(|r| r.json::<Value>()) else {
            return false;
        };
        v["workers"][0]["connected_to"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }

    pub fn wait_worker(&self, timeout: Duration) {
        util::wait_for("worker w1 connected to the master", timeout, || {
            self.worker_connected().then_some(())
        });
    }

    fn builder_id(&self, name: &str) -> u64 {
        self.api(&format!("builders/{name}"))["builders"][0]["builderid"]
            .as_u64()
            .unwrap_or_else(|| panic!("builder {name} missing"))
    }

    /// Forces a build on `builder` with extra properties; returns the build request id.
    pub fn force(&self, builder: &str, props: Value) -> u64 {
        let mut params = json!({"builderid": self.builder_id(builder)});
        if let Value::Object(p) = props {
            params.as_object_mut().unwrap().extend(p);
        }
        let result = self.rpc("forceschedulers/force", "force", params);
        // [bsid, {"<builderid>": brid}]
        result[1]
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("unexpected force reply {result}"))
    }

    /// Waits for the build of a request to exist; returns it.
    pub fn build_of(&self, brid: u64, timeout: Duration) -> Value {
        util::wait_for("build to start", timeout, || {
            let v = self.api(&format!("builds?buildrequestid={brid}"));
            v["builds"].as_array().and_then(|a| a.first().cloned())
        })
    }

    /// Waits for a build to complete; returns the final build.
    pub fn wait_complete(&self, buildid: u64, timeout: Duration) -> Value {
        util::wait_for("build to complete", timeout, || {
            let b = self.api(&format!("builds/{buildid}"))["builds"][0].clone();
            b["complete"].as_bool().unwrap_or(false).then_some(b)
        })
    }

    pub fn steps(&self, buildid: u64) -> Vec<Value> {
        self.api(&format!("builds/{buildid}/steps"))["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Plain text of a step's log (REST `.../logs/<slug>/raw`).
    pub fn log_raw(&self, buildid: u64, step: &str, slug: &str) -> String {
        let url = format!(
            "http://127.0.0.1:{}/api/v2/builds/{buildid}/steps/{step}/logs/{slug}/raw",
            self.www_port
        );
        reqwest::blocking::get(&url)
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub fn stop_build(&self, buildid: u64) {
        self.rpc(
            &format!("builds/{buildid}"),
            "stop",
            json!({"reason": "stopped by test"}),
        );
    }
}

/// Our worker, created with `create-worker` and run with `start`; stderr goes to a file.
pub struct OurWorker {
    pub basedir: PathBuf,
    pub log: PathBuf,
    pub proc: ChildGuard,
}

impl OurWorker {
    /// `create-worker` then `start`, after applying `overrides` to worker.yaml.
    pub fn start(root: &Path, master_port: u16, overrides: &str) -> OurWorker {
        let basedir = root.join("worker");
        let out = Command::new(util::bin("taskotron-worker"))
            .arg("create-worker")
            .arg(&basedir)
            .arg(format!("127.0.0.1:{master_port}"))
            .args([
                "w1",
                "s3cret",
                "--arch",
                "x86_64",
                "--keepalive",
                "1",
                "--maxdelay",
                "2",
            ])
            .output()
            .expect("run create-worker");
        assert!(out.status.success(), "create-worker: {out:?}");
        // Each `key: value` line of `overrides` replaces that key in worker.yaml.
        let conf = basedir.join("worker.yaml");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        for line in overrides.lines().filter(|l| l.contains(':')) {
            let key = format!("{}:", line.split(':').next().unwrap());
            text = text
                .lines()
                .map(|l| if l.starts_with(&key) { line } else { l })
                .collect::<Vec<_>>()
                .join("\n");
            text.push('\n');
        }
        std::fs::write(&conf, text).unwrap();
        let log = root.join("worker.log");
        let file = std::fs::File::create(&log).unwrap();
        let proc = ChildGuard::spawn(
            "taskotron-worker",
            Command::new(util::bin("taskotron-worker"))
                .arg("start")
                .arg(&basedir)
                // Set here so the test can check that `env: {TT_UNSET_ME: null}` removes it.
                .env("TT_UNSET_ME", "set-in-worker-env")
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::from(file)),
        );
        OurWorker { basedir, log, proc }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Buildbot result codes.
pub const SUCCESS: u64 = 0;
pub const WARNINGS: u64 = 1;
pub const FAILURE: u64 = 2;
pub const CANCELLED: u64 = 6;

impl Drop for OurWorker {
    /// On a failing test, show what the worker logged (and the master's log tail).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- taskotron-worker log ----\n{}", self.log_text());
        }
    }
}

impl Drop for BuildbotMaster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("twistd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- buildbot twistd.log (last 40 lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}
