//! An upstream that accepts connections and never answers: the fetch fails after
//! `mirror.fetch_timeout`, the error is recorded, and the other repos of the same pass refresh.
//! (Own file: libgit2's timeouts are process-wide.)

mod mirror_support;
mod util;

use std::net::TcpListener;
use std::time::Duration;

use mirror_support::{serve, task, Origin};
use taskotron_master::mirror::{MirrorConfig, TaskSource};

#[test]
fn a_silent_upstream_times_out_without_blocking_others() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Origin::new(&tmp.path().join("origin"), "a.git", "main");
    // Accepts and then holds every connection without a byte of reply.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            if held.len() > 16 {
                break;
            }
        }
    });
    let tasks = vec![
        TaskSource {
            name: "silent".into(),
            url: format!("http://127.0.0.1:{port}/x.git"),
            branch: "main".into(),
        },
        task("a", &a),
    ];
    let cfg = MirrorConfig {
        fetch_timeout: 2,
        concurrency: 1,
        ..Default::default()
    };
    let srv = serve(&tmp.path().join("data"), cfg, tasks);
    let m = srv.mirrors.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let m2 = m.clone();
    let handle = srv.rt.spawn(async move {
        let _ = tx.send(m2.refresh_all().await);
    });
    // Generous bound: the pass must end on its own (2 s timeout), not hang.
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("refresh pass finished");
    let _ = srv.rt.block_on(handle);
    let silent = out.iter().find(|o| o.name == "silent").unwrap();
    assert!(silent.error.is_some(), "{silent:?}");
    let a_out = out.iter().find(|o| o.name == "a").unwrap();
    assert!(a_out.changed && a_out.error.is_none(), "{a_out:?}");
    assert_eq!(m.pin("a").unwrap(), a.head());
}
