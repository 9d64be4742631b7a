//! Step logs stored as files (issue 5's log flood fix): simulated workers (`loadgen`) stream
//! megabytes of stdout through the real master; the log served by the REST API is complete and
//! consistent (line count, whole content, `offset`/`limit` windows across the line index), it
//! lives under `<data_dir>/logs/<uuid>/`, and a master killed with SIGKILL mid-stream comes back
//! with that log closed, its line count matching its content and no torn line.

mod master_support;
mod util;

use std::process::{Command, Stdio};
use std::time::Duration;

use master_support::{Env, Opts, TOKEN};
use serde_json::Value;
use util::ChildGuard;

const T: Duration = Duration::from_secs(180);

fn loadgen(env: &Env, run_id: &str, workers: usize, flood_mb: u64) -> Command {
    let mut cmd = Command::new(util::bin("loadgen"));
    cmd.arg("--worker-url")
        .arg(format!("ws://127.0.0.1:{}/", env.worker_port))
        .arg("--hook-url")
        .arg(env.url("/change_hook/base"))
        .arg("--hook-auth")
        .arg(format!("Bearer {TOKEN}"))
        .args(["--workers", &workers.to_string(), "--jobs", "0"])
        .args(["--flood-jobs", &workers.to_string()])
        .args(["--flood-mb", &flood_mb.to_string()])
        .args(["--run-id", run_id, "--json", "--timeout", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

fn contents(env: &Env, logid: i64, query: &str) -> String {
    let v = env.get(&format!("/api/v2/logs/{logid}/contents{query}"));
    v["logchunks"][0]["content"].as_str().unwrap().to_string()
}

fn log_row(env: &Env, logid: i64) -> Value {
    env.get(&format!("/api/v2/logs/{logid}"))["logs"][0].clone()
}

fn flood_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("oflood ")).count()
}

#[test]
fn streamed_logs_are_complete_and_pageable() {
    let names = vec![("lg0000", "pw"), ("lg0001", "pw")];
    let env = Env::new(Opts {
        workers: names,
        ..Default::default()
    });
    let out = loadgen(&env, "logs", 2, 2).output().unwrap();
    assert!(
        out.status.success(),
        "loadgen: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let builds = env.builds_by_uuid();
    for uuid in ["logs-flood-000000", "logs-flood-000001"] {
        let (_, b) = builds.iter().find(|(u, _)| u == uuid).expect(uuid);
        assert_eq!(b["results"], 0, "{uuid}: {b}");
        let logid = master_support::runtask_stdio(&env, b["buildid"].as_i64().unwrap()).unwrap();
        let row = log_row(&env, logid);
        assert_eq!(row["complete"], true);
        let full = contents(&env, logid, "");
        let lines: Vec<&str> = full.lines().collect();
        assert_eq!(row["num_lines"].as_u64().unwrap() as usize, lines.len());
        // 2 MiB of 81-byte lines, plus the header and exit code lines.
        assert!(
            flood_lines(&full) >= (2 << 20) / 81,
            "{} flood lines",
            flood_lines(&full)
        );
        assert!(full.ends_with("hprogram finished with exit code 0\n"));
        // Windows across index boundaries (every 1024 lines) equal slices of the whole.
        let n = lines.len();
        for offset in [0, 1, 1023, 1024, 1025, 4097, n / 2, n - 1, n, n + 10] {
            let got = contents(&env, logid, &format!("?offset={offset}&limit=5"));
            let want: String = lines[offset.min(n)..(offset + 5).min(n)]
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(got, want, "offset {offset}");
        }
        let bad =
            reqwest::blocking::get(env.url(&format!("/api/v2/logs/{logid}/contents?limit=x")))
                .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(bad.text().unwrap().contains("limit"));
        // The content is a file named by the job, not database rows.
        let file = env
            .root()
            .join("data/logs")
            .join(uuid)
            .join(format!("{logid}-stdio.log"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), full);
    }
}

#[test]
fn a_master_killed_mid_stream_closes_the_log_on_restart() {
    let mut env = Env::new(Opts {
        workers: vec![("lg0000", "pw")],
        ..Default::default()
    });
    // Enough output that the kill lands mid-stream (the test waits for a partial file).
    let mut child = loadgen(&env, "crash", 1, 400);
    child.stdout(Stdio::null());
    let _fleet = ChildGuard::spawn("loadgen", &mut child);
    let dir = env.root().join("data/logs/crash-flood-000000");
    // The runtask step's stdio is the one that grows (the other steps log a few lines).
    let file = util::wait_for("runtask log growing", T, || {
        let (len, f) = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.len(), p)))
            .max()?;
        (len > 4 << 20).then_some(f)
    });
    let mut master = env.master.take().unwrap();
    master.signal(libc::SIGKILL);
    master.wait_exit(Duration::from_secs(30));
    let on_disk = std::fs::read(&file).unwrap();
    env.start_master();

    let logid: i64 = file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let row = log_row(&env, logid);
    assert_eq!(row["complete"], true, "{row}");
    let full = contents(&env, logid, "");
    assert_eq!(
        row["num_lines"].as_u64().unwrap() as usize,
        full.lines().count(),
        "line count matches the content after the crash"
    );
    assert!(full.ends_with('\n'), "no torn last line");
    // Everything the killed master had written in whole lines is kept.
    let whole = on_disk.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(full.as_bytes(), &on_disk[..whole]);
    assert!(
        env.master_log().contains("closed step logs left open"),
        "{}",
        env.master_log()
    );
}
