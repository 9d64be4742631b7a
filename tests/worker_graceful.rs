//! Worker-initiated graceful shutdown at the protocol level, against a scripted master
//! (worker_support::fake_master): on SIGTERM our worker sends `graceful_shutdown` (a Taskotron
//! extension of msgpack_experimental_v7, docs/worker.md) and then
//! - master accepts: keeps taking commands (the rest of the build) until `shutdown`, exits 0;
//! - master accepts, then the connection drops: exits 0 without reconnecting;
//! - a second SIGTERM while draining: finishes the running command, refuses new ones, exits 0;
//! - no answer within `graceful_timeout`: the same fallback.
//!   (A stock Buildbot master's "does not exist" answer: tests/worker_protocol.rs and, with the
//!   real Buildbot 4.3.0, tests/worker_buildbot.rs.)

mod util;
mod worker_support;

use std::path::Path;
use std::time::Duration;

use taskotron_common::protocol::{CommandArgs, CommandLine, Op, Response, ShellArgs, Value};
use worker_support::fake_master::{Conn, FakeMaster, Trace};
use worker_support::OurWorker;

const T: Duration = Duration::from_secs(30);

fn shell(worker: &OurWorker, script: &str) -> CommandArgs {
    let wd = format!("{}/b/build", worker.basedir.display());
    CommandArgs::Shell(ShellArgs::new(&wd, CommandLine::Shell(script.into())))
}

/// Starts command `id` that creates `started` and then waits while `gate` exists.
async fn start_gated(conn: &mut Conn, worker: &OurWorker, id: &str, tmp: &Path) -> u64 {
    let (gate, started) = (tmp.join("gate"), tmp.join("started"));
    std::fs::write(&gate, "").unwrap();
    let script = format!(
        "touch {}; while [ -e {} ]; do sleep 0.05; done; echo step-{id}-done",
        started.display(),
        gate.display()
    );
    let seq = conn
        .send(shell(worker, &script).start_command(id, Some("b".into())))
        .await;
    util::wait_for("gated command to start", T, || {
        started.exists().then_some(())
    });
    seq
}

fn wait_log(worker: &OurWorker, what: &str) {
    util::wait_for(&format!("worker log line {what:?}"), T, || {
        worker.log_text().contains(what).then_some(())
    });
}

/// Opens the gate of command `id` (started by [`start_gated`]) and collects it: it exits 0.
async fn finish_gated(conn: &mut Conn, id: &str, seq: u64, tmp: &Path) -> Trace {
    std::fs::remove_file(tmp.join("gate")).unwrap();
    let t = conn.collect(id, Some(seq), |_| {}).await;
    assert_eq!(t.rc(), Some(0));
    t
}

/// A worker with gated command "1" running that, on SIGTERM, asked to shut down gracefully
/// and had it accepted. Returns command "1"'s seq_number too.
async fn draining(tmp: &Path) -> (FakeMaster, OurWorker, Conn, u64) {
    let (fm, worker, mut conn) = FakeMaster::with_attached_worker(tmp, "").await;
    let seq = start_gated(&mut conn, &worker, "1", tmp).await;
    sigterm_and_answer(&worker, &mut conn, |s| Some(Response::ok(s, Value::Nil))).await;
    wait_log(&worker, "draining:");
    (fm, worker, conn, seq)
}

/// A worker that will not take new work: command "2" is refused, the running gated command
/// "1" (`seq`) still finishes, and then the worker exits 0.
async fn refuses_new_then_finishes_and_exits(
    conn: &mut Conn,
    worker: &mut OurWorker,
    seq: u64,
    tmp: &Path,
) {
    let r = conn
        .call(shell(worker, "true").start_command("2", None))
        .await;
    assert!(
        r.error_text().is_some_and(|e| e.contains("shutting down")),
        "{r:?}"
    );
    finish_gated(conn, "1", seq, tmp).await;
    assert_eq!(worker.proc.wait_exit(T).code(), Some(0));
}

/// SIGTERM, then the worker's `graceful_shutdown` request, answered with `resp(seq)`.
async fn sigterm_and_answer(
    worker: &OurWorker,
    conn: &mut Conn,
    resp: impl FnOnce(u64) -> Option<Response>,
) {
    worker.proc.signal(libc::SIGTERM);
    let ask = conn.next_request(|op| *op == Op::GracefulShutdown).await;
    if let Some(r) = resp(ask.seq_number) {
        conn.reply(r).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_graceful_shutdown_runs_the_rest_of_the_build_until_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn, seq) = draining(tmp.path()).await;
    let t = finish_gated(&mut conn, "1", seq, tmp.path()).await;
    assert!(t.text("stdout").contains("step-1-done"));
    // The next step of the build is accepted and runs.
    let cmd = shell(&worker, "echo step-2-done");
    let t = conn.run_command("2", "shell", cmd.to_value()).await;
    assert!(
        t.start_reply.as_ref().is_some_and(|r| !r.is_exception),
        "{:?}",
        t.start_reply
    );
    assert_eq!(t.rc(), Some(0));
    assert!(t.text("stdout").contains("step-2-done"));
    // The master sends `shutdown` once the build is over: the worker exits 0.
    assert_eq!(conn.call(Op::Shutdown).await.result, Value::Nil);
    assert_eq!(worker.proc.wait_exit(T).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn draining_worker_exits_instead_of_reconnecting_when_the_master_goes_away() {
    let tmp = tempfile::tempdir().unwrap();
    let (fm, mut worker, conn, _seq) = draining(tmp.path()).await;
    drop(conn); // the master goes away mid-build
    assert_eq!(worker.proc.wait_exit(T).code(), Some(0));
    let log = worker.log_text();
    assert!(log.contains("connection lost"), "{log}");
    assert!(!log.contains("reconnecting"), "{log}");
    // Nothing dialled the master again (the listener is still open).
    let again = tokio::time::timeout(Duration::from_millis(1), fm.listener.accept()).await;
    assert!(again.is_err(), "the worker reconnected");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_sigterm_while_draining_finishes_only_the_running_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn, seq) = draining(tmp.path()).await;
    worker.proc.signal(libc::SIGTERM);
    wait_log(&worker, "second SIGTERM: finishing running commands");
    refuses_new_then_finishes_and_exits(&mut conn, &mut worker, seq, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unanswered_graceful_shutdown_falls_back_after_graceful_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn) =
        FakeMaster::with_attached_worker(tmp.path(), "graceful_timeout: 0.5\n").await;
    let seq = start_gated(&mut conn, &worker, "1", tmp.path()).await;
    sigterm_and_answer(&worker, &mut conn, |_| None).await;
    wait_log(&worker, "no answer to graceful_shutdown");
    refuses_new_then_finishes_and_exits(&mut conn, &mut worker, seq, tmp.path()).await;
}
