//! Bad input to the master (issue 9, test 6): each gets the documented error and the master
//! keeps serving.
//! - worker port: no auth header → 401, non-Basic → 400, wrong password / unknown worker → 401,
//!   garbage frames and text frames dropped (connection survives), unknown ops answered with
//!   Buildbot's exception text, a malformed known op answered with an exception, an oversized
//!   frame closes only that connection;
//! - change hook: missing/bad token, malformed properties/files JSON, missing fields, bad uuid,
//!   duplicate uuid, unknown dialect, unsupported content type;
//! - REST: malformed JSON-RPC, unknown method, unknown resources, bad query parameters, fields
//!   a resource does not have (Buildbot's 400 texts and rendering).

mod master_support;
mod util;

use std::time::Duration;

use master_support::wsclient::{basic, open, FakeWorker};
use master_support::{change_body, form, Env, Opts, TOKEN};
use taskotron_common::protocol::{encode, Message, Op, Request, Value};

const T: Duration = Duration::from_secs(10);

fn healthy(env: &Env) {
    assert_eq!(env.get("/healthz")["status"], "ok");
}

#[test]
fn worker_port_rejects_bad_logins_and_survives_bad_frames() {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2")],
        heartbeat: (1.0, 5.0),
        ..Default::default()
    });
    let port = env.worker_port;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(
            open(port, None).await.err(),
            Some(401),
            "no Authorization header"
        );
        assert_eq!(
            open(port, Some("Bearer abc")).await.err(),
            Some(400),
            "non-Basic header"
        );
        assert_eq!(
            open(port, Some("Basic !!!notbase64")).await.err(),
            Some(400),
            "undecodable"
        );
        assert_eq!(
            open(port, Some(&basic("w1", "wrong"))).await.err(),
            Some(401),
            "wrong password"
        );
        assert_eq!(
            open(port, Some(&basic("nobody", "pw1"))).await.err(),
            Some(401),
            "unknown worker"
        );

        let mut w = FakeWorker::connect(port, "w1", "pw1").await;
        assert!(
            w.wait_op("keepalive", T).await,
            "setup finished and heartbeats started"
        );
        // Garbage, a text frame, a map without op/seq_number: dropped, connection alive.
        w.send_raw(vec![0xc1, 0xff, 0x00, 0x13]);
        w.send_raw(vec![0x92, 0x01, 0x02]);
        w.send_raw(encode_map(&[("op", Value::from("update"))]));
        w.send_text("hello");
        // Unknown op → Buildbot's exception text.
        w.send_raw(encode(&Message::Request(Request {
            seq_number: 7,
            op: Op::Unknown {
                op: "frobnicate".into(),
                fields: vec![],
            },
        })));
        let r = w.next_response(T).await.expect("reply to unknown op");
        assert_eq!(r.seq_number, 7);
        assert!(r.is_exception);
        assert_eq!(
            r.result.as_str(),
            Some("Command frobnicate does not exist.")
        );
        // A known op with a bad field → exception reply naming the problem.
        w.send_raw(encode_map(&[
            ("op", Value::from("update")),
            ("seq_number", Value::from(8)),
            ("command_id", Value::from(5)),
        ]));
        let r = w.next_response(T).await.expect("reply to bad update");
        assert_eq!(r.seq_number, 8);
        assert!(r.is_exception, "{r:?}");
        // An update for a command that does not exist → exception.
        w.send_raw(encode(&Message::Request(Request {
            seq_number: 9,
            op: Op::Complete {
                command_id: "no-such".into(),
                failure: None,
            },
        })));
        let r = w.next_response(T).await.expect("reply to unknown command");
        assert!(
            r.is_exception && r.result.as_str().unwrap_or("").contains("no-such"),
            "{r:?}"
        );
        // Still connected and answering keepalives.
        assert!(w.wait_op("keepalive", T).await);
        assert!(!*w.closed.borrow());

        // A duplicate login while w1 is alive is refused (the new socket is closed).
        let mut dup = FakeWorker::connect(port, "w1", "pw1").await;
        assert!(
            dup.wait_closed(Duration::from_secs(20)).await,
            "duplicate login closed"
        );
        assert!(!*w.closed.borrow(), "the original connection stays");

        // Oversized frame (> limits.max_frame_bytes, 16 MiB) → only that connection closes.
        let mut w2 = FakeWorker::connect(port, "w2", "pw2").await;
        assert!(w2.wait_op("keepalive", T).await);
        w2.send_raw(vec![0u8; 17 * 1024 * 1024]);
        assert!(
            w2.wait_closed(T).await,
            "oversized frame closes the connection"
        );
        assert!(!*w.closed.borrow());
    });
    healthy(&env);
    let h = env.get("/healthz");
    assert_eq!(h["workers_connected"], 1);
}

