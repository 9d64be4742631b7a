//! End to end over fedora-messaging: a real RabbitMQ (Debian's rabbitmq-server on loopback),
//! the real fedora-messaging 3.9.1 library (and raw pika) publishing, taskotron-trigger's AMQP
//! input, and the loopback stand-in master's change hook.

mod amqp_support;
mod trigger_support;
mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amqp_support::{amqp_section, fm_publish, koji_body, RabbitMq};
use serde_json::{json, Value};
use trigger_support::{count_rows, StandInMaster, Trigger};

const T: Duration = Duration::from_secs(90);
const KOJI_TOPIC: &str = "org.fedoraproject.prod.buildsys.build.state.change";

fn fx(name: &str) -> PathBuf {
    util::fixtures().join("fedmsg").join(name)
}

/// A trigger config with only the AMQP input; `extra` is appended YAML.
fn amqp_config(
    dir: &Path,
    url: &str,
    queue: Option<&str>,
    master: &str,
    rules: &Path,
    extra: &str,
) -> PathBuf {
    let cfg = format!(
        "rules: {rules}\nstate_dir: {state}\ngit_cache_dir: {cache}\nfuse_delay: 0\n\
         master:\n  url: {master}\n  retry_initial_ms: 50\n  retry_max_ms: 200\n  timeout_secs: 5\n{amqp}{extra}",
        rules = rules.display(),
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
        amqp = amqp_section(url, queue),
    );
    let path = dir.join("trigger.yaml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, cfg).unwrap();
    path
}

fn rpmlint_rules(dir: &Path) -> PathBuf {
    let p = dir.join("rules.yml");
    std::fs::write(
        &p,
        "- when: {message_type: KojiBuildPackageCompleted}\n  do:\n    - {tasks: [rpmlint]}\n",
    )
    .unwrap();
    p
}

/// (taskname, item, item_type, arch) of a job, from a submission or check-rules line.
type JobKey = (String, String, String, String);

fn job_key(p: &Value) -> JobKey {
    let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    (s("taskname"), s("item"), s("item_type"), s("arch"))
}

/// The jobs `check-rules` makes of a fedmsg envelope file.
fn check_rules(rules: &Path, message: &Path) -> Vec<JobKey> {
    let out = Command::new(util::bin("taskotron-trigger"))
        .args([
            "check-rules",
            "--no-discover",
            "--valid-arches",
            "x86_64,armhfp",
            "--rules",
        ])
        .arg(rules)
        .arg("--message")
        .arg(message)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("taskname").is_some())
        .map(|v| job_key(&v))
        .collect()
}

fn submitted(master: &StandInMaster) -> Vec<JobKey> {
    master
        .submissions()
        .iter()
        .map(|s| job_key(&s.properties))
        .collect()
}

/// Per item: how many distinct job uuids the master got (each must be exactly one).
fn uuids_per_item(master: &StandInMaster) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in master.submissions() {
        m.entry(s.properties["item"].as_str().unwrap().to_string())
            .or_default()
            .insert(s.properties["uuid"].as_str().unwrap().to_string());
    }
    m
}

fn metrics(port: u16) -> String {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default()
}

fn healthz(port: u16) -> String {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
        .and_then(|r| r.text())
        .unwrap_or_default()
}

fn koji_publishes(range: std::ops::Range<usize>) -> Value {
    Value::Array(
        range
            .map(|i| json!({"publish": {"topic": KOJI_TOPIC, "body": koji_body(i)}}))
            .collect(),
    )
}

