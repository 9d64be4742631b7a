//! Measurements for the fedora-messaging input, side by side with the fedmsg one (ignored by
//! default; they print numbers and assert no times, DESIGN §10):
//!
//!   cargo build --release --workspace --bins
//!   cargo test --release -p taskotron-e2e --test trigger_amqp_bench -- --ignored --nocapture --test-threads 1
//!
//! - deliveries per second through intake + rules (inbox, consumers, rules, outbox) with the
//!   trigger pinned to one core (`taskset -c 0`), from a real RabbitMQ queue filled beforehand
//!   and from a burst of a real fedmsg publisher;
//! - publish → change-hook POST latency, median of 100, each bus in turn in one run.

mod amqp_support;
mod trigger_support;
mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use amqp_support::{amqp_section, fm_publish, koji_body, RabbitMq};
use serde_json::{json, Value};
use trigger_support::{count_rows, Publisher, StandInMaster, Trigger};

const T: Duration = Duration::from_secs(300);
const KOJI_TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";

fn config(dir: &Path, amqp_url: &str, relay: u16, master: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "- when: {message_type: KojiBuildPackageCompleted}\n  do:\n    - {tasks: [rpmlint]}\n",
    )
    .unwrap();
    let cfg = format!(
        "bind_endpoints: [\"tcp://127.0.0.1:{relay}\"]\nrules: {rules}\nstate_dir: {state}\n\
         git_cache_dir: {cache}\nfuse_delay: 0\nmaster:\n  url: {master}\n  retry_initial_ms: 20\n  retry_max_ms: 100\n{amqp}  queue: bench\n  prefetch: 500\n",
        rules = dir.join("rules.yml").display(),
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
        amqp = amqp_section(amqp_url, None),
    );
    let path = dir.join("trigger.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The trigger pinned to CPU 0 (when taskset is there).
fn pinned_trigger(cfg: &Path) -> Trigger {
    let taskset = Path::new("/usr/bin/taskset");
    if !taskset.exists() {
        eprintln!("taskset missing: the trigger is not pinned");
        return Trigger::start(cfg);
    }
    // Trigger::start runs the binary; a wrapper script puts taskset in front of it.
    let dir = cfg.parent().unwrap();
    let wrapper = dir.join("taskotron-trigger-pinned");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec taskset -c 0 {} \"$@\"\n",
            util::bin("taskotron-trigger").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut cmd = Command::new(&wrapper);
    cmd.args(["--log-level", "info", "run", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Trigger::from_command("taskotron-trigger (pinned)", cmd, cfg)
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n} messages in {:.2} s = {:.0}/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

/// Time until `n` messages are handled (recorded in `seen`), polled every 10 ms.
fn time_until_seen(state: &Path, n: i64, since: Instant) -> Duration {
    util::wait_for(&format!("{n} messages handled"), T, || {
        (count_rows(state, "seen") >= n).then(|| since.elapsed())
    })
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn deliveries_per_second_through_intake_and_rules_on_one_core() {
    for n in [900usize, 5000] {
        let dir = tempfile::tempdir().unwrap();
        let mq = RabbitMq::start(dir.path());
        let cfg = config(
            dir.path(),
            &mq.url(),
            util::free_port(),
            "http://127.0.0.1:9",
        );
        // Declare and bind the queue, then stop: the messages wait in the broker.
        {
            let t = Trigger::start(&cfg);
            t.wait_log("amqp: consuming", 1, T);
        }
        let actions: Vec<Value> = (0..n)
            .map(|i| json!({"publish": {"topic": KOJI_TOPIC, "body": koji_body(i)}}))
            .collect();
        fm_publish(dir.path(), &mq.url(), &Value::Array(actions));
        assert_eq!(mq.queue_depth("bench"), Some(n as u64));
        let state = dir.path().join("state");
        let before = count_rows(&state, "seen");
        let t0 = Instant::now();
        let trigger = pinned_trigger(&cfg);
        let took = time_until_seen(&state, before + n as i64, t0);
        println!(
            "AMQP, queue filled beforehand, from trigger start: {}",
            rate(n, took)
        );
        drop(trigger);
    }

    // fedmsg: a burst of 900 from the real publisher (under libzmq's send HWM of 1,000).
    let dir = tempfile::tempdir().unwrap();
    let relay = util::free_port();
    let mq = RabbitMq::start(dir.path());
    let cfg = config(dir.path(), &mq.url(), relay, "http://127.0.0.1:9");
    let trigger = pinned_trigger(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    let actions: Vec<Value> = (0..900)
        .map(|i| json!({"publish": {"modname": "buildsys", "topic": "build.state.change", "msg": koji_body(i)}}))
        .collect();
    let mut publisher = Publisher::start(dir.path(), relay, &Value::Array(actions));
    trigger.wait_log("publisher connected", 1, T);
    let t0 = Instant::now();
    publisher.go();
    let published = t0.elapsed();
    let took = time_until_seen(&dir.path().join("state"), 900, t0);
    println!(
        "fedmsg, burst from the real publisher (it took {:.2} s to send): {}",
        published.as_secs_f64(),
        rate(900, took)
    );
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn publish_to_change_hook_latency_median_of_100_fedmsg_and_amqp() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let relay = util::free_port();
    let master = StandInMaster::start(util::free_port());
    let cfg = config(dir.path(), &mq.url(), relay, &master.url());
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("SUB bound", 1, T);
    trigger.wait_log("amqp: consuming", 1, T);

    let mut driver = Command::new(util::venv_bin("python"))
        .arg(util::repo_root().join("tests/amqp_support/latency_driver.py"))
        .arg(format!("tcp://127.0.0.1:{relay}"))
        .arg(mq.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = driver.stdin.take().unwrap();
    let mut stdout = BufReader::new(driver.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    trigger.wait_log("publisher connected", 1, T);

    let mut next = 0usize;
    let mut one = |bus: &str| -> Duration {
        let i = next;
        next += 1;
        writeln!(stdin, "{bus} {i}").unwrap();
        stdin.flush().unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let t0: f64 = line.trim().parse().unwrap();
        let item = format!("pkg{i}-1.0-1.fc40");
        let at = util::wait_for(&format!("{bus} job {i}"), Duration::from_secs(30), || {
            master
                .submissions()
                .iter()
                .find(|s| s.properties["item"] == item.as_str())
                .map(|s| s.at)
        });
        let arrived = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        Duration::from_secs_f64((arrived - t0).max(0.0))
    };
    // Warm up both paths (fedmsg's slow joiner, AMQP's first channel use).
    for _ in 0..5 {
        one("fedmsg");
        one("amqp");
    }
    let (mut fedmsg, mut amqp) = (vec![], vec![]);
    // Interleaved, so both see the same machine load.
    for _ in 0..100 {
        fedmsg.push(one("fedmsg"));
        amqp.push(one("amqp"));
    }
    let _ = driver.kill();
    let _ = driver.wait();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (name, mut lat) in [
        ("fedmsg (ZeroMQ)", fedmsg),
        ("fedora-messaging (AMQP)", amqp),
    ] {
        lat.sort();
        println!(
            "{name}: publish -> change_hook POST, 100 messages: median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms",
            ms(lat[49]),
            ms(lat[89]),
            ms(lat[0]),
            ms(lat[99])
        );
    }
}
