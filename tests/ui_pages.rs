//! The web UI over plain HTTP (what a browser without JavaScript gets): pages, search,
//! pagination, the ResultYAML outcome table, worker controls' auth, and the live-log SSE
//! stream resuming exactly with `Last-Event-ID`. Plus a measurement: page times with 100,000
//! builds in the database (printed and saved to target/test-artifacts/, not asserted).

mod master_support;
mod ui_support;
mod util;

use std::time::{Duration, Instant};

use master_support::{Env, Opts, TOKEN};
use serde_json::Value;
use ui_support::{read_sse, SseEvent};

const T: Duration = Duration::from_secs(90);

fn page(env: &Env, path: &str) -> (u16, String) {
    let r = reqwest::blocking::get(env.url(path)).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn ok_page(env: &Env, path: &str) -> String {
    let (st, body) = page(env, path);
    assert_eq!(st, 200, "GET {path}: {body}");
    body
}

/// The runtask step's stdio log id of a job.
fn runtask_log(env: &Env, uuid: &str) -> Option<i64> {
    let j = env.get(&format!("/api/ops/jobs/{uuid}"));
    j["builds"][0]["steps"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "runtask")?["logs"][0]["logid"]
        .as_i64()
}

fn lines_of(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "lines")
        .flat_map(|e| serde_json::from_str::<Vec<String>>(&e.data).unwrap())
        .collect()
}