#[test]
fn fedora_messaging_fixtures_give_the_jobs_of_their_2017_fedmsg_forms_with_the_real_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    // One trigger per real rules file (each on its own queue, so each gets every message), and
    // one with a Bodhi rule, since none of the real files reacts to Bodhi's CI message.
    let bodhi_rules = dir.path().join("bodhi-rules.yml");
    std::fs::write(
        &bodhi_rules,
        "- when: {message_type: BodhiUpdate}\n  do:\n    - {tasks: [dist.depcheck], arches: [noarch]}\n",
    )
    .unwrap();
    let rule_files: Vec<PathBuf> = [
        "trigger_rules.2016-10.yml",
        "trigger_rules.prod-2017-08.yml",
        "trigger_rules.prod-2020-02.yml",
    ]
    .iter()
    .map(|f| util::fixtures().join("taskotron").join(f))
    .chain([bodhi_rules])
    .collect();
    let mut runs = vec![];
    for (i, rules) in rule_files.iter().enumerate() {
        let sub = dir.path().join(format!("t{i}"));
        let master = StandInMaster::start(util::free_port());
        let cfg = amqp_config(
            &sub,
            &mq.url(),
            Some(&format!("taskotron-trigger-{i}")),
            &master.url(),
            rules,
            "valid_arches: [x86_64, armhfp]\n",
        );
        let trigger = Trigger::start(&cfg);
        trigger.wait_log("amqp: consuming", 1, T);
        runs.push((rules.clone(), sub, master, trigger));
    }

    let fm_files = [
        "fedora-messaging.buildsys.build.state.change.complete.json",
        "fedora-messaging.bodhi.update.status.testing.koji-build-group.build.complete.json",
        "fedora-messaging.git.receive.json",
    ];
    fm_publish(
        dir.path(),
        &mq.url(),
        &Value::Array(fm_files.iter().map(|f| json!({"file": fx(f)})).collect()),
    );

    // The 2017 forms: the fedmsg envelope around the body without the keys Koji's
    // fedora-messaging plugin added since (epoch, task, creation/completion_time, url).
    let mut old_forms = vec![];
    for f in fm_files {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(fx(f)).unwrap()).unwrap();
        let mut body = m["body"].clone();
        for k in ["epoch", "task", "creation_time", "completion_time", "url"] {
            body.as_object_mut().unwrap().remove(k);
        }
        let path = dir.path().join(format!("old-{f}"));
        let env = json!({"topic": m["topic"], "msg": body, "msg_id": "2017-old", "timestamp": 1});
        std::fs::write(&path, env.to_string()).unwrap();
        old_forms.push(path);
    }
    // Bodhi's message came through the AMQP->ZeroMQ bridge as a real fedmsg; it must agree too.
    old_forms.push(fx(
        "fedmsg.bodhi.update.status.testing.koji-build-group.build.complete.json",
    ));

    let mut total = 0;
    for (rules, sub, master, trigger) in &runs {
        let mut want: Vec<JobKey> = fm_files
            .iter()
            .zip(&old_forms)
            .flat_map(|(_, old)| check_rules(rules, old))
            .collect();
        let bridged = check_rules(rules, old_forms.last().unwrap());
        let from_old_bodhi = check_rules(rules, &old_forms[1]);
        assert_eq!(
            bridged, from_old_bodhi,
            "bridged fedmsg form of the Bodhi message"
        );
        want.sort();
        let state = sub.join("state");
        util::wait_for(
            &format!("3 messages handled ({})", rules.display()),
            T,
            || (count_rows(&state, "seen") == 3 && count_rows(&state, "jobs") == 0).then_some(()),
        );
        let _ = trigger;
        let mut got = submitted(master);
        got.sort();
        assert_eq!(got, want, "rules {}", rules.display());
        total += got.len();
    }
    // Not vacuous: the Koji message makes jobs under every real rules file, Bodhi's under its rule.
    assert!(total >= 8, "only {total} jobs in all");
    let (_, _, bodhi_master, _) = runs.last().unwrap();
    assert_eq!(
        submitted(bodhi_master),
        [(
            "dist.depcheck".to_string(),
            "FEDORA-2021-53a7dfa185".to_string(),
            "bodhi_update".to_string(),
            "noarch".to_string()
        )]
    );
}

#[test]
fn two_hundred_messages_while_the_master_is_down_give_exactly_two_hundred_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let mport = util::free_port();
    let rules = rpmlint_rules(dir.path());
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        Some("taskotron-trigger"),
        &format!("http://127.0.0.1:{mport}"),
        &rules,
        "",
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("amqp: consuming", 1, T);
    fm_publish(dir.path(), &mq.url(), &koji_publishes(0..200));
    let state = dir.path().join("state");
    util::wait_for("200 jobs in the outbox", T, || {
        (count_rows(&state, "jobs") == 200).then_some(())
    });
    trigger.wait_log("master unavailable", 1, T);

    let master = StandInMaster::start(mport);
    util::wait_for("outbox drained", T, || {
        (count_rows(&state, "jobs") == 0).then_some(())
    });
    let per_item = uuids_per_item(&master);
    assert_eq!(master.submissions().len(), 200, "each job exactly once");
    assert_eq!(
        per_item.keys().cloned().collect::<BTreeSet<_>>(),
        (0..200).map(|i| format!("pkg{i}-1.0-1.fc40")).collect()
    );
    assert_eq!(mq.queue_depth("taskotron-trigger"), Some(0), "all acked");
}

