//! A slow git server must not cost bus messages: the trigger stores every message in its
//! inbox on receipt and runs `discover` off the intake path, on a bounded pool with a timeout.
//!
//! Real parts: a real fedmsg 1.1.7 publisher (pyzmq, loopback), the real trigger binary, real
//! git repositories. The dist-git stand-in is a `git` wrapper on the trigger's `PATH` that makes
//! every git command for one repository wait on a gate the test holds
//! (tests/trigger_support/slow_git.rs).

mod trigger_support;
mod util;

mod ui_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use trigger_support::slow_git::{alive, task_repo, SlowGit};
use trigger_support::{count_rows, write_config, Publisher, StandInMaster, Trigger};
use ui_support::sample;

const T: Duration = Duration::from_secs(90);
const TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";

/// Every Koji build gets rpmlint; `slow*` builds also discover the slow repository, and
/// `pkg…0` builds the fast one.
fn rules(dir: &Path, slow: &Path, fast: &Path) -> std::path::PathBuf {
    let p = dir.join("rules.yml");
    std::fs::write(
        &p,
        format!(
            "- when: {{message_type: KojiBuildPackageCompleted}}\n  do:\n    - {{tasks: [rpmlint]}}\n\
             - when: {{message_type: KojiBuildPackageCompleted, name: {{$regex: '/^slow/'}}}}\n  do:\n    - {{discover: {{repo: '{}'}}, arches: [noarch]}}\n\
             - when: {{message_type: KojiBuildPackageCompleted, name: {{$regex: '/^pkg[0-9]*0$/'}}}}\n  do:\n    - {{discover: {{repo: '{}'}}, arches: [noarch]}}\n",
            slow.display(),
            fast.display()
        ),
    )
    .unwrap();
    p
}

/// A complete fedmsg envelope for a Koji build of `name` (sent byte for byte, so a repeat has
/// the same msg_id, like one message arriving through two endpoints).
fn envelope(name: &str) -> serde_json::Value {
    let body = json!({
        "topic": TOPIC, "msg_id": format!("2026-slow-git-test-{name}"), "timestamp": 1700000000,
        "i": 1, "username": "test",
        "msg": {"build_id": 1, "instance": "primary", "name": name, "new": 1, "old": 0,
                "owner": "x", "release": "1.fc30", "version": "1.0"}
    });
    json!({"body": body.to_string()})
}

fn item(name: &str) -> String {
    format!("{name}-1.0-1.fc30")
}

/// Waits until the master has `n` distinct jobs.
fn wait_jobs(master: &StandInMaster, what: &str, n: usize) {
    util::wait_for(what, T, || (received(master).len() == n).then_some(()));
}

/// The distinct jobs the master got.
fn job_set(master: &StandInMaster) -> BTreeSet<(String, String)> {
    received(master).into_keys().collect()
}

/// Asserts the master got exactly the jobs in `want`, each once.
fn assert_each_once(master: &StandInMaster, want: &BTreeSet<(String, String)>) {
    let got = received(master);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), *want);
    assert!(
        got.values().all(|n| *n == 1),
        "a job arrived twice: {got:?}"
    );
}