fn encode_map(pairs: &[(&str, Value)]) -> Vec<u8> {
    let v = Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    );
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, &v).unwrap();
    buf
}

fn post(env: &Env, path: &str, auth: Option<&str>, ctype: &str, body: String) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new()
        .post(env.url(path))
        .header("Content-Type", ctype)
        .body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn change_hook_rejects_malformed_changes() {
    let env = Env::new(Opts::default());
    let bearer = format!("Bearer {TOKEN}");
    let form_ct = "application/x-www-form-urlencoded";
    let ok_body = change_body("dup-1", "foo-1-1.fc40", "x86_64");

    let (s, _) = post(&env, "/change_hook", None, form_ct, ok_body.clone());
    assert_eq!(s, 401, "no token");
    let (s, _) = post(
        &env,
        "/change_hook",
        Some("Bearer wrong"),
        form_ct,
        ok_body.clone(),
    );
    assert_eq!(s, 403, "bad token");
    let wrong = basic("hookuser", "nope");
    let (s, _) = post(&env, "/change_hook", Some(&wrong), form_ct, ok_body.clone());
    assert_eq!(s, 403, "bad basic credentials");
    // HTTP Basic with a configured user works too (what a Buildbot-style client sends).
    let good = basic("hookuser", "hookpw");
    let basic_body = change_body("basic-1", "foo-1-1.fc40", "x86_64");
    let (s, t) = post(&env, "/change_hook", Some(&good), form_ct, basic_body);
    assert_eq!((s, t.as_str()), (200, "1 change found"));

    let cases: Vec<(String, &str)> = vec![
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                ("properties", "{not json"),
            ]),
            "properties",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                ("properties", "[1,2]"),
            ]),
            "JSON object",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                ("files", "{}"),
                ("properties", "{}"),
            ]),
            "files",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                ("properties", r#"{"item":"x","item_type":"koji_build"}"#),
            ]),
            "taskname",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                (
                    "properties",
                    r#"{"taskname":"demo","item":"x","item_type":"koji_build"}"#,
                ),
            ]),
            "category",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                (
                    "properties",
                    r#"{"taskname":"demo","item":"x","item_type":"koji_build","uuid":"../etc"}"#,
                ),
            ]),
            "uuid",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                (
                    "properties",
                    r#"{"taskname":"demo","item":"x","item_type":"koji_build","uuid":["a"]}"#,
                ),
            ]),
            "uuid",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86_64"),
                ("when_timestamp", "yesterday"),
                ("properties", "{}"),
            ]),
            "when_timestamp",
        ),
        (
            form(&[
                ("project", "rpmcheck"),
                ("category", "x86 64"),
                (
                    "properties",
                    r#"{"taskname":"demo","item":"x","item_type":"koji_build"}"#,
                ),
            ]),
            "arch",
        ),
    ];
    for (body, needle) in cases {
        let (s, text) = post(
            &env,
            "/change_hook/base",
            Some(&bearer),
            form_ct,
            body.clone(),
        );
        assert_eq!(s, 400, "{body} → {text}");
        assert!(
            text.contains(needle),
            "{body}: {text:?} should mention {needle}"
        );
    }
    // Items that would reach a shell in a formula (`sh -c "echo ${koji_build}"`) are refused,
    // naming the type and the grammar; nothing is queued.
    for item in [
        "$(touch /tmp/pwned)",
        "a;touch /tmp/pwned",
        "--rf",
        "bash-5.0-1.fc32 `id`",
    ] {
        let props =
            serde_json::json!({"taskname": "demo", "item": item, "item_type": "koji_build"});
        let body = form(&[
            ("project", "rpmcheck"),
            ("category", "x86_64"),
            ("properties", &props.to_string()),
        ]);
        let (s, text) = post(&env, "/change_hook/base", Some(&bearer), form_ct, body);
        assert_eq!(s, 400, "{item}: {text}");
        assert!(
            text.contains("property item")
                && text.contains("not a valid koji_build")
                && text.contains("name-version-release"),
            "{item}: {text}"
        );
    }
    let props = serde_json::json!({"taskname": "demo", "item": "x;id", "item_type": "compose"});
    let body = form(&[
        ("project", "rpmcheck"),
        ("category", "x86_64"),
        ("properties", &props.to_string()),
    ]);
    let (s, text) = post(&env, "/change_hook/base", Some(&bearer), form_ct, body);
    assert!(s == 400 && text.contains("http(s) URL"), "{s} {text}");
    // Unknown task: the mirror has no such task.
    let body = form(&[
        ("project", "rpmcheck"),
        ("category", "x86_64"),
        (
            "properties",
            r#"{"taskname":"nosuchtask","item":"x","item_type":"koji_build"}"#,
        ),
    ]);
    let (s, text) = post(&env, "/change_hook", Some(&bearer), form_ct, body);
    assert_eq!(s, 422, "{text}");
    assert!(text.contains("nosuchtask"), "{text}");
    // Unsupported content type and dialect.
    let (s, _) = post(
        &env,
        "/change_hook",
        Some(&bearer),
        "application/json",
        r#"{"project":"rpmcheck"}"#.into(),
    );
    assert_eq!(s, 400);
    let (s, text) = post(
        &env,
        "/change_hook/github",
        Some(&bearer),
        form_ct,
        ok_body.clone(),
    );
    assert_eq!(s, 400);
    assert!(text.contains("github"), "{text}");
    // A duplicate uuid is refused; the first is queued.
    assert_eq!(
        post(
            &env,
            "/change_hook",
            Some(&bearer),
            form_ct,
            ok_body.clone()
        )
        .0,
        200
    );
    let (s, text) = post(&env, "/change_hook", Some(&bearer), form_ct, ok_body);
    assert_eq!(s, 409, "{text}");
    // A change for another project is stored but starts no build (Buildbot's behaviour).
    let other = form(&[
        ("project", "other"),
        ("category", "x86_64"),
        ("properties", "{}"),
    ]);
    let (s, text) = post(&env, "/change_hook", Some(&bearer), form_ct, other);
    assert_eq!((s, text.as_str()), (200, "1 change found"));

    assert_eq!(env.get("/api/v2/buildrequests")["meta"]["total"], 2);
    assert_eq!(env.get("/api/v2/changes")["meta"]["total"], 3);
    healthy(&env);
}

