//! Messages per second through envelope parsing + consumers + rule matching + job creation, on
//! one core, with Fedora's 2020 rules (and the 2017 rules, whose template uses placeholders).
//!
//! `cargo bench -p taskotron-trigger --bench rules_throughput`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use taskotron_trigger::config::Config;
use taskotron_trigger::fedmsg::Envelope;
use taskotron_trigger::jobtriggers::Context;
use taskotron_trigger::pipeline::Pipeline;
use taskotron_trigger::rules::RuleSet;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// A realistic mix: Koji builds (varied names), tags, dist-git, composes, ignored states.
fn corpus() -> Vec<(Vec<u8>, Vec<u8>)> {
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(fixtures().join("fedmsg").join(n)).unwrap()).unwrap()
    };
    let mut out = vec![];
    for i in 0..200 {
        let mut m = read("fedmsg.buildsys.build.state.change.complete.signed.json");
        m["msg"]["name"] = format!("pkg{i}").into();
        m["msg"]["release"] = format!("{}.fc{}", i % 7, 25 + i % 8).into();
        m["msg_id"] = format!("2017-{i}").into();
        out.push(m);
        let mut t = read("fedmsg.buildsys.tag.signed.json");
        t["msg"]["tag"] = format!(
            "f{}-updates{}-pending",
            28 + i % 6,
            if i % 2 == 0 { "-testing" } else { "" }
        )
        .into();
        out.push(t);
    }
    for n in [
        "fedmsg.buildsys.build.state.change.building.signed.json",
        "fedmsg.git.receive.json",
        "fedmsg.pungi.compose.status.change.finished.json",
        "fedmsg.bodhi.update.request.testing.json",
        "fedmsg.buildsys.rpm.sign.signed.floats.json",
    ] {
        for _ in 0..40 {
            out.push(read(n));
        }
    }
    out.into_iter()
        .map(|m| {
            (
                m["topic"].as_str().unwrap().as_bytes().to_vec(),
                serde_json::to_vec(&m).unwrap(),
            )
        })
        .collect()
}

fn bench(rules_file: &str, critpath: Vec<String>) {
    let rules = RuleSet::load(&fixtures().join("taskotron").join(rules_file)).unwrap();
    let ctx = Context::new(&Config::default(), critpath);
    let p = Pipeline::new(ctx, rules, vec!["x86_64".into(), "armhfp".into()], None);
    let msgs = corpus();
    let mut jobs = 0usize;
    // Warm up (fills the compiled-rules cache like a running trigger would).
    for (t, b) in &msgs {
        let env = Envelope::from_frames(t, b, 1 << 20).unwrap();
        for d in p.message_data(&env).unwrap().unwrap_or_default() {
            jobs += p.jobs(&d, &env.msg_id).len();
        }
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        for (t, b) in &msgs {
            let env = Envelope::from_frames(t, b, 1 << 20).unwrap();
            for d in p.message_data(&env).unwrap().unwrap_or_default() {
                jobs += p.jobs(&d, &env.msg_id).len();
            }
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{rules_file}: {n} messages in {secs:.2} s = {:.0} messages/s on one core ({} jobs made)",
        n as f64 / secs,
        jobs
    );
}

fn main() {
    bench("trigger_rules.prod-2020-02.yml", vec![]);
    let critpath: Vec<String> = (0..600).map(|i| format!("pkg{i}")).collect();
    bench("trigger_rules.prod-2017-08.yml", critpath);
}
