//! Test helpers for the operators' view: a small W3C WebDriver client that drives Debian's
//! headless Chromium through chromedriver (plain JSON over HTTP, no extra crate), screenshots
//! saved under target/test-artifacts/, and an SSE reader for the live-log stream.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::util::{self, ChildGuard};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots go (git-ignored with the rest of target/).
pub fn artifacts_dir() -> PathBuf {
    let d = util::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A chromedriver process and one headless Chromium session, both ended on drop.
pub struct Browser {
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
    _driver: ChildGuard,
}

impl Browser {
    pub fn start() -> Browser {
        let port = util::free_port();
        let log = std::fs::File::create(artifacts_dir().join(format!("chromedriver-{port}.log")))
            .unwrap();
        let mut cmd = Command::new("/usr/bin/chromedriver");
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log);
        let driver = ChildGuard::spawn("chromedriver", &mut cmd);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        util::wait_for("chromedriver ready", Duration::from_secs(30), || {
            let v: Value = http
                .get(format!("{base}/status"))
                .send()
                .ok()?
                .json()
                .ok()?;
            (v["value"]["ready"] == true).then_some(())
        });
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1024",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .expect("new WebDriver session")
            .json()
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Browser {
            base,
            session,
            http,
            _profile: profile,
            _driver: driver,
        }
    }

    fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().unwrap();
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    pub fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Elements matching a CSS selector (empty when none).
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT_KEY].as_str().unwrap().to_string())
            .collect()
    }

    pub fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css:?} on {}", self.current_url()))
    }

    pub fn text(&self, el: &str) -> String {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn click(&self, el: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        );
    }

    pub fn type_text(&self, el: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Runs JavaScript in the page and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Text of the first element matching `css`, or "" when there is none.
    pub fn text_of(&self, css: &str) -> String {
        self.find_all(css)
            .first()
            .map(|e| self.text(e))
            .unwrap_or_default()
    }

    /// Saves a PNG screenshot as target/test-artifacts/<name>.png.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads SSE events from `path` on 127.0.0.1:`port` with a raw socket (so the test sees the
/// exact wire format), sending `Last-Event-ID` when given; stops after `until` returns true.
pub fn read_sse(
    port: u16,
    path: &str,
    last_event_id: Option<&str>,
    mut until: impl FnMut(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n");
    if let Some(id) = last_event_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "SSE status: {line}");
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.to_ascii_lowercase().starts_with("content-type:") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
        if line.to_ascii_lowercase().starts_with("transfer-encoding:") && line.contains("chunked") {
            chunked = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut events = vec![];
    let mut cur = SseEvent::default();
    let mut body = String::new();
    loop {
        // De-chunk into `body`, then consume whole lines from it.
        if chunked {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut buf = vec![0; size + 2];
            r.read_exact(&mut buf).unwrap();
            body.push_str(&String::from_utf8_lossy(&buf[..size]));
        } else {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            body.push_str(&line);
        }
        while let Some(pos) = body.find('\n') {
            let l: String = body.drain(..=pos).collect();
            let l = l.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                if !cur.data.is_empty() || !cur.event.is_empty() {
                    events.push(std::mem::take(&mut cur));
                    if until(&events) {
                        return events;
                    }
                }
            } else if let Some(v) = l.strip_prefix("event:") {
                cur.event = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("id:") {
                cur.id = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("data:") {
                if !cur.data.is_empty() {
                    cur.data.push('\n');
                }
                cur.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }
    events
}

/// Runs `promtool check metrics` on a scrape; returns its combined output on failure.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Value of one sample (`name{labels}` exactly as written) in a scrape, or None.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}
