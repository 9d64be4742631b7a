//! Chaos run (issue 5): jobs across real `taskotron-worker`s while workers are killed (-9),
//! frozen (SIGSTOP, later SIGCONT) and restarted at random, and the master is restarted twice
//! (once with SIGTERM, once with SIGKILL). Afterwards every job has ended exactly once, as
//! SUCCESS or (after max attempts) EXCEPTION, no job is lost or duplicated, every earlier
//! attempt is RETRY, and `/api/v2/buildrequests` agrees with the database.
//!
//! Size: TASKOTRON_CHAOS_JOBS (default 100; the figure is 500) and
//! TASKOTRON_CHAOS_WORKERS (default 10). The fault schedule is a fixed pseudo-random sequence
//! (TASKOTRON_CHAOS_SEED), so a failure can be replayed.

mod master_support;
mod util;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use master_support::{Env, Opts};
use util::ChildGuard;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: a small deterministic fault schedule without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

enum WorkerState {
    Running(ChildGuard),
    Stopped(ChildGuard, u32),
    Dead(u32),
}

/// Number of complete build requests, per /healthz-independent REST listing.
fn requests(env: &Env) -> Vec<serde_json::Value> {
    let v = env.get("/api/v2/buildrequests?limit=1000000");
    v["buildrequests"].as_array().cloned().unwrap_or_default()
}

