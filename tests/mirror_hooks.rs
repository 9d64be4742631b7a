//! `POST /hooks/git`: GitHub, GitLab, Pagure and generic push webhooks refresh the matching
//! mirror at once; a missing secret gives 401, a wrong one 403, and then nothing is refreshed.

mod mirror_support;
mod util;

use hmac::{Hmac, Mac};
use mirror_support::{git, serve, task, Origin, Served};
use serde_json::{json, Value};
use taskotron_master::mirror::MirrorConfig;

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &str, body: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn post(srv: &Served, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .post(format!("{}/hooks/git", srv.base()))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// The branch head in the mirror on disk (what jobs would pin).
fn mirror_head(srv: &Served, name: &str, branch: &str) -> String {
    let dir = srv.mirrors.root().join(format!("fedoraqa/{name}.git"));
    git(&dir, &["rev-parse", &format!("refs/heads/{branch}")])
        .trim()
        .to_string()
}

fn refreshed(v: &Value) -> Vec<(String, String)> {
    v["refreshed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["head"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn push_webhooks_refresh_and_secrets_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let gh = Origin::new(&top, "fedoraqa/gh.git", "main");
    let gl = Origin::new(&top, "fedoraqa/gl.git", "main");
    let pg = Origin::new(&top, "taskotron/task-pg.git", "master");
    let gen = Origin::new(&top, "misc/gen.git", "main");
    let cfg = MirrorConfig {
        github_secret: Some("gh-secret".into()),
        gitlab_token: Some("gl-token".into()),
        pagure_token: Some("pg-key".into()),
        generic_token: Some("gen-token".into()),
        refresh_interval: 0,
        ..Default::default()
    };
    let tasks = vec![
        task("gh", &gh),
        task("gl", &gl),
        task("pg", &pg),
        task("gen", &gen),
    ];
    let srv = serve(&tmp.path().join("data"), cfg, tasks);
    srv.rt.block_on(srv.mirrors.refresh_all());

    // --- GitHub ---
    let old = gh.head();
    let new = gh.commit("f", "1", "gh push");
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "after": new,
        "repository": {"full_name": "fedoraqa/gh", "clone_url": gh.url(), "html_url": "https://github.com/fedoraqa/gh"}
    }))
    .unwrap();
    let good = format!(
        "sha256={}",
        hmac_hex::<Hmac<sha2::Sha256>>("gh-secret", &body)
    );
    let bad = format!("sha256={}", hmac_hex::<Hmac<sha2::Sha256>>("wrong", &body));
    let ev = ("X-GitHub-Event", "push".to_string());
    assert_eq!(post(&srv, std::slice::from_ref(&ev), &body).0, 401);
    assert_eq!(
        post(&srv, &[ev.clone(), ("X-Hub-Signature-256", bad)], &body).0,
        403
    );
    assert_eq!(
        post(
            &srv,
            &[ev.clone(), ("X-Hub-Signature-256", "sha256=zz".into())],
            &body
        )
        .0,
        403
    );
    assert_eq!(
        mirror_head(&srv, "gh", "main"),
        old,
        "refused hooks must not refresh"
    );
    let (status, v) = post(
        &srv,
        &[ev.clone(), ("X-Hub-Signature-256", good.clone())],
        &body,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(refreshed(&v), vec![("gh".to_string(), new.clone())]);
    assert_eq!(v["refreshed"][0]["changed"], true);
    assert_eq!(mirror_head(&srv, "gh", "main"), new);
    assert_eq!(srv.mirrors.pin("gh").unwrap(), new);
    // A ping (or any non-push event) is accepted and refreshes nothing.
    let (status, v) = post(
        &srv,
        &[
            ("X-GitHub-Event", "ping".into()),
            ("X-Hub-Signature-256", good),
        ],
        &body,
    );
    assert_eq!((status, refreshed(&v).len()), (200, 0), "{v}");

    // --- GitLab ---
    let old = gl.head();
    let new = gl.commit("f", "1", "gl push");
    let body = serde_json::to_vec(&json!({
        "object_kind": "push", "after": new,
        "project": {"path_with_namespace": "fedoraqa/gl", "git_http_url": format!("file://{}", gl.url()), "git_ssh_url": "git@gitlab.example:fedoraqa/gl.git"}
    }))
    .unwrap();
    let ev = ("X-Gitlab-Event", "Push Hook".to_string());
    assert_eq!(post(&srv, std::slice::from_ref(&ev), &body).0, 401);
    assert_eq!(
        post(
            &srv,
            &[ev.clone(), ("X-Gitlab-Token", "nope".into())],
            &body
        )
        .0,
        403
    );
    assert_eq!(mirror_head(&srv, "gl", "main"), old);
    let (status, v) = post(&srv, &[ev, ("X-Gitlab-Token", "gl-token".into())], &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(refreshed(&v), vec![("gl".to_string(), new.clone())]);
    assert_eq!(mirror_head(&srv, "gl", "main"), new);

    // --- Pagure (git.receive, HMAC-SHA1 with the project's web-hook key) ---
    let old = pg.head();
    let new = pg.commit("f", "1", "pg push");
    let body = serde_json::to_vec(&json!({
        "topic": "git.receive", "msg_id": "2026-x",
        "msg": {"branch": "master", "end_commit": new, "repo": {"name": "task-pg", "namespace": "taskotron", "fullname": "taskotron/task-pg", "url_path": "taskotron/task-pg"}}
    }))
    .unwrap();
    let topic = ("X-Pagure-Topic", "git.receive".to_string());
    assert_eq!(post(&srv, std::slice::from_ref(&topic), &body).0, 401);
    let bad = hmac_hex::<Hmac<sha1::Sha1>>("wrong", &body);
    assert_eq!(
        post(&srv, &[topic.clone(), ("X-Pagure-Signature", bad)], &body).0,
        403
    );
    assert_eq!(mirror_head(&srv, "pg", "master"), old);
    let good = hmac_hex::<Hmac<sha1::Sha1>>("pg-key", &body);
    let (status, v) = post(&srv, &[topic.clone(), ("X-Pagure-Signature", good)], &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(refreshed(&v), vec![("pg".to_string(), new.clone())]);
    assert_eq!(mirror_head(&srv, "pg", "master"), new);
    // Newer Pagure also sends the SHA-256 form.
    let good256 = hmac_hex::<Hmac<sha2::Sha256>>("pg-key", &body);
    assert_eq!(
        post(&srv, &[topic, ("X-Pagure-Signature-256", good256)], &body).0,
        200
    );

    // --- Generic {"repo": URL-or-name} ---
    let old = gen.head();
    let new = gen.commit("f", "1", "generic push");
    let by_name = br#"{"repo": "gen"}"#;
    assert_eq!(post(&srv, &[], by_name).0, 401);
    assert_eq!(
        post(&srv, &[("Authorization", "Bearer nope".into())], by_name).0,
        403
    );
    assert_eq!(mirror_head(&srv, "gen", "main"), old);
    let auth = ("Authorization", "Bearer gen-token".to_string());
    let (status, v) = post(&srv, std::slice::from_ref(&auth), by_name);
    assert_eq!(status, 200, "{v}");
    assert_eq!(refreshed(&v), vec![("gen".to_string(), new.clone())]);
    let newer = gen.commit("g", "2", "again");
    let by_url = serde_json::to_vec(&json!({"repo": gen.url()})).unwrap();
    let (_, v) = post(&srv, &[("X-Taskotron-Token", "gen-token".into())], &by_url);
    assert_eq!(refreshed(&v), vec![("gen".to_string(), newer.clone())]);
    let (_, v) = post(
        &srv,
        std::slice::from_ref(&auth),
        br#"{"repo": "/fedoraqa/gen.git"}"#,
    );
    assert_eq!(refreshed(&v), vec![("gen".to_string(), newer)]);
    // Unknown repo: nothing refreshed, the reply says what did not match.
    let (status, v) = post(
        &srv,
        std::slice::from_ref(&auth),
        br#"{"repo": "https://example.org/unknown.git"}"#,
    );
    assert_eq!((status, refreshed(&v).len()), (200, 0));
    assert_eq!(v["unmatched"][0], "https://example.org/unknown.git");
    // Bad bodies are refused with a reason.
    let (status, v) = post(&srv, std::slice::from_ref(&auth), b"not json");
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(&srv, &[auth], br#"{"repository": "gen"}"#);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("repo"));
}

#[test]
fn hook_kinds_without_a_secret_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("origin");
    let a = Origin::new(&top, "x/a.git", "main");
    let srv = serve(
        &tmp.path().join("data"),
        MirrorConfig::default(),
        vec![task("a", &a)],
    );
    srv.rt.block_on(srv.mirrors.refresh_all());
    let old = a.head();
    a.commit("f", "1", "push");
    let body = br#"{"repo": "a"}"#;
    for headers in [
        vec![("Authorization", "Bearer anything".to_string())],
        vec![
            ("X-GitHub-Event", "push".to_string()),
            ("X-Hub-Signature-256", "sha256=00".into()),
        ],
        vec![
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Token", "x".into()),
        ],
        vec![
            ("X-Pagure-Topic", "git.receive".to_string()),
            ("X-Pagure-Signature", "00".into()),
        ],
    ] {
        let (status, v) = post(&srv, &headers, body);
        assert_eq!(status, 403, "{headers:?}: {v}");
        assert!(v["error"].as_str().unwrap().contains("disabled"), "{v}");
    }
    assert_eq!(mirror_head(&srv, "a", "main"), old);
}
