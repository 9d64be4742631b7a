//! Replays every master → worker request of the real Buildbot 4.3.0 session
//! (tests/fixtures/buildbot/buildbot_msgpack_transcript.jsonl) to our worker, with the worker
//! paths rewritten to a temp basedir and the master's answers reproduced (null for
//! `update_read_file`, the `utime` exception). For every command, our worker must send the same
//! kinds of messages as buildbot-worker 4.3 did: the same transfer ops in the same order, the same
//! update keys, the same `rc`, and a failure in `complete` exactly when the real worker had one.

mod util;
mod worker_support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use taskotron_common::protocol::{Message, Op, Request, UpdateItem, Value};
use worker_support::fake_master::FakeMaster;
use worker_support::transcript::to_msgpack;
use worker_support::OurWorker;

const REAL_BASEDIR: &str = "/tmp/bbtest/worker";

/// What one worker sent for one command.
#[derive(Debug, Default, PartialEq)]
struct Shape {
    ops: Vec<String>,
    keys: BTreeSet<String>,
    rc: Option<i64>,
    failed: bool,
}

fn shape_of(ops: &[Op], updates: &[UpdateItem], failed: bool) -> Shape {
    Shape {
        ops: ops.iter().map(|o| o.name().to_string()).collect(),
        keys: updates.iter().map(|u| u.key().to_string()).collect(),
        rc: updates.iter().rev().find_map(|u| match u {
            UpdateItem::Rc(rc) => Some(*rc),
            _ => None,
        }),
        failed,
    }
}

fn rewrite(v: &Value, base: &str) -> Value {
    match v {
        Value::String(s) => Value::from(s.as_str().unwrap_or("").replace(REAL_BASEDIR, base)),
        Value::Array(a) => Value::Array(a.iter().map(|x| rewrite(x, base)).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), rewrite(x, base)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_session_replays_with_the_same_shapes() {
    let text = std::fs::read_to_string(
        util::fixtures().join("buildbot/buildbot_msgpack_transcript.jsonl"),
    )
    .unwrap();
    let records: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Json| r["kind"] == "ws_message" && r["conn"] == 1)
        .collect();
    // The real worker's messages, per command.
    let mut real: BTreeMap<String, (Vec<Op>, Vec<UpdateItem>, bool)> = BTreeMap::new();
    let mut requests = Vec::new();
    let mut utime_error = None;
    for r in &records {
        let msg = Message::from_value(&to_msgpack(&r["msg"])).unwrap();
        match (r["dir"].as_str(), msg) {
            (Some("master->worker"), Message::Request(req)) => requests.push(req),
            (Some("master->worker"), Message::Response(resp)) => {
                if let Some(e) = resp.error_text() {
                    utime_error = Some(e);
                }
            }
            (Some("worker->master"), Message::Request(Request { op, .. })) => {
                let id = op.command_id().unwrap_or_default().to_string();
                let entry = real.entry(id).or_default();
                match op {
                    Op::Update { args, .. } => entry.1.extend(args),
                    Op::Complete { failure, .. } => entry.2 = failure.is_some(),
                    other => entry.0.push(other),
                }
            }
            _ => {}
        }
    }
    let interrupted: BTreeSet<String> = requests
        .iter()
        .filter_map(|r| match &r.op {
            Op::InterruptCommand { command_id, .. } => Some(command_id.clone()),
            _ => None,
        })
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let fm = FakeMaster::bind().await;
    let mut worker = OurWorker::start(tmp.path(), fm.port, "");
    let base = worker.basedir.display().to_string();
    let mut conn = fm.accept().await;
    conn.utime_exception = utime_error;
    let mut compared = 0;
    for req in requests {
        match req.op {
            Op::StartCommand {
                command_id,
                command_name,
                args,
                builder_name,
            } => {
                let args = rewrite(&args, &base);
                let seq = conn
                    .send(Op::StartCommand {
                        command_id: command_id.clone(),
                        command_name: command_name.clone(),
                        args,
                        builder_name,
                    })
                    .await;
                if interrupted.contains(&command_id) {
                    // Interrupt once the command runs (its header arrived), as the REST stop did.
                    loop {
                        match conn.recv().await.expect("open") {
                            Message::Request(r) => {
                                conn.answer(&r).await;
                                if matches!(r.op, Op::Update { .. }) {
                                    break;
                                }
                            }
                            Message::Response(_) => {}
                        }
                    }
                    conn.send(Op::InterruptCommand {
                        command_id: command_id.clone(),
                        why: "stopped by test".into(),
                        builder_name: None,
                    })
                    .await;
                }
                let t = conn.collect(&command_id, Some(seq), |_| {}).await;
                if let Some(r) = &t.start_reply {
                    assert!(!r.is_exception, "{command_name}: {r:?}");
                }
                let (ops, updates, failed) = real.remove(&command_id).unwrap_or_default();
                let theirs = shape_of(&ops, &updates, failed);
                let ours = shape_of(&t.ops, &t.updates, t.failure.is_some());
                assert_eq!(ours, theirs, "command {command_id} ({command_name})");
                compared += 1;
            }
            Op::InterruptCommand { .. } => {} // sent above, while the command ran
            Op::Shutdown => {
                let r = conn.call(Op::Shutdown).await;
                assert!(!r.is_exception);
                let status = worker.proc.wait_exit(std::time::Duration::from_secs(30));
                assert_eq!(status.code(), Some(0));
            }
            op => {
                let r = conn.call(op).await;
                assert!(!r.is_exception, "{r:?}");
            }
        }
    }
    assert_eq!(
        compared, 54,
        "every start_command of the session was replayed"
    );
}