#[test]
fn a_trigger_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let mport = util::free_port();
    let rules = rpmlint_rules(dir.path());
    // A small prefetch keeps deliveries unacked in flight when the kill comes.
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        Some("taskotron-trigger"),
        &format!("http://127.0.0.1:{mport}"),
        &rules,
        "  prefetch: 5\n",
    );
    let state = dir.path().join("state");
    const N: usize = 300;
    let url = mq.url();
    let pub_dir = dir.path().to_path_buf();
    let publisher = {
        let mut trigger = Trigger::start(&cfg);
        trigger.wait_log("amqp: consuming", 1, T);
        let publisher =
            std::thread::spawn(move || fm_publish(&pub_dir, &url, &koji_publishes(0..N)));
        util::wait_for("some jobs recorded", T, || {
            (count_rows(&state, "jobs") >= 20).then_some(())
        });
        trigger.guard.signal(libc::SIGKILL);
        trigger.guard.wait_exit(T);
        publisher
    };
    let at_kill = count_rows(&state, "jobs");
    eprintln!("killed with {at_kill} of {N} messages' jobs recorded");
    publisher.join().unwrap();

    let trigger = Trigger::start(&cfg);
    trigger.wait_log("amqp: consuming", 1, T);
    util::wait_for(&format!("{N} jobs in the outbox"), T, || {
        (count_rows(&state, "jobs") == N as i64).then_some(())
    });
    // The master comes up only now, so every submission counts: none may be missing or twice.
    let master = StandInMaster::start(mport);
    util::wait_for("outbox drained", T, || {
        (count_rows(&state, "jobs") == 0).then_some(())
    });
    let per_item = uuids_per_item(&master);
    assert_eq!(master.submissions().len(), N);
    assert_eq!(per_item.len(), N);
    assert!(per_item.values().all(|u| u.len() == 1));
    assert_eq!(mq.queue_depth("taskotron-trigger"), Some(0));
    drop(trigger);
}

#[test]
fn a_broker_restart_mid_stream_is_survived_and_the_rest_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut mq = RabbitMq::start(dir.path());
    let master = StandInMaster::start(util::free_port());
    let rules = rpmlint_rules(dir.path());
    let hport = util::free_port();
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        Some("taskotron-trigger"),
        &master.url(),
        &rules,
        &format!("http:\n  listen: 127.0.0.1:{hport}\n"),
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("amqp: consuming", 1, T);
    assert!(
        healthz(hport).contains("amqp: connected"),
        "{}",
        healthz(hport)
    );
    fm_publish(dir.path(), &mq.url(), &koji_publishes(0..100));
    util::wait_for("first jobs submitted", T, || {
        (!master.submissions().is_empty()).then_some(())
    });

    mq.stop();
    util::wait_for("healthz says disconnected", T, || {
        healthz(hport).contains("amqp: disconnected").then_some(())
    });
    assert!(metrics(hport).contains("taskotron_trigger_amqp_connected 0\n"));
    mq.restart();
    trigger.wait_log("amqp: consuming", 2, T);
    fm_publish(dir.path(), &mq.url(), &koji_publishes(100..200));

    util::wait_for("200 items submitted", T, || {
        (uuids_per_item(&master).len() == 200).then_some(())
    });
    let per_item = uuids_per_item(&master);
    assert!(
        per_item.values().all(|u| u.len() == 1),
        "one job per message"
    );
    assert!(trigger
        .log()
        .contains("amqp: connection lost; reconnecting"));
    assert!(metrics(hport).contains("taskotron_trigger_amqp_connected 1\n"));
}

