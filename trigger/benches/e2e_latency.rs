//! End-to-end latency: our PUB socket publishes a Koji build message -> the real
//! `taskotron-trigger` binary (SUB bound on loopback) -> its POST arrives at a minimal change-hook
//! server. One message at a time, 100 times; prints the median (and p90/max).
//!
//! `cargo bench -p taskotron-trigger --bench e2e_latency`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use zeromq::prelude::*;
use zeromq::{PubSocket, ZmqMessage};

/// Accepts change-hook POSTs; sends the `item` of each to `tx` at arrival.
async fn hook_server(listener: TcpListener, tx: mpsc::UnboundedSender<(String, Instant)>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                let Some(end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + len {
                    continue;
                }
                let at = Instant::now();
                let body = &text[end + 4..end + 4 + len];
                let item = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("properties="))
                    .map(|p| p.replace('+', " "))
                    .and_then(|p| percent_decode(&p))
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
                    .and_then(|v| v["item"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = tx.send((item, at));
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n\r\n1 change found")
                    .await;
                buf.clear();
            }
        });
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn message(i: usize) -> (String, String) {
    let topic = "org.fedoraproject.prod.buildsys.build.state.change".to_string();
    let body = serde_json::json!({
        "topic": topic, "msg_id": format!("2026-bench-{i}-{}", std::process::id()), "timestamp": 1, "i": i,
        "username": "bench", "msg": {"build_id": i, "instance": "primary", "name": format!("pkg{i}"),
        "new": 1, "old": 0, "owner": "x", "release": "1.fc30", "version": "1.0"}
    });
    (topic, body.to_string())
}

async fn send(publisher: &mut PubSocket, i: usize) {
    let (t, b) = message(i);
    let mut m = ZmqMessage::from(t);
    m.push_back(b.into_bytes().into());
    publisher.send(m).await.unwrap();
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(hook_server(listener, tx));
    let sub_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("rules.yml"),
        "- when: {message_type: KojiBuildPackageCompleted}\n  do: [{tasks: [rpmlint]}]\n",
    )
    .unwrap();
    let cfg = dir.path().join("trigger.yaml");
    std::fs::write(
        &cfg,
        format!(
            "bind_endpoints: [\"tcp://127.0.0.1:{sub_port}\"]\nrules: rules.yml\nstate_dir: state\ngit_cache_dir: cache\n\
             fuse_delay: 0\nmaster:\n  url: http://127.0.0.1:{hook_port}\n  retry_initial_ms: 20\n  retry_max_ms: 100\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_taskotron-trigger"))
        .args(["--log-level", "warn", "run", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut publisher = PubSocket::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if publisher
            .connect(&format!("tcp://127.0.0.1:{sub_port}"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "trigger did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Warm up until the subscription is in place and one job went through.
    let mut warm = 100_000;
    loop {
        send(&mut publisher, warm).await;
        if tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_ok()
        {
            break;
        }
        warm += 1;
        assert!(Instant::now() < deadline, "no job arrived during warm-up");
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {}

    let mut lat = vec![];
    for i in 0..100 {
        let t0 = Instant::now();
        send(&mut publisher, i).await;
        let want = format!("pkg{i}-1.0-1.fc30");
        loop {
            let (item, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            if item == want {
                lat.push(at - t0);
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "publish -> change_hook POST over loopback, 100 messages: median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms",
        ms(lat[49]),
        ms(lat[89]),
        ms(lat[0]),
        ms(lat[99])
    );
}