/// (item, taskname) -> how many times the master got it.
fn received(master: &StandInMaster) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for s in master.submissions() {
        let key = (
            s.properties["item"].as_str().unwrap().to_string(),
            s.properties["taskname"].as_str().unwrap().to_string(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// The jobs a build of `name` should make.
fn expected(name: &str) -> Vec<(String, String)> {
    let mut v = vec![(item(name), "rpmlint".to_string())];
    if name.starts_with("slow") {
        v.push((item(name), "slow-dist-git".to_string()));
    } else if name.ends_with('0') {
        v.push((item(name), "fast-tasks".to_string()));
    }
    v
}

fn scrape(port: u16) -> String {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .unwrap()
        .text()
        .unwrap()
}

/// A sample's value; a series not (yet) in the scrape counts as 0.
fn metric(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or(0.0)
}

/// Asserts one sample of scrape `m` (the panic shows the whole scrape).
fn assert_metric(m: &str, name: &str, want: f64) {
    assert_eq!(metric(m, name), want, "{name} in\n{m}");
}

/// Scrapes until `cond` holds; on timeout the panic shows the last scrape.
fn wait_metrics(port: u16, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + T;
    loop {
        let t = scrape(port);
        if cond(&t) {
            return t;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last scrape:\n{t}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Seconds since midnight of a trigger log line (`2026-01-01T12:34:56.123456Z ...`).
fn log_time(line: &str) -> Option<f64> {
    let t = line.split_whitespace().next()?.split('T').nth(1)?;
    let t = t.trim_end_matches('Z');
    let mut parts = t.split(':');
    let (h, m, s): (f64, f64, f64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    Some(h * 3600.0 + m * 60.0 + s)
}

/// One test's parts: the slow and the fast task repository, the git wrapper (gate closed), a
/// stand-in master and a trigger config. `http` (YAML) turns on the trigger's HTTP server on
/// `hport` and is appended after its `listen` line.
struct World {
    dir: tempfile::TempDir,
    slow_repo: PathBuf,
    git: SlowGit,
    relay: u16,
    hport: u16,
    master: StandInMaster,
    cfg: PathBuf,
}

impl World {
    fn new(http: Option<&str>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let slow_repo = task_repo(dir.path(), "slow-dist-git");
        let fast_repo = task_repo(dir.path(), "fast-tasks");
        let git = SlowGit::new(dir.path(), "slow-dist-git");
        let (relay, mport) = (util::free_port(), util::free_port());
        let master = StandInMaster::start(mport);
        let (hport, extra) = match http {
            Some(more) => {
                let hport = util::free_port();
                (hport, format!("http:\n  listen: 127.0.0.1:{hport}\n{more}"))
            }
            None => (0, String::new()),
        };
        let cfg = write_config(
            dir.path(),
            relay,
            &master.url(),
            &rules(dir.path(), &slow_repo, &fast_repo),
            &extra,
        );
        World {
            dir,
            slow_repo,
            git,
            relay,
            hport,
            master,
            cfg,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts the trigger with the git wrapper first on its `PATH`; waits until it listens.
    fn start_trigger(&self) -> Trigger {
        let trigger = Trigger::start_with_env(&self.cfg, &[self.git.path_env()]);
        trigger.wait_log("SUB bound", 1, T);
        trigger
    }

    /// Publishes `actions` from a new fedmsg publisher, the trigger's `nth` connection. Keep
    /// the returned publisher alive: dropping it kills the process, and with it whatever
    /// ZeroMQ has not sent yet.
    fn publish(&self, trigger: &Trigger, actions: serde_json::Value, nth: usize) -> Publisher {
        let mut publisher = Publisher::start(self.dir.path(), self.relay, &actions);
        trigger.wait_log("publisher connected", nth, T);
        publisher.go();
        publisher
    }

    fn wait_outbox_and_inbox_empty(&self) {
        let state = self.state();
        util::wait_for("outbox and inbox empty", T, || {
            (count_rows(&state, "jobs") == 0 && count_rows(&state, "inbox") == 0).then_some(())
        });
    }
}

#[test]
fn a_hanging_git_server_delays_only_its_own_message_and_nothing_is_lost() {
    let mut w = World::new(Some("discover_concurrency: 4\n"));
    let trigger = w.start_trigger();

    // The slow build first: its discover hangs at the gate.
    let _first = w.publish(&trigger, json!([envelope("slow-1")]), 1);
    util::wait_for("the slow discover to hang", T, || {
        (!w.git.waits().is_empty()).then_some(())
    });

    // While it hangs: 900 other builds (90 of them discover the fast repository), plus 20
    // repeats that must be recognised by msg_id. The burst stays under the publisher's send
    // high-water mark: fedmsg treats `high_water_mark: 0` as "leave libzmq's default", 1,000
    // messages, and a PUB socket drops what exceeds it whenever the subscriber is not reading
    // at that instant (on a loaded test machine a burst of 1,020 sometimes lost its last 20).
    const N: usize = 900;
    let names: Vec<String> = (0..N).map(|i| format!("pkg{i}")).collect();
    let mut actions: Vec<_> = names.iter().map(|n| envelope(n)).collect();
    actions.extend(names.iter().step_by(45).map(|n| envelope(n)));
    let repeats = N.div_ceil(45);
    let _flood = w.publish(&trigger, json!(actions), 2);

    let want_fast: BTreeSet<(String, String)> = names.iter().flat_map(|n| expected(n)).collect();
    assert_eq!(want_fast.len(), N + N / 10);
    wait_jobs(&w.master, "every job of the other builds", want_fast.len());
    assert_each_once(&w.master, &want_fast);
    assert_eq!(
        w.git.waits().len(),
        1,
        "the slow discover is still stuck at the gate"
    );
    let m = wait_metrics(
        w.hport,
        "every message received or recognised as a repeat",
        |t| {
            metric(t, "taskotron_trigger_inbox_received_total")
                + metric(t, "taskotron_trigger_messages_duplicate_total")
                >= (N + 1 + repeats) as f64
        },
    );
    assert_metric(&m, "taskotron_trigger_inbox_received_total", (N + 1) as f64);
    assert_metric(
        &m,
        "taskotron_trigger_messages_duplicate_total",
        repeats as f64,
    );
    assert_metric(&m, "taskotron_trigger_inbox_depth", 1.0);
    assert_metric(&m, "taskotron_trigger_discover_in_flight", 1.0);
    assert_metric(&m, "taskotron_trigger_inbox_dropped_total", 0.0);
    let health = reqwest::blocking::get(format!("http://127.0.0.1:{}/healthz", w.hport))
        .unwrap()
        .text()
        .unwrap();
    assert!(health.contains("inbox: 1 waiting"), "{health}");

    // Intake rate while the discover hangs, from the trigger's own log timestamps.
    let log = trigger.log();
    let stored: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("message stored in the inbox") && !l.contains("slow-1"))
        .filter_map(log_time)
        .collect();
    assert_eq!(stored.len(), N);
    let span = stored[N - 1] - stored[0];
    println!(
        "intake while a discover hangs: {N} messages (+{repeats} repeats) stored in {:.3} s = {:.0} messages/s \
         (fedmsg/pyzmq publisher on loopback, debug build)",
        span,
        (N - 1) as f64 / span.max(1e-6)
    );

    // Open the gate: the slow build's jobs arrive too, exactly once.
    w.git.gate.open();
    let mut want = want_fast.clone();
    want.extend(expected("slow-1"));
    wait_jobs(&w.master, "the slow build's jobs", want.len());
    w.wait_outbox_and_inbox_empty();
    assert_each_once(&w.master, &want);
    assert_eq!(w.master.submissions().len(), want.len());
}

#[test]
fn messages_held_by_a_hanging_discover_survive_a_sigkill_and_run_once_after_restart() {
    let mut w = World::new(None);
    let state = w.state();
    let slow: Vec<String> = (0..10).map(|i| format!("slow{i}")).collect();
    let fast: Vec<String> = (0..20).map(|i| format!("pkg{i}")).collect();
    let want_fast: BTreeSet<(String, String)> = fast.iter().flat_map(|n| expected(n)).collect();
    {
        let mut trigger = w.start_trigger();
        // Slow and fast builds interleaved.
        let actions: Vec<_> = (0..fast.len())
            .flat_map(|i| {
                let mut v = vec![envelope(&fast[i])];
                if let Some(s) = slow.get(i) {
                    v.push(envelope(s));
                }
                v
            })
            .collect();
        let _publisher = w.publish(&trigger, json!(actions), 1);
        wait_jobs(&w.master, "the fast builds' jobs", want_fast.len());
        util::wait_for("the slow builds held in the inbox", T, || {
            (count_rows(&state, "inbox") == slow.len() as i64 && !w.git.waits().is_empty())
                .then_some(())
        });
        trigger.guard.signal(libc::SIGKILL);
        trigger.guard.wait_exit(T);
    }
    assert_eq!(count_rows(&state, "inbox"), slow.len() as i64);
    let waits_before = w.git.waits().len();

    let trigger = Trigger::start_with_env(&w.cfg, &[w.git.path_env()]);
    trigger.wait_log("resuming messages left in the inbox", 1, T);
    util::wait_for("the restarted trigger's discover to hang", T, || {
        (w.git.waits().len() > waits_before).then_some(())
    });
    w.git.gate.open();
    let mut want = want_fast.clone();
    want.extend(slow.iter().flat_map(|n| expected(n)));
    wait_jobs(&w.master, "every job", want.len());
    w.wait_outbox_and_inbox_empty();
    assert_each_once(&w.master, &want);
    assert_eq!(w.master.submissions().len(), want.len());
    drop(trigger);
}

#[test]
fn a_discover_past_its_timeout_is_killed_and_counted_and_the_message_still_finishes() {
    // The gate is never opened: only the timeout can end the discover.
    let w = World::new(Some("discover_timeout_secs: 1\n"));
    let trigger = w.start_trigger();
    let _publisher = w.publish(&trigger, json!([envelope("slow-1"), envelope("pkg10")]), 1);

    trigger.wait_log("discover timed out", 1, T);
    let line = trigger
        .log()
        .lines()
        .find(|l| l.contains("discover timed out"))
        .unwrap()
        .to_string();
    assert!(
        line.contains(&w.slow_repo.display().to_string()),
        "the log line names the repository: {line}"
    );
    assert!(line.contains("killed"), "{line}");
    // The git (and the wrapper waiting at the gate, in its process group) is gone.
    let waits = w.git.waits();
    assert_eq!(waits.len(), 1);
    util::wait_for("the waiting git to be gone", T, || {
        (!alive(waits[0])).then_some(())
    });

    // The message still finishes: its other jobs arrive, the failed discover makes none.
    let mut want: BTreeSet<(String, String)> = expected("pkg10").into_iter().collect();
    want.insert((item("slow-1"), "rpmlint".into()));
    wait_jobs(&w.master, "the remaining jobs", want.len());
    assert_eq!(job_set(&w.master), want);
    let m = wait_metrics(w.hport, "inbox empty", |t| {
        metric(t, "taskotron_trigger_inbox_depth") == 0.0
    });
    assert_metric(&m, "taskotron_trigger_discover_timeouts_total", 1.0);
    assert_metric(&m, "taskotron_trigger_discover_in_flight", 0.0);
}

#[test]
fn a_full_inbox_drops_visibly_and_the_bus_is_still_read() {
    let mut w = World::new(Some("inbox_capacity: 3\n"));
    let trigger = w.start_trigger();
    // Six builds whose discovers hang: three fit in the inbox, three are dropped.
    let slow: Vec<String> = (0..6).map(|i| format!("slow{i}")).collect();
    let _publisher = w.publish(
        &trigger,
        json!(slow.iter().map(|n| envelope(n)).collect::<Vec<_>>()),
        1,
    );
    let m = wait_metrics(w.hport, "drops counted", |t| {
        metric(t, "taskotron_trigger_inbox_dropped_total") == 3.0
    });
    assert_metric(&m, "taskotron_trigger_inbox_depth", 3.0);
    assert_metric(&m, "taskotron_trigger_inbox_received_total", 3.0);
    trigger.wait_log("inbox full (inbox_capacity): message dropped", 3, T);
    for n in &slow[3..] {
        assert!(
            trigger
                .log()
                .lines()
                .any(|l| l.contains("inbox full") && l.contains(&format!("test-{n} "))),
            "the error line names the dropped message {n}"
        );
    }

    // Processing catches up; the socket was read all along, so new messages get through.
    w.git.gate.open();
    let mut want: BTreeSet<(String, String)> = slow[..3].iter().flat_map(|n| expected(n)).collect();
    wait_jobs(&w.master, "the stored builds' jobs", want.len());
    let _more = w.publish(&trigger, json!([envelope("pkg7")]), 2);
    want.extend(expected("pkg7"));
    wait_jobs(&w.master, "the later build's job", want.len());
    assert_eq!(job_set(&w.master), want);
}