#[test]
fn rest_api_rejects_malformed_calls() {
    let env = Env::new(Opts::default());
    let bearer = format!("Bearer {TOKEN}");
    let json_ct = "application/json";
    let force = "/api/v2/forceschedulers/rpmcheck";

    let (s, _) = post(
        &env,
        force,
        None,
        json_ct,
        r#"{"jsonrpc":"2.0","method":"force","id":1,"params":{}}"#.into(),
    );
    assert_eq!(s, 401);
    let (s, t) = post(&env, force, Some(&bearer), json_ct, "{broken".into());
    assert_eq!(s, 400);
    assert!(t.contains("-32700"), "{t}");
    let (s, t) = post(&env, force, Some(&bearer), "text/plain", "{}".into());
    assert_eq!(s, 400, "{t}");
    let (s, t) = post(
        &env,
        force,
        Some(&bearer),
        json_ct,
        r#"[{"jsonrpc":"2.0"}]"#.into(),
    );
    assert_eq!(s, 400, "{t}");
    let (s, t) = post(
        &env,
        force,
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"1.0","method":"force","id":1}"#.into(),
    );
    assert_eq!(s, 400, "{t}");
    let (s, t) = post(
        &env,
        force,
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"explode","id":1,"params":{}}"#.into(),
    );
    assert_eq!(s, 501, "{t}");
    let (s, t) = post(
        &env,
        force,
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"force","id":1,"params":{"item":"x"}}"#.into(),
    );
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("taskname"), "{t}");
    let (s, _) = post(
        &env,
        "/api/v2/forceschedulers/nope",
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"force","id":1,"params":{}}"#.into(),
    );
    assert_eq!(s, 404);
    let (s, _) = post(
        &env,
        "/api/v2/builds/999",
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"stop","id":1,"params":{}}"#.into(),
    );
    assert_eq!(s, 404);

    // A good force call returns Buildbot's [bsid, {builderid: brid}].
    let (s, t) = post(
        &env,
        force,
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"force","id":3,"params":{"builderid":null,"username":"t <t@example.org>","reason":"test","taskname":"demo","item":"foo-1-1.fc40","item_type":"koji_build","arch":"x86_64","uuid":"forced-1"}}"#.into(),
    );
    assert_eq!(s, 200, "{t}");
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["id"], 3);
    assert_eq!(v["jsonrpc"], "2.0");
    let bsid = v["result"][0].as_i64().unwrap();
    let (bid, brid) = v["result"][1].as_object().unwrap().iter().next().unwrap();
    let br = env.get(&format!("/api/v2/buildrequests/{brid}"));
    assert_eq!(br["buildrequests"][0]["buildsetid"], bsid);
    assert_eq!(br["buildrequests"][0]["builderid"].to_string(), *bid);
    // Cancel it while queued.
    let (s, t) = post(
        &env,
        &format!("/api/v2/buildrequests/{brid}"),
        Some(&bearer),
        json_ct,
        r#"{"jsonrpc":"2.0","method":"cancel","id":4,"params":{}}"#.into(),
    );
    assert_eq!(s, 200, "{t}");
    let br = env.get(&format!("/api/v2/buildrequests/{brid}"));
    assert_eq!(br["buildrequests"][0]["results"], 6);

    // GETs: unknown ids → 404, bad query → 400.
    for path in [
        "/api/v2/builds/12345",
        "/api/v2/builders/nope",
        "/api/v2/workers/ghost",
        "/api/v2/changes/x",
    ] {
        assert_eq!(
            reqwest::blocking::get(env.url(path)).unwrap().status(),
            404,
            "{path}"
        );
    }
    for path in ["/api/v2/builds?limit=-1", "/api/v2/builds?buildid__like=3"] {
        assert_eq!(
            reqwest::blocking::get(env.url(path)).unwrap().status(),
            400,
            "{path}"
        );
    }
    rest_api_rejects_unknown_fields_like_buildbot(&env, &brid.to_string());
    healthy(&env);
}

