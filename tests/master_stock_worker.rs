//! Our master with STOCK buildbot-worker 4.3.0 (`--protocol=msgpack_experimental_v7`, from the
//! test venv) running real `runtask` jobs (issue 9, tests 2 and 5):
//! - one job posted to `/change_hook/base` ends SUCCESS with its steps, logs and artifacts;
//! - 200 parallel change-hook POSTs (Taskotron's form, no revision) give 200 builds, each with
//!   its own uuid/item and its own artifacts directory.

mod master_support;
mod util;

use std::collections::HashSet;
use std::time::Duration;

use master_support::{change_body, steps, Env, Opts, TOKEN};

#[test]
fn stock_worker_runs_a_job_to_success_with_artifacts() {
    let env = Env::new(Opts::default());
    let _w = env.stock_worker("w1", "pw1");
    env.wait_workers(1);

    let (status, body) = env.post_change("job-0001", "foo-1.0-1.fc40");
    assert_eq!((status, body.as_str()), (200, "1 change found"));
    let build = env.wait_done("job-0001", Duration::from_secs(90));
    let buildid = build["buildid"].as_i64().unwrap();
    let st = steps(&env, buildid);
    assert_eq!(
        build["results"],
        0,
        "build failed: steps {st:?}\nlog:\n{}",
        env.master_log()
    );
    assert_eq!(build["state_string"], "build successful");
    let names: Vec<&str> = st.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "worker_preparation",
            "clean",
            "download task",
            "unpack",
            "runtask",
            "upload artifacts"
        ]
    );
    assert!(st.iter().all(|(_, r)| *r == 0), "{st:?}");

    // Buildbot's shapes: same keys as the real 4.3 samples.
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(util::fixtures().join("buildbot/api_samples/builds.json"))
            .unwrap(),
    )
    .unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&build), keys(&sample["builds"][0]));

    // The build's properties are the job's own.
    let props = env.get(&format!("/api/v2/builds/{buildid}/properties"));
    let p = &props["properties"][0];
    assert_eq!(p["item"][0], "foo-1.0-1.fc40");
    assert_eq!(p["taskname"][0], "demo");
    assert_eq!(p["uuid"][0], "job-0001");
    assert_eq!(p["workername"][0], "w1");

    // runtask's stdio and the followed taskotron.log are stored as step logs.
    let raw = reqwest::blocking::get(env.url(&format!(
        "/api/v2/builds/{buildid}/steps/runtask/logs/stdio/raw"
    )))
    .unwrap()
    .text()
    .unwrap();
    assert!(raw.contains("--uuid job-0001"), "{raw}");
    assert!(raw.contains("program finished with exit code 0"), "{raw}");
    let logs = env.get(&format!("/api/v2/builds/{buildid}/steps/runtask/logs"));
    let slugs: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"taskotron_log"), "{slugs:?}");
    let contents = env.get(&format!(
        "/api/v2/builds/{buildid}/steps/runtask/logs/taskotron_log/contents"
    ));
    assert!(contents["logchunks"][0]["content"]
        .as_str()
        .unwrap()
        .contains("demo"));

    // Artifacts were uploaded and are served.
    let job = reqwest::blocking::get(env.url("/artifacts/job-0001/job.txt")).unwrap();
    assert_eq!(job.status(), 200);
    assert_eq!(job.text().unwrap().trim(), "job-0001 foo-1.0-1.fc40");
    let log =
        reqwest::blocking::get(env.url("/artifacts/job-0001/taskotron/taskotron.log")).unwrap();
    assert_eq!(log.status(), 200);
    let index = reqwest::blocking::get(env.url("/artifacts/job-0001/"))
        .unwrap()
        .text()
        .unwrap();
    assert!(index.contains("taskotron/"), "{index}");
    assert_eq!(
        reqwest::blocking::get(env.url("/artifacts/job-0001/../master.yaml"))
            .unwrap()
            .status(),
        404
    );

    // The request, buildset and change are complete and linked.
    let br = env.get(&format!(
        "/api/v2/buildrequests/{}",
        build["buildrequestid"]
    ));
    assert_eq!(br["buildrequests"][0]["results"], 0);
    let changes = env.get("/api/v2/changes");
    assert_eq!(
        changes["changes"][0]["properties"]["uuid"],
        serde_json::json!(["job-0001", "Change"])
    );
    let workers = env.get("/api/v2/workers/w1");
    assert_eq!(workers["workers"][0]["workerinfo"]["version"], "4.3.0");
    assert_eq!(
        workers["workers"][0]["connected_to"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn two_hundred_parallel_changes_give_two_hundred_distinct_builds() {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2"), ("w3", "pw3"), ("w4", "pw4")],
        ..Default::default()
    });
    let _workers: Vec<_> = ["w1", "w2", "w3", "w4"]
        .iter()
        .enumerate()
        .map(|(i, n)| env.stock_worker(n, ["pw1", "pw2", "pw3", "pw4"][i]))
        .collect();

    // 200 POSTs at once, Taskotron's form (no revision), each with its own uuid and item.
    let url = env.url("/change_hook");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses: Vec<(u16, String)> = rt.block_on(async {
        let client = reqwest::Client::new();
        let futs = (0..200).map(|i| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let r = client
                    .post(&url)
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(change_body(
                        &format!("par-{i:03}"),
                        &format!("pkg{i}-1.0-1.fc40"),
                        "x86_64",
                    ))
                    .send()
                    .await
                    .expect("POST");
                (r.status().as_u16(), r.text().await.unwrap())
            }
        });
        futures_util::future::join_all(futs).await
    });
    assert!(
        statuses
            .iter()
            .all(|(s, b)| *s == 200 && b == "1 change found"),
        "{statuses:?}"
    );

    env.wait_workers(4);
    util::wait_for("200 builds to complete", Duration::from_secs(240), || {
        let h = env.get("/healthz");
        let brs = env.get("/api/v2/buildrequests?complete=true");
        (h["requests_pending"] == 0 && brs["meta"]["total"] == 200).then_some(())
    });
    let builds = env.builds_by_uuid();
    assert_eq!(builds.len(), 200, "one build per change");
    let uuids: HashSet<&str> = builds.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(uuids.len(), 200, "200 distinct uuids");
    for (uuid, b) in &builds {
        assert_eq!(b["results"], 0, "build of {uuid} failed");
        let i: usize = uuid.trim_start_matches("par-").parse().unwrap();
        assert_eq!(
            b["properties"]["item"][0],
            format!("pkg{i}-1.0-1.fc40"),
            "{uuid} has its own item"
        );
        // Its own artifacts directory, written by its own runtask run.
        let job =
            std::fs::read_to_string(env.root().join("data/artifacts").join(uuid).join("job.txt"))
                .unwrap();
        assert_eq!(job.trim(), format!("{uuid} pkg{i}-1.0-1.fc40"));
    }
    let changes = env.get("/api/v2/changes");
    assert_eq!(changes["meta"]["total"], 200);
}
