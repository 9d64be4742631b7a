//! The master's `/metrics` and `/readyz` against the real binaries: the values move as a job
//! is queued, dispatched and finished and as a worker stops answering keepalives, and every
//! scrape passes `promtool check metrics` (Debian's prometheus package).

mod master_support;
mod ui_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts, TOKEN};
use ui_support::{promtool_check, sample};

fn scrape(env: &Env) -> String {
    let r = reqwest::blocking::get(env.url("/metrics")).unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = r.text().unwrap();
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- scrape ---\n{text}");
    }
    text
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[test]
fn metrics_follow_a_job_and_a_lost_worker_and_pass_promtool() {
    let env = Env::new(Opts::default());
    assert_eq!(
        reqwest::blocking::get(env.url("/readyz")).unwrap().status(),
        200
    );

    let before = scrape(&env);
    assert_eq!(
        value(&before, "taskotron_master_builds_total{result=\"success\"}"),
        0.0
    );
    assert_eq!(value(&before, "taskotron_master_workers_connected"), 0.0);
    assert_eq!(value(&before, "taskotron_master_workers_configured"), 1.0);
    assert_eq!(
        value(&before, "taskotron_master_dispatch_latency_seconds_count"),
        0.0
    );
    assert_eq!(value(&before, "taskotron_master_mirror_repos"), 1.0);

    // Queued with no worker: the queue depth shows it, by arch.
    let (st, body) = env.post_change("metrics-job-1", "bash-5.0-1.fc32");
    assert_eq!(st, 200, "{body}");
    let bad = reqwest::blocking::Client::new()
        .post(env.url("/change_hook/base"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("project=rpmcheck&category=x86_64&properties=%7Bnot-json")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let queued = scrape(&env);
    assert_eq!(
        value(&queued, "taskotron_master_queue_depth{arch=\"x86_64\"}"),
        1.0
    );
    assert_eq!(
        value(
            &queued,
            "taskotron_master_change_hook_requests_total{code=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &queued,
            "taskotron_master_change_hook_requests_total{code=\"400\"}"
        ),
        1.0
    );

    // A worker runs it.
    let mut worker = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    let build = env.wait_done("metrics-job-1", Duration::from_secs(120));
    assert_eq!(build["results"], 0, "{build}\n{}", env.master_log());
    let done = scrape(&env);
    assert_eq!(
        value(&done, "taskotron_master_builds_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        value(&done, "taskotron_master_dispatch_latency_seconds_count"),
        1.0
    );
    assert_eq!(
        value(
            &done,
            "taskotron_master_dispatch_latency_seconds_bucket{le=\"+Inf\"}"
        ),
        1.0
    );
    assert!(value(&done, "taskotron_master_dispatch_latency_seconds_sum") > 0.0);
    assert_eq!(value(&done, "taskotron_master_workers_connected"), 1.0);
    assert_eq!(value(&done, "taskotron_master_builds_running"), 0.0);
    assert!(
        sample(&done, "taskotron_master_queue_depth{arch=\"x86_64\"}").is_none(),
        "{done}"
    );

    // A frozen worker misses its keepalive (heartbeat 1 s, timeout 3 s) and is declared lost.
    worker.signal(libc::SIGSTOP);
    let lost = util::wait_for("worker declared lost", Duration::from_secs(30), || {
        let t = scrape(&env);
        (value(&t, "taskotron_master_workers_lost_total") >= 1.0).then_some(t)
    });
    assert_eq!(value(&lost, "taskotron_master_heartbeat_misses_total"), 1.0);
    worker.signal(libc::SIGCONT);
    let _ = worker.child.kill();
}

#[test]
fn mirror_refresh_errors_are_counted() {
    let mut env = Env::new(Opts::default());
    let ok = scrape(&env);
    assert_eq!(
        value(&ok, "taskotron_master_mirror_refresh_errors_total"),
        0.0
    );
    assert_eq!(value(&ok, "taskotron_master_mirror_repos_failing"), 0.0);
    // The task's upstream repository disappears; the refresh at the next start fails.
    env.stop_master();
    std::fs::rename(
        env.root().join("task-demo"),
        env.root().join("task-demo.gone"),
    )
    .unwrap();
    env.start_master();
    let failing = scrape(&env);
    assert_eq!(
        value(&failing, "taskotron_master_mirror_refresh_errors_total"),
        1.0,
        "{failing}"
    );
    assert_eq!(
        value(&failing, "taskotron_master_mirror_repos_failing"),
        1.0
    );
    assert_eq!(value(&failing, "taskotron_master_mirror_repos"), 1.0);
    let repos = reqwest::blocking::get(env.url("/ui/repos"))
        .unwrap()
        .text()
        .unwrap();
    assert!(repos.contains("badge r-failure"), "{repos}");
}
