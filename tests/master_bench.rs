//! Measurements asked by issue 9 (ignored by default; run with
//! `cargo nextest run -p taskotron-e2e --test master_bench --run-ignored only --no-capture`):
//! - latency from the change-hook POST to the `runtask` shell command starting on an idle
//!   worker, median (and p90) of 100 jobs, with our worker and with a stock buildbot-worker;
//! - master RSS with 100 connected idle workers (protocol clients from master_support).
//!
//! They print numbers; nothing is asserted about time (DESIGN §10).

mod master_support;
mod util;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use master_support::wsclient::FakeWorker;
use master_support::{Env, Opts};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Wraps runtask: records the wall-clock start (ns) in `<dir>/<uuid>.start`, then runs it.
fn wrapper(env: &Env) -> std::path::PathBuf {
    let dir = env.root().join("starts");
    std::fs::create_dir_all(&dir).unwrap();
    let script = env.root().join("runtask-timed");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nnow=$(date +%s%N)\nprev=\nfor a; do [ \"$prev\" = --uuid ] && u=$a; prev=$a; done\n\
             echo $now > {}/$u.start\nexec runtask \"$@\"\n",
            dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = std::fs::read_to_string(env.config_path()).unwrap().replace(
        "  command: runtask\n",
        &format!("  command: {}\n", script.display()),
    );
    std::fs::write(env.config_path(), cfg).unwrap();
    dir
}

fn latency(stock: bool) {
    let mut env = Env::new(Opts {
        heartbeat: (5.0, 15.0),
        ..Default::default()
    });
    let starts = wrapper(&env);
    env.stop_master();
    env.start_master();
    let _w = if stock {
        env.stock_worker("w1", "pw1")
    } else {
        env.our_worker("w1", "pw1")
    };
    env.wait_workers(1);
    let mut ms: Vec<f64> = Vec::new();
    for i in 0..100 {
        let uuid = format!("lat-{i:03}");
        let t0 = now_ns();
        let (s, _) = env.post_change(&uuid, "foo-1-1.fc40");
        assert_eq!(s, 200);
        let f = starts.join(format!("{uuid}.start"));
        let t1: u128 = util::wait_for("runtask start", Duration::from_secs(60), || {
            std::fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        });
        ms.push((t1.saturating_sub(t0)) as f64 / 1e6);
        env.wait_done(&uuid, Duration::from_secs(60)); // the worker is idle again
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "change_hook POST → runtask start ({} worker): median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms (n=100)",
        if stock { "stock buildbot-worker 4.3" } else { "taskotron-worker" },
        ms[49],
        ms[89],
        ms[0],
        ms[99]
    );
}

#[test]
#[ignore]
fn latency_change_hook_to_runtask_our_worker() {
    latency(false);
}

#[test]
#[ignore]
fn latency_change_hook_to_runtask_stock_worker() {
    latency(true);
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
#[ignore]
fn rss_with_100_idle_workers() {
    let names: Vec<(&'static str, &'static str)> = (0..100)
        .map(|i| {
            let n: &'static str = Box::leak(format!("idle{i:03}").into_boxed_str());
            (n, "pw")
        })
        .collect();
    let env = Env::new(Opts {
        workers: names.clone(),
        heartbeat: (5.0, 15.0),
        ..Default::default()
    });
    let pid = env.master.as_ref().unwrap().pid();
    let before = rss_kib(pid);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _workers = rt.block_on(async {
        let mut v = Vec::new();
        for (n, p) in &names {
            v.push(FakeWorker::connect(env.worker_port, n, p).await);
        }
        v
    });
    env.wait_workers(100);
    // Let a couple of heartbeat rounds pass so steady-state buffers are allocated.
    let h0 = now_ns();
    util::wait_for("two heartbeat intervals", Duration::from_secs(30), || {
        (now_ns() - h0 > 11_000_000_000).then_some(())
    });
    let after = rss_kib(pid);
    println!(
        "master RSS: {before} KiB with 0 workers, {after} KiB with 100 connected idle workers ({:.1} KiB per worker)",
        (after.saturating_sub(before)) as f64 / 100.0
    );
}