/// Fields a resource does not have are 400s with Buildbot 4.3's texts and its error rendering
/// (`text/plain`, `{"error": "..."}`), on collections and single items; every field of every
/// row we serve is accepted; the queries our own tools send still work.
fn rest_api_rejects_unknown_fields_like_buildbot(env: &Env, brid: &str) {
    let get = |path: &str| {
        let r = reqwest::blocking::get(env.url(path)).unwrap();
        let status = r.status().as_u16();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        (status, ct, r.text().unwrap())
    };
    let bad: &[(&str, &str)] = &[
        (
            "/api/v2/builds?nosuchfield=1",
            "unrecognized query parameter 'nosuchfield'",
        ),
        (
            "/api/v2/builds?nosuchfield__eq=1",
            "unrecognized query parameter 'nosuchfield__eq'",
        ),
        (
            "/api/v2/builds?order=nosuchfield",
            "no such field 'nosuchfield'",
        ),
        (
            "/api/v2/buildrequests?order=-nosuch&limit=1",
            "no such field 'nosuch'",
        ),
        ("/api/v2/changes?field=nosuch", "no such field 'nosuch'"),
        (
            "/api/v2/builds?properties=x",
            "invalid filter value for properties",
        ),
        (
            "/api/v2/buildrequests?field=buildrequestid&order=priority",
            "cannot order on un-selected fields",
        ),
        (
            "/api/v2/buildsets?field=bsid&complete=1",
            "cannot filter on un-selected fields",
        ),
        (
            "/api/v2/builders?buildid=1",
            "unrecognized query parameter 'buildid'",
        ),
        (
            "/api/v2/workers?workerinfo=x",
            "invalid filter value for workerinfo",
        ),
        ("/api/v2/masters?order=nosuch", "no such field 'nosuch'"),
        (
            "/api/v2/forceschedulers?nosuch=1",
            "unrecognized query parameter 'nosuch'",
        ),
        (
            "/api/v2/builders/all?nosuch=1",
            "unrecognized query parameter 'nosuch'",
        ),
        // Single items take no filters; the check comes before the lookup (no build 12345).
        (
            "/api/v2/builds/12345?complete=1",
            "this is not a collection",
        ),
        (
            "/api/v2/builders/nope/builds?nosuch=1",
            "unrecognized query parameter 'nosuch'",
        ),
        (
            "/api/v2/builds/1/steps?slug=stdio",
            "unrecognized query parameter 'slug'",
        ),
        (
            "/api/v2/logs/1/contents?logid=1",
            "this is not a collection",
        ),
        (
            "/api/v2/logs/1/raw?nosuch=1",
            "unrecognized query parameter 'nosuch'",
        ),
    ];
    for (path, msg) in bad {
        let (status, ct, body) = get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(ct, "text/plain; charset=utf-8", "{path}");
        assert_eq!(body, format!("{{\"error\": \"{msg}\"}}"), "{path}");
    }
    // Every field of every row is known: ordering on it and selecting it is accepted.
    let (s, t) = post(
        env,
        "/change_hook/base",
        Some(&format!("Bearer {TOKEN}")),
        "application/x-www-form-urlencoded",
        change_body("fields-1", "foo-1-1.fc40", "x86_64"),
    );
    assert_eq!(s, 200, "{t}");
    for plural in [
        "builders",
        "workers",
        "masters",
        "forceschedulers",
        "buildrequests",
        "buildsets",
        "changes",
    ] {
        let v = env.get(&format!("/api/v2/{plural}"));
        let row = v[plural][0]
            .as_object()
            .unwrap_or_else(|| panic!("{plural}: {v}"));
        for key in row.keys() {
            let (status, _, body) = get(&format!("/api/v2/{plural}?order=-{key}&field={key}"));
            assert_eq!(status, 200, "{plural} field {key}: {body}");
        }
    }
    let br = env.get(&format!(
        "/api/v2/buildrequests/{brid}?field=results&field=buildrequestid"
    ));
    assert_eq!(br["buildrequests"][0].as_object().unwrap().len(), 2, "{br}");
    // What our docs, tests and deployment checks send.
    for path in [
        "/api/v2/builds?property=uuid&order=-buildid&limit=1",
        "/api/v2/builds?property=*&limit=1000000",
        "/api/v2/buildrequests?complete=true",
        "/api/v2/buildrequests?buildrequestid__in=1&buildrequestid__in=2&results__notin=0",
    ] {
        let (status, _, body) = get(path);
        assert_eq!(status, 200, "{path}: {body}");
    }
}

