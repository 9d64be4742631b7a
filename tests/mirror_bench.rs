//! Measurements for the mirror (ignored by default; they print numbers, they assert no times):
//!
//!   cargo test --release -p taskotron-e2e --test mirror_bench -- --ignored --nocapture
//!
//! - a refresh pass over 500 mirrored repos when nothing changed upstream;
//! - push -> webhook -> mirror updated latency, median of 20 pushes.

mod mirror_support;
mod util;

use std::time::{Duration, Instant};

use mirror_support::{git, serve, task, Origin};
use taskotron_master::mirror::{MirrorConfig, TaskSource};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn refresh_pass_over_500_unchanged_repos() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let seed = Origin::new(&top, "seed.git", "main");
    seed.commit("README", "hello\n", "second");
    let mut tasks = Vec::new();
    for i in 0..500 {
        let dst = top.join(format!("t{i:03}.git"));
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(&seed.bare)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success());
        tasks.push(TaskSource {
            name: format!("t{i:03}"),
            url: dst.display().to_string(),
            branch: "main".into(),
        });
    }
    let cfg = MirrorConfig {
        concurrency: 4,
        refresh_interval: 0,
        ..Default::default()
    };
    let t = Instant::now();
    let srv = serve(&tmp.path().join("data"), cfg, tasks);
    println!("open (create 500 empty mirrors): {:?}", t.elapsed());
    let t = Instant::now();
    let out = srv.rt.block_on(srv.mirrors.refresh_all());
    assert!(out.iter().all(|o| o.changed && o.error.is_none()));
    println!("first pass (500 initial fetches): {:?}", t.elapsed());
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = srv.rt.block_on(srv.mirrors.refresh_all());
        times.push(t.elapsed());
        assert!(out.iter().all(|o| !o.changed && o.error.is_none()));
    }
    println!(
        "unchanged pass over 500 repos (concurrency 4): median {:?} of {times:?}",
        median(times.clone())
    );
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn push_to_mirror_latency_via_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "a.git", "main");
    // Some unrelated repos, so the lookup is not trivially the only one.
    let others: Vec<Origin> = (0..20)
        .map(|i| Origin::new(&top, &format!("o{i}.git"), "main"))
        .collect();
    let mut tasks = vec![task("a", &a)];
    tasks.extend(
        others
            .iter()
            .enumerate()
            .map(|(i, o)| task(&format!("o{i}"), o)),
    );
    let cfg = MirrorConfig {
        generic_token: Some("tok".into()),
        refresh_interval: 0,
        ..Default::default()
    };
    let srv = serve(&tmp.path().join("data"), cfg, tasks);
    srv.rt.block_on(srv.mirrors.refresh_all());
    let client = reqwest::blocking::Client::new();
    let mirror = srv.mirrors.root().join("fedoraqa/a.git");
    let mut times = Vec::new();
    for i in 0..20 {
        let sha = a.commit("f", &format!("{i}\n"), "push");
        let t = Instant::now();
        let resp = client
            .post(format!("{}/hooks/git", srv.base()))
            .header("Authorization", "Bearer tok")
            .body(format!("{{\"repo\": \"{}\"}}", a.url()))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        times.push(t.elapsed());
        assert_eq!(git(&mirror, &["rev-parse", "refs/heads/main"]).trim(), sha);
    }
    println!(
        "push -> webhook -> mirror updated: median {:?}, max {:?}",
        median(times.clone()),
        times.iter().max().unwrap()
    );
}
