//! Graceful stop of one worker ("drain", Buildbot's REST `stop`): it gets no new builds, its
//! running builds finish, then it is sent `shutdown`. One implementation for every way to ask:
//! REST `POST /api/v2/workers/<id> {"method":"stop"}` (and `taskotron-master workers drain`),
//! the UI's Drain button, and the worker itself with `graceful_shutdown`.
//!
//! `graceful_shutdown` is a Taskotron extension of `msgpack_experimental_v7` (docs/master.md):
//! a worker sends it on SIGTERM because msgpack, unlike PB (`perspective.shutdown`, what
//! `buildbot-worker --allow-shutdown` uses), gives a worker no way to ask for a drain, and
//! cannot tell it where a build ends. The sending of `shutdown` once the last build ends is done
//! where builds end (`build::run`) and by the heartbeat (`session.rs`).

use std::sync::Arc;
use std::time::Duration;

use taskotron_common::protocol::{Op, Response};

use super::Conn;
use crate::db::DbError;
use crate::state::Master;

/// How long the worker has to answer `shutdown` (it exits right after answering).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Drains worker `name`: no new builds; `shutdown` now if it is idle, else when its last build
/// ends. Returns whether it is connected (`None`: not connected; the flag is still recorded).
/// The in-memory drain takes effect even when recording the `graceful` flag fails (the error is
/// logged and returned so a caller can report it).
pub fn drain(master: &Master, name: &str, workerid: i64) -> Result<Option<bool>, DbError> {
    let idle = master.workers.set_stopping(name);
    if idle == Some(true) {
        if let Some(conn) = master.workers.get_conn(name) {
            send_shutdown(conn);
        }
    }
    if let Err(e) = master.db.set_worker_graceful(workerid, true) {
        tracing::error!(worker = %name, "drain in effect, but the graceful flag was not recorded: {e}");
        return Err(e);
    }
    Ok(idle)
}

/// Sends `shutdown` in the background (its answer only confirms the worker is going).
pub fn send_shutdown(conn: Arc<Conn>) {
    tokio::spawn(async move {
        let _ = conn.request(Op::Shutdown, SHUTDOWN_TIMEOUT).await;
    });
}

/// The worker's own `graceful_shutdown` request (sequence number `seq`): drain it like REST
/// `stop` and answer success. A worker that is not attached yet (still in the setup sequence,
/// or a refused duplicate login) gets an exception and falls back to stopping on its own.
pub fn worker_asked(master: &Master, conn: &Arc<Conn>, seq: u64) {
    let attached = master
        .workers
        .get_conn(&conn.name)
        .is_some_and(|c| Arc::ptr_eq(&c, conn));
    if !attached {
        conn.reply(Response::exception(
            seq,
            "worker is not attached; nothing to drain",
        ));
        return;
    }
    // Answer first, so the worker reads the acceptance before a `shutdown` for an idle worker.
    conn.reply(Response::ok(seq, taskotron_common::protocol::Value::Nil));
    tracing::info!(worker = %conn.name, "worker asked for a graceful shutdown: no new builds; shutdown once its builds finish");
    let _ = drain(master, &conn.name, conn.workerid); // a DB error is logged there
}