#[test]
fn poison_and_oversized_messages_are_acked_logged_and_counted_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let master = StandInMaster::start(util::free_port());
    let rules = rpmlint_rules(dir.path());
    let hport = util::free_port();
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        Some("taskotron-trigger"),
        &master.url(),
        &rules,
        &format!("max_message_bytes: 2000\nhttp:\n  listen: 127.0.0.1:{hport}\n"),
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("amqp: consuming", 1, T);
    let big = json!({"name": "x".repeat(3000), "new": 1}).to_string();
    fm_publish(
        dir.path(),
        &mq.url(),
        &json!([
            {"raw": {"topic": KOJI_TOPIC, "body": "{not json", "message_id": "p-1"}},
            {"raw": {"topic": KOJI_TOPIC, "body": "<xml/>", "content_type": "text/xml", "message_id": "p-2"}},
            {"raw": {"topic": KOJI_TOPIC, "body": big, "message_id": "p-3"}},
            // An unknown schema whose body lacks what the Koji consumer needs.
            {"raw": {"topic": KOJI_TOPIC, "body": "{\"new\": 1}", "schema": "no.such.Schema", "message_id": "p-4"}},
            {"publish": {"topic": KOJI_TOPIC, "body": koji_body(7)}},
        ]),
    );
    util::wait_for("the good message's job", T, || {
        (!master.submissions().is_empty()).then_some(())
    });
    trigger.wait_log("unusable message acked and dropped", 3, T);
    let log = trigger.log();
    for reason in [
        "body is not JSON",
        "content_type \"text/xml\"",
        "exceeds max_message_bytes",
    ] {
        assert!(log.contains(reason), "no log line for {reason}: {log}");
    }
    assert!(
        log.contains("field \"msg.name\""),
        "the malformed body is named: {log}"
    );
    assert_eq!(submitted(&master).len(), 1);
    assert_eq!(
        master.submissions()[0].properties["item"],
        "pkg7-1.0-1.fc40"
    );
    let m = metrics(hport);
    for reason in ["not_json", "content_type", "too_large"] {
        assert!(
            m.contains(&format!(
                "taskotron_trigger_amqp_poison_total{{reason=\"{reason}\"}} 1\n"
            )),
            "{m}"
        );
    }
    assert!(
        m.contains("taskotron_trigger_amqp_deliveries_total 5\n"),
        "{m}"
    );
    assert!(
        m.contains("taskotron_trigger_amqp_redeliveries_total 0\n"),
        "{m}"
    );
    util::wait_for("queue empty (nothing redelivered)", T, || {
        (mq.queue_depth("taskotron-trigger") == Some(0)).then_some(())
    });
}

#[test]
fn one_message_heard_on_both_buses_makes_its_jobs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let master = StandInMaster::start(util::free_port());
    let rules = rpmlint_rules(dir.path());
    let relay = util::free_port();
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        None,
        &master.url(),
        &rules,
        &format!("bind_endpoints: [\"tcp://127.0.0.1:{relay}\"]\n"),
    );
    let trigger = Trigger::start(&cfg);
    trigger.wait_log("amqp: consuming", 1, T);
    trigger.wait_log("SUB bound", 1, T);
    let id = "6a1c1e4e-9a3c-4b8e-8c53-2b0e6c1f0a11";
    fm_publish(
        dir.path(),
        &mq.url(),
        &json!([{"publish": {"topic": KOJI_TOPIC, "body": koji_body(1), "id": id}}]),
    );
    util::wait_for("the job", T, || {
        (!master.submissions().is_empty()).then_some(())
    });
    // The same message as the AMQP->ZeroMQ bridge re-publishes it.
    let bridged = dir.path().join("bridged.json");
    let env = json!({"topic": KOJI_TOPIC, "msg": koji_body(1), "msg_id": format!("2026-{id}"),
        "timestamp": 1, "i": 1, "username": "amqp-bridge"});
    std::fs::write(&bridged, env.to_string()).unwrap();
    let mut publisher = trigger_support::Publisher::start(
        dir.path(),
        relay,
        &json!([{"raw": bridged.display().to_string()}]),
    );
    trigger.wait_log("publisher connected", 1, T);
    publisher.go();
    trigger.wait_log("duplicate message ignored", 1, T);
    assert_eq!(master.submissions().len(), 1);
}