/// `curl -F` posts multipart/form-data; Buildbot's base hook accepts it (Twisted parses it into
/// the same request args), so ours does too. Broken or oversized multipart bodies are 400s
/// that name the problem.
#[test]
fn change_hook_accepts_multipart_like_buildbot() {
    let env = Env::new(Opts::default());
    let props = r#"{"taskname":"demo","item":"mp-1.0-1.fc40","item_type":"koji_build","uuid":"multipart-1"}"#;
    let out = std::process::Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .args(["-F", "project=rpmcheck", "-F", "category=x86_64", "-F"])
        .arg(format!("properties={props}"))
        .arg(env.url("/change_hook/base"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("\n200"), "{text}");
    assert!(text.starts_with("1 change found"), "{text}");
    let reqs = env.get("/api/v2/buildrequests");
    assert_eq!(reqs["meta"]["total"], 1, "{reqs}");
    let ops = env.get("/api/ops/jobs/multipart-1");
    assert_eq!(ops["job"]["item"], "mp-1.0-1.fc40", "{ops}");

    let bearer = format!("Bearer {TOKEN}");
    let ct = "multipart/form-data; boundary=XYZ";
    let (s, text) = post(
        &env,
        "/change_hook/base",
        Some(&bearer),
        ct,
        "--XYZ\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\nrpm".into(),
    );
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("multipart"), "{text}");
    let many: String = (0..101)
        .map(|i| format!("--XYZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"))
        .collect::<String>()
        + "--XYZ--\r\n";
    let (s, text) = post(&env, "/change_hook/base", Some(&bearer), ct, many);
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("more than 100 fields"), "{text}");
    let (s, text) = post(
        &env,
        "/change_hook/base",
        Some(&bearer),
        "multipart/form-data",
        "x".into(),
    );
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("boundary"), "{text}");
}

