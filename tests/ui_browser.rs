//! The web UI in a real headless Chromium (Debian's chromium + chromedriver, driven over the
//! W3C WebDriver protocol): the queue page lists a submitted job, the job page shows a log line
//! arriving live (Server-Sent Events) while the runtask step runs, and the worker page's pause
//! button pauses the worker. Screenshots go to target/test-artifacts/.

mod master_support;
mod ui_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts, TOKEN};
use serde_json::Value;
use ui_support::Browser;

const T: Duration = Duration::from_secs(90);

/// The job id of `uuid`, from the operators' JSON.
fn job(env: &Env, uuid: &str) -> Value {
    env.get(&format!("/api/ops/jobs/{uuid}"))
}

#[test]
fn queue_lists_the_job_and_job_page_streams_the_running_step_live() {
    let env = Env::new(Opts::default());
    env.set_gate(true);
    let uuid = "ui-live-0001";
    let (st, body) = env.post_change(uuid, "ui-bash-5.0-1.fc32");
    assert_eq!(st, 200, "{body}");

    let b = Browser::start();
    // 1. The queue page lists it as queued (no worker yet).
    b.goto(&env.url("/ui/"));
    let row = format!("tr[data-uuid=\"{uuid}\"]");
    let text = b.text_of(&row);
    assert!(text.contains("ui-bash-5.0-1.fc32"), "row: {text:?}");
    assert!(text.contains("pending"), "row: {text:?}");
    assert!(b.text_of("#h-queued").contains("Queued"));
    b.screenshot("ui-queue");

    // 2. A worker takes it; the formula waits on the gate inside the runtask step.
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    let brid = util::wait_for("runtask step running", T, || {
        let j = job(&env, uuid);
        let running = j["job"]["state"] == "running" && j["job"]["state_string"] == "runtask";
        let stdio = j["builds"][0]["steps"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "runtask")?["logs"][0]["num_lines"]
            .as_i64()?;
        // Wait until runtask has reached the gate action, so the marker below is still ahead.
        (running && stdio > 0)
            .then(|| j["job"]["brid"].as_i64())
            .flatten()
    });
    util::wait_for("runtask at the gate", T, || {
        let j = job(&env, uuid);
        let logid = j["builds"][0]["steps"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "runtask")?["logs"][0]["logid"]
            .as_i64()?;
        let raw = reqwest::blocking::get(env.url(&format!("/api/v2/logs/{logid}/raw")))
            .ok()?
            .text()
            .ok()?;
        raw.contains("wait for the gate").then_some(())
    });

    b.goto(&env.url(&format!("/ui/jobs/{brid}")));
    let pre = "pre[data-live-log]";
    assert!(!b.find_all(pre).is_empty(), "no live log on the job page");
    util::wait_for("live status", T, || {
        (b.text_of(".live-status") == "live").then_some(())
    });
    let before = b.text_of(pre);
    assert!(before.contains("wait for the gate"), "{before}");
    assert!(!before.contains("[4/4] report"), "{before}");
    // Mark the document: if the page were reloaded the mark would be gone.
    b.eval("window.__sameDocument = 'yes'; return true;");

    // 3. Open the gate: the next action's log line must appear in the open page, over SSE.
    env.set_gate(false);
    let live = util::wait_for("live log line in the page", T, || {
        let t = b.text_of(pre);
        t.contains("[4/4] report").then_some(t)
    });
    assert_eq!(
        b.eval("return window.__sameDocument || 'reloaded';"),
        "yes",
        "page was reloaded"
    );
    assert!(
        live.starts_with(before.trim_end()),
        "lines were lost or repeated:\n{before}\n---\n{live}"
    );
    b.screenshot("ui-job-live");
    let done = env.wait_done(uuid, T);
    assert_eq!(done["results"], 0, "{done}");
    util::wait_for("stream end shown", T, || {
        let s = b.text_of(".live-status");
        (s.starts_with("complete")).then_some(())
    });
    // The finished job page links its artifacts (the outcome table is covered in ui_pages.rs).
    b.goto(&env.url(&format!("/ui/jobs/{brid}")));
    assert!(b.text_of("dl.summary").contains("success"));
    assert!(!b
        .find_all(&format!("a[href=\"/artifacts/{uuid}/\"]"))
        .is_empty());
    b.screenshot("ui-job-finished");
}

#[test]
fn worker_pause_button_pauses_the_worker() {
    let env = Env::new(Opts::default());
    let _w = env.our_worker("w1", "pw1");
    env.wait_workers(1);
    let b = Browser::start();

    // Without signing in there are no buttons.
    b.goto(&env.url("/ui/workers"));
    assert!(b.text_of("#worker-w1").contains("active"));
    assert!(
        b.find_all("#pause-w1").is_empty(),
        "pause button shown to an anonymous user"
    );

    // Sign in with a token, then pause.
    b.goto(&env.url("/ui/login"));
    let token = b.find("#token");
    b.type_text(&token, TOKEN);
    b.click(&b.find("#login-submit"));
    util::wait_for("workers page after sign-in", T, || {
        b.current_url().ends_with("/ui/workers").then_some(())
    });
    b.click(&b.find("#pause-w1"));
    util::wait_for("paused row", T, || {
        (b.find_all("#worker-w1[data-paused=\"true\"]").len() == 1).then_some(())
    });
    assert!(b.text_of("#worker-w1").contains("paused"));
    let w = env.get("/api/v2/workers/w1");
    assert_eq!(w["workers"][0]["paused"], true, "{w}");
    b.screenshot("ui-workers-paused");

    // A job queued while paused runs once the unpause button is pressed.
    let (st, _) = env.post_change("ui-pause-0001", "ui-zsh-5.8-1.fc32");
    assert_eq!(st, 200);
    assert_eq!(job(&env, "ui-pause-0001")["job"]["state"], "pending");
    b.click(&b.find("#unpause-w1"));
    util::wait_for("unpaused row", T, || {
        (b.find_all("#worker-w1[data-paused=\"false\"]").len() == 1).then_some(())
    });
    assert_eq!(env.get("/api/v2/workers/w1")["workers"][0]["paused"], false);
    let done = env.wait_done("ui-pause-0001", T);
    assert_eq!(done["results"], 0, "{done}");
}