#[test]
fn a_full_inbox_hands_deliveries_back_to_the_broker_and_loses_none() {
    use trigger_support::slow_git::{task_repo, SlowGit};
    let dir = tempfile::tempdir().unwrap();
    let mq = RabbitMq::start(dir.path());
    let master = StandInMaster::start(util::free_port());
    // Every build discovers a repository whose git hangs until the gate opens, so messages stay
    // in the inbox (capacity 3) and the rest cannot be stored.
    let slow = task_repo(dir.path(), "slow-dist-git");
    let git = SlowGit::new(dir.path(), "slow-dist-git");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        format!(
            "- when: {{message_type: KojiBuildPackageCompleted}}\n  do:\n    - {{discover: {{repo: '{}'}}, arches: [noarch]}}\n",
            slow.display()
        ),
    )
    .unwrap();
    let hport = util::free_port();
    let cfg = amqp_config(
        dir.path(),
        &mq.url(),
        Some("taskotron-trigger"),
        &master.url(),
        &rules,
        &format!(
            "inbox_capacity: 3\ndiscover_concurrency: 1\nhttp:\n  listen: 127.0.0.1:{hport}\n"
        ),
    );
    let trigger = Trigger::start_with_env(&cfg, &[git.path_env()]);
    trigger.wait_log("amqp: consuming", 1, T);
    fm_publish(dir.path(), &mq.url(), &koji_publishes(0..8));
    util::wait_for("a discover stuck at the gate", T, || {
        (!git.waits().is_empty()).then_some(())
    });
    // The broker gets the 5 back and redelivers them (they are never dropped).
    util::wait_for("deliveries requeued and redelivered", T, || {
        let m = metrics(hport);
        (m.contains("taskotron_trigger_amqp_requeued_total 5\n")
            || m.lines().any(|l| {
                l.strip_prefix("taskotron_trigger_amqp_redeliveries_total ")
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n >= 5)
            }))
        .then_some(())
    });
    assert_eq!(count_rows(&dir.path().join("state"), "inbox"), 3);
    let m = metrics(hport);
    assert!(
        m.contains("taskotron_trigger_inbox_dropped_total 0\n"),
        "a full inbox is not a loss with AMQP: {m}"
    );
    assert!(trigger.log().contains("handed back to the broker"));
    assert!(master.submissions().is_empty());

    let mut gate = git.gate;
    gate.open();
    util::wait_for("8 jobs", T, || {
        (uuids_per_item(&master).len() == 8).then_some(())
    });
    let per_item = uuids_per_item(&master);
    assert!(per_item.values().all(|u| u.len() == 1));
    util::wait_for("queue empty", T, || {
        (mq.queue_depth("taskotron-trigger") == Some(0)).then_some(())
    });
}

#[test]
fn amqps_with_a_client_certificate_works_and_a_wrong_ca_or_no_certificate_is_refused() {
    use amqp_support::TestPki;
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::make(dir.path(), "pki");
    let other = TestPki::make(dir.path(), "other-pki");
    let mq = RabbitMq::start_tls(dir.path(), &pki);
    let master = StandInMaster::start(util::free_port());
    let rules = rpmlint_rules(dir.path());
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2F", mq.tls_port.unwrap());
    let tls = |ca: &Path, cert: Option<(&Path, &Path)>| {
        let mut s = format!("  tls:\n    ca: {}\n", ca.display());
        if let Some((c, k)) = cert {
            s.push_str(&format!(
                "    cert: {}\n    key: {}\n",
                c.display(),
                k.display()
            ));
        }
        s
    };
    let start = |name: &str, extra: String| {
        let cfg = amqp_config(
            &dir.path().join(name),
            &url,
            Some(name),
            &master.url(),
            &rules,
            &extra,
        );
        Trigger::start(&cfg)
    };
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let good = start("good", tls(&pki.ca, client));
    let wrong_ca = start("wrong-ca", tls(&other.ca, client));
    let no_cert = start("no-cert", tls(&pki.ca, None));
    good.wait_log("amqp: consuming", 1, T);
    wrong_ca.wait_log("amqp: connection lost", 2, T);
    no_cert.wait_log("amqp: connection lost", 2, T);

    // Published over TLS too, with the CLI's client certificate options.
    let out = Command::new(util::bin("taskotron-trigger"))
        .args(["publish", "--amqp", &url, "--amqp-ca"])
        .arg(&pki.ca)
        .arg("--amqp-cert")
        .arg(&pki.client_cert)
        .arg("--amqp-key")
        .arg(&pki.client_key)
        .arg(fx(
            "fedora-messaging.buildsys.build.state.change.complete.json",
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    util::wait_for("the job", T, || {
        (!master.submissions().is_empty()).then_some(())
    });
    assert_eq!(
        master.submissions()[0].properties["item"],
        "chromium-80.0.3987.132-1.fc33"
    );
    for refused in [&wrong_ca, &no_cert] {
        assert!(
            !refused.log().contains("amqp: consuming"),
            "{}",
            refused.log()
        );
    }
    assert!(
        wrong_ca.log().contains("certificate") || wrong_ca.log().contains("Certificate"),
        "the TLS error is named: {}",
        wrong_ca.log()
    );
    assert_eq!(master.submissions().len(), 1);
}