#[test]
fn pages_without_javascript_and_sse_resume() {
    let env = Env::new(Opts::default());
    env.set_gate(true);
    let uuid = "pages-0001";
    assert_eq!(env.post_change(uuid, "pages-bash-5.0-1.fc32").0, 200);
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    let logid = util::wait_for("runtask at the gate", T, || {
        let logid = runtask_log(&env, uuid)?;
        let raw = reqwest::blocking::get(env.url(&format!("/api/v2/logs/{logid}/raw")))
            .ok()?
            .text()
            .ok()?;
        raw.contains("wait for the gate").then_some(logid)
    });
    let brid = env.get(&format!("/api/ops/jobs/{uuid}"))["job"]["brid"]
        .as_i64()
        .unwrap();

    // Queue page: the running job, accessible structure, nothing loaded from elsewhere.
    let q = ok_page(&env, "/ui/");
    assert!(q.contains("<html lang=\"en\">") && q.contains("<main id=\"main\">"));
    assert!(q.contains("class=\"skip\" href=\"#main\""));
    assert!(
        q.contains(&format!("data-uuid=\"{uuid}\"")) && q.contains("running"),
        "{q}"
    );
    for page_html in [&q, &ok_page(&env, &format!("/ui/jobs/{brid}"))] {
        assert!(
            !page_html.contains("src=\"http") && !page_html.contains("href=\"http"),
            "external resource"
        );
    }
    assert_eq!(page(&env, "/").0, 200, "/ redirects to the UI");

    // The live stream: first batch from line 0, then a reconnect with Last-Event-ID continues.
    let port = env.http_port;
    let first = read_sse(
        port,
        &format!("/ui/logs/{logid}/events?from=0"),
        None,
        |ev| ev.iter().any(|e| e.event == "lines"),
    );
    let id = first
        .iter()
        .find(|e| e.event == "lines")
        .unwrap()
        .id
        .clone()
        .unwrap();
    let got_first = lines_of(&first);
    assert_eq!(
        got_first.len().to_string(),
        id,
        "event id is the next line number"
    );
    env.set_gate(false);
    // `?from=0` again: the Last-Event-ID header must win, or lines would repeat.
    let rest = read_sse(
        port,
        &format!("/ui/logs/{logid}/events?from=0"),
        Some(&id),
        |ev| ev.iter().any(|e| e.event == "end"),
    );
    let mut all = got_first.clone();
    all.extend(lines_of(&rest));
    let contents: Value = env.get(&format!("/api/v2/logs/{logid}/contents"));
    let stored: Vec<String> = contents["logchunks"][0]["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        all, stored,
        "SSE lines (with resume) == the stored log, nothing lost or repeated"
    );
    assert!(all.iter().any(|l| l.contains("[4/4] report")));
    assert_eq!(rest.last().unwrap().event, "end");
    // A finished log: the stream ends at once.
    let again = read_sse(
        port,
        &format!("/ui/logs/{logid}/events"),
        Some(&stored.len().to_string()),
        |_| false,
    );
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event, "end");

    let done = env.wait_done(uuid, T);
    assert_eq!(done["results"], 0);
    // The full log page, complete (no live attributes any more).
    let log_page = ok_page(&env, &format!("/ui/logs/{logid}"));
    assert!(
        log_page.contains("[4/4] report") && !log_page.contains("data-live-log"),
        "{log_page}"
    );

    // Outcomes: the job page renders taskotron/results.yml from the artifacts (escaped).
    let results = env
        .root()
        .join(format!("data/artifacts/{uuid}/taskotron/results.yml"));
    std::fs::write(
        &results,
        "results:\n  - item: pages-bash-5.0-1.fc32\n    type: koji_build\n    checkname: dist.rpmlint\n    outcome: PASSED\n    note: 0 errors\n  - item: pages-bash-5.0-1.fc32\n    type: koji_build\n    checkname: dist.abicheck\n    outcome: FAILED\n    note: \"<script>alert(1)</script>\"\n    artifact: output.log\n",
    )
    .unwrap();
    let jp = ok_page(&env, &format!("/ui/jobs/{brid}"));
    assert!(jp.contains("<table class=\"outcomes\">"), "{jp}");
    assert!(jp.contains("dist.rpmlint") && jp.contains("o-PASSED") && jp.contains("o-FAILED"));
    assert!(jp.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !jp.contains("<script>alert"));
    assert!(jp.contains(&format!("href=\"/artifacts/{uuid}/output.log\"")));
    assert_eq!(
        ok_page(&env, &format!("/ui/jobs/{uuid}")),
        jp,
        "a job is also found by uuid"
    );

    // Search and filters.
    assert!(ok_page(&env, "/ui/jobs?q=demo").contains(&format!("data-uuid=\"{uuid}\"")));
    assert!(ok_page(&env, "/ui/jobs?q=pages-bash").contains(&format!("data-uuid=\"{uuid}\"")));
    assert!(
        ok_page(&env, "/ui/jobs?q=ages-bash").contains("No jobs match."),
        "item search is by prefix"
    );
    assert!(ok_page(&env, "/ui/jobs?state=pending").contains("No jobs match."));
    assert!(ok_page(&env, "/ui/jobs?state=finished").contains(&format!("data-uuid=\"{uuid}\"")));
    assert_eq!(page(&env, "/ui/jobs?state=bogus").0, 400);
    assert_eq!(page(&env, "/ui/jobs?before=x").0, 400);
    assert_eq!(page(&env, "/ui/jobs/99999").0, 404);
    assert_eq!(page(&env, "/ui/logs/nope").0, 404);

    // Repos page: the configured task with its head.
    let repos = ok_page(&env, "/ui/repos");
    assert!(
        repos.contains(">demo<") && repos.contains("r-success"),
        "{repos}"
    );

    // Worker controls: refused without a token or from another origin; a token works.
    let c = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anon = c.post(env.url("/ui/workers/w1/pause")).send().unwrap();
    assert_eq!(anon.status(), 403);
    let cross = c
        .post(env.url("/ui/workers/w1/pause"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Origin", "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(env.get("/api/v2/workers/w1")["workers"][0]["paused"], false);
    let login = c
        .post(env.url("/ui/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let paused = c
        .post(env.url("/ui/workers/w1/pause"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(paused.status(), 303);
    assert_eq!(env.get("/api/v2/workers/w1")["workers"][0]["paused"], true);
    let wp = c
        .get(env.url("/ui/workers"))
        .header("Cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        wp.contains("id=\"unpause-w1\"") && wp.contains("badge paused"),
        "{wp}"
    );
    let bad_login = c
        .post(env.url("/ui/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("token=wrong")
        .send()
        .unwrap();
    assert_eq!(bad_login.status(), 403);
}

/// Fills the database of a stopped master with `n` finished jobs (and a few queued ones).
fn fill(db: &std::path::Path, n: i64) {
    let mut c = rusqlite::Connection::open(db).unwrap();
    let tx = c.transaction().unwrap();
    let builder: i64 = tx
        .query_row(
            "SELECT builderid FROM builders WHERE name = 'x86_64'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let worker: i64 = tx
        .query_row("SELECT workerid FROM workers WHERE name = 'w1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    tx.execute("INSERT INTO sourcestamps(created_at) VALUES (0)", [])
        .unwrap();
    let ssid = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO buildsets(submitted_at, ssid, complete) VALUES (0, ?1, 1)",
        [ssid],
    )
    .unwrap();
    let bsid = tx.last_insert_rowid();
    let tasks = [
        "rpmlint",
        "abicheck",
        "rpmdeplint",
        "python-versions",
        "demo",
    ];
    {
        let mut req = tx
            .prepare(
                "INSERT INTO buildrequests(buildsetid, builderid, submitted_at, claimed_at, complete, complete_at,
                 results, uuid, taskname, item, item_type, arch, task_key, sha, attempts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'koji_build', 'x86_64', ?9, 'abc', 1)",
            )
            .unwrap();
        let mut build = tx
            .prepare(
                "INSERT INTO builds(number, builderid, buildrequestid, workerid, started_at, complete_at, results,
                 state_string) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'build successful')",
            )
            .unwrap();
        for i in 1..=n + 20 {
            let t = 1_700_000_000 + i;
            let finished = i <= n;
            let item = format!("pkg-{}-1.0-{i}.fc32", i % 5000);
            let task = tasks[(i % 5) as usize];
            let (claimed, complete, complete_at, result) = if finished {
                (Some(t), 1, Some(t + 60), Some(i % 3))
            } else {
                (None, 0, None, None)
            };
            req.execute(rusqlite::params![
                bsid,
                builder,
                t,
                claimed,
                complete,
                complete_at,
                result,
                format!("fill-{i}"),
                task,
                item
            ])
            .unwrap();
            let brid = tx.last_insert_rowid();
            if finished {
                build
                    .execute(rusqlite::params![
                        i,
                        builder,
                        brid,
                        worker,
                        t,
                        t + 60,
                        i % 3
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

fn median_ms(env: &Env, path: &str) -> (f64, String) {
    let mut times = vec![];
    let mut body = String::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        body = ok_page(env, path);
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[2], body)
}

#[test]
fn listing_pages_with_100000_builds() {
    let mut env = Env::new(Opts::default());
    env.stop_master();
    let n = 100_000;
    fill(&env.root().join("data/master.sqlite"), n);
    env.start_master();

    let mut report =
        format!("UI with {n} finished builds + 20 queued (median of 5 GETs, debug build):\n");
    let paths = [
        "/ui/",
        "/ui/jobs",
        "/ui/jobs?before=50000",
        "/ui/jobs?q=rpmlint",
        "/ui/jobs?q=pkg-4242-",
        "/ui/jobs?q=rpmlint&before=30000",
        "/ui/jobs?state=pending",
        "/ui/jobs/77777",
        "/api/ops/jobs?state=finished&limit=50",
        "/ui/workers",
        "/metrics",
    ];
    for p in paths {
        let (ms, body) = median_ms(&env, p);
        report.push_str(&format!("  {ms:8.1} ms  GET {p}\n"));
        match p {
            "/ui/" => assert!(body.contains("<strong>20</strong> queued"), "{body}"),
            "/ui/jobs" => {
                assert_eq!(body.matches("<tr data-uuid=").count(), 50);
                assert!(
                    body.contains(&format!("before={}", n + 20 - 49)),
                    "next page link"
                );
            }
            "/ui/jobs?q=pkg-4242-" => {
                // items pkg-4242-1.0-<i> for i = 4242, 9242, ... (20 of them)
                assert_eq!(body.matches("<tr data-uuid=").count(), 20, "{body}");
            }
            "/ui/jobs?q=rpmlint&before=30000" => {
                assert_eq!(body.matches("<tr data-uuid=").count(), 50);
                assert!(
                    body.contains("data-uuid=\"fill-29995\""),
                    "newest rpmlint job below 30000"
                );
            }
            "/ui/jobs/77777" => assert!(body.contains("fill-77777")),
            _ => {}
        }
    }
    eprintln!("{report}");
    std::fs::write(
        ui_support::artifacts_dir().join("ui-100k-timings.txt"),
        &report,
    )
    .unwrap();
}