/// The master's resident memory (kB), from /proc.
fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_flood_of_bad_frames_from_an_authenticated_worker_leaves_memory_bounded() {
    let env = Env::new(Opts {
        workers: vec![("w1", "pw1")],
        heartbeat: (1.0, 30.0),
        ..Default::default()
    });
    let pid = env.master.as_ref().unwrap().pid();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let before = rss_kb(pid);
    rt.block_on(async {
        let mut w = FakeWorker::connect(env.worker_port, "w1", "pw1").await;
        assert!(w.wait_op("keepalive", T).await);
        // 256 MiB of malformed msgpack in 1 MiB frames, then 20,000 updates for command ids
        // that do not exist, each answered with an exception.
        let junk = vec![0xc1u8; 1 << 20];
        for _ in 0..256 {
            w.send_raw(junk.clone());
        }
        for i in 0..20_000u64 {
            w.send_raw(encode(&Message::Request(Request {
                seq_number: 100 + i,
                op: Op::Update {
                    command_id: format!("nope-{i}"),
                    args: vec![],
                },
            })));
        }
        // The last one is answered: everything before it was read and dropped.
        let mut last = 0;
        while let Some(r) = w.next_response(Duration::from_secs(60)).await {
            last = r.seq_number;
            if last == 100 + 19_999 {
                break;
            }
        }
        assert_eq!(last, 100 + 19_999, "every bad update answered");
        assert!(
            !*w.closed.borrow(),
            "malformed frames do not end the session"
        );
    });
    let after = rss_kb(pid);
    eprintln!("master RSS: {before} kB before, {after} kB after the flood");
    // Bounded, not proportional to the 256 MiB and 20,000 messages sent.
    assert!(
        after < before + 128 * 1024,
        "RSS grew from {before} to {after} kB"
    );
    healthy(&env);
}