#[test]
fn chaos_every_job_ends_exactly_once() {
    let jobs = env_usize("TASKOTRON_CHAOS_JOBS", 100);
    let nworkers = env_usize("TASKOTRON_CHAOS_WORKERS", 10);
    let mut rng = Rng(env_usize("TASKOTRON_CHAOS_SEED", 20261128) as u64 | 1);
    let names: Vec<(&'static str, &'static str)> = (0..nworkers)
        .map(|i| {
            let n: &'static str = Box::leak(format!("cw{i:02}").into_boxed_str());
            (n, "pw")
        })
        .collect();
    let mut env = Env::new(Opts {
        workers: names.clone(),
        heartbeat: (1.0, 3.0),
        extra: "retry: {max_attempts: 3}\n".into(),
    });
    let mut workers: Vec<WorkerState> = names
        .iter()
        .map(|(n, p)| WorkerState::Running(env.our_worker(n, p)))
        .collect();
    env.wait_workers(nworkers);

    let uuids: Vec<String> = (0..jobs).map(|i| format!("chaos-{i:04}")).collect();
    // Jobs are submitted a batch per round, interleaved with the faults; the gate file holds
    // every build in its runtask step for two rounds out of three, so faults land mid-build.
    let batch = (jobs / 20).max(5);
    let mut submitted = 0;

    // Fault loop: one random action per round until every request is complete. The master is
    // restarted when a third and when two thirds of the jobs are done.
    let start = Instant::now();
    let deadline = Duration::from_secs(env_usize("TASKOTRON_CHAOS_TIMEOUT", 600) as u64);
    let mut restarts = 0;
    let (mut kills, mut stops) = (0, 0);
    let mut round = 0u32;
    loop {
        round += 1;
        env.set_gate(!round.is_multiple_of(3));
        for (i, u) in uuids.iter().enumerate().skip(submitted).take(batch) {
            let (s, body) = env.post_change(u, &format!("pkg{i}-1-1.fc40"));
            assert_eq!(s, 200, "submit {u}: {body}");
            submitted += 1;
        }
        let done = requests(&env)
            .iter()
            .filter(|r| r["complete"] == true)
            .count();
        if done == jobs {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "chaos run did not finish: {done}/{jobs} complete; master log:\n{}",
            env.master_log()
        );
        if (restarts == 0 && done >= jobs / 3) || (restarts == 1 && done >= 2 * jobs / 3) {
            if restarts == 0 {
                env.stop_master(); // SIGTERM: drains running builds, then exits
            } else if let Some(mut m) = env.master.take() {
                m.signal(libc::SIGKILL);
                m.wait_exit(Duration::from_secs(30));
            }
            env.start_master();
            restarts += 1;
            continue;
        }
        // Bring back workers whose time is up, then maybe hurt one.
        for (i, w) in workers.iter_mut().enumerate() {
            let state = std::mem::replace(w, WorkerState::Dead(0));
            *w = match state {
                WorkerState::Stopped(g, until) if until <= round => {
                    g.signal(libc::SIGCONT);
                    WorkerState::Running(g)
                }
                WorkerState::Dead(until) if until <= round => {
                    WorkerState::Running(env.our_worker(names[i].0, names[i].1))
                }
                other => other,
            };
        }
        let victim = rng.next(nworkers as u64) as usize;
        match (
            rng.next(4),
            std::mem::replace(&mut workers[victim], WorkerState::Dead(0)),
        ) {
            (0, WorkerState::Running(mut g)) => {
                g.signal(libc::SIGKILL);
                g.wait_exit(Duration::from_secs(10));
                kills += 1;
                workers[victim] = WorkerState::Dead(round + 1 + rng.next(4) as u32);
            }
            (1, WorkerState::Running(g)) => {
                g.signal(libc::SIGSTOP);
                stops += 1;
                // Frozen for 2-8 rounds: long enough to be declared lost sometimes.
                workers[victim] = WorkerState::Stopped(g, round + 2 + rng.next(7) as u32);
            }
            (_, other) => workers[victim] = other,
        }
        // Pace the faults: one round per ~half second (a pacing delay, not synchronisation).
        std::thread::sleep(Duration::from_millis(500));
    }
    env.set_gate(false);
    for w in &workers {
        if let WorkerState::Stopped(g, _) = w {
            g.signal(libc::SIGCONT);
        }
    }
    println!(
        "chaos: {jobs} jobs, {nworkers} workers, {kills} kills, {stops} stops, {restarts} master restarts, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(restarts, 2, "the master was restarted twice");

    // Every uuid has exactly one build request, complete, SUCCESS or EXCEPTION.
    let reqs = requests(&env);
    assert_eq!(reqs.len(), jobs, "no request lost or duplicated");
    let builds = env.get("/api/v2/builds?property=*&limit=1000000")["builds"]
        .as_array()
        .cloned()
        .unwrap();
    let mut by_brid: BTreeMap<i64, Vec<&serde_json::Value>> = BTreeMap::new();
    for b in &builds {
        by_brid
            .entry(b["buildrequestid"].as_i64().unwrap())
            .or_default()
            .push(b);
    }
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut exceptions = Vec::new();
    for r in &reqs {
        let brid = r["buildrequestid"].as_i64().unwrap();
        let res = r["results"].as_i64().unwrap_or(-1);
        assert_eq!(r["complete"], true, "request {brid}");
        let mut attempts = by_brid.get(&brid).cloned().unwrap_or_default();
        attempts.sort_by_key(|b| b["buildid"].as_i64());
        let last = attempts
            .last()
            .unwrap_or_else(|| panic!("request {brid} has no build"));
        let uuid = last["properties"]["uuid"][0].as_str().unwrap().to_string();
        assert!(
            seen.insert(uuid.clone(), brid).is_none(),
            "{uuid} ran under two requests"
        );
        for b in &attempts[..attempts.len() - 1] {
            assert_eq!(
                b["results"], 5,
                "{uuid}: an earlier attempt that is not RETRY: {b}"
            );
            assert_eq!(b["properties"]["uuid"][0], uuid.as_str());
        }
        assert_eq!(
            last["results"].as_i64(),
            Some(res),
            "{uuid}: build vs request result"
        );
        match res {
            0 => {
                // The job really ran: its artifact names its own uuid.
                let job = env
                    .root()
                    .join("data/artifacts")
                    .join(&uuid)
                    .join("job.txt");
                let text = std::fs::read_to_string(&job)
                    .unwrap_or_else(|e| panic!("{uuid}: {}: {e}", job.display()));
                assert!(text.starts_with(&uuid), "{uuid}: job.txt says {text:?}");
            }
            4 => exceptions.push(format!("{uuid} ({} attempts)", attempts.len())),
            other => panic!("{uuid}: final result {other} (want SUCCESS=0 or EXCEPTION=4)"),
        }
    }
    let mut want: Vec<&String> = uuids.iter().collect();
    let mut got: Vec<&String> = seen.keys().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "every submitted uuid ran, none twice");
    println!(
        "chaos: {} SUCCESS, {} EXCEPTION after max attempts: {exceptions:?}",
        jobs - exceptions.len(),
        exceptions.len()
    );

    // The database says the same as the REST API.
    env.stop_master();
    let db = rusqlite::Connection::open(env.root().join("data/master.sqlite")).unwrap();
    let mut st = db
        .prepare(
            "SELECT buildrequestid, complete, results FROM buildrequests ORDER BY buildrequestid",
        )
        .unwrap();
    let rows: Vec<(i64, i64, Option<i64>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let rest: Vec<(i64, i64, Option<i64>)> = reqs
        .iter()
        .map(|r| {
            (
                r["buildrequestid"].as_i64().unwrap(),
                (r["complete"] == true) as i64,
                r["results"].as_i64(),
            )
        })
        .collect();
    let mut rest = rest;
    rest.sort();
    assert_eq!(rows, rest, "DB and /api/v2/buildrequests agree");
}
