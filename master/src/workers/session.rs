//! One worker's session after the WebSocket upgrade: socket I/O, duplicate-login handling,
//! Buildbot's setup sequence, keepalive heartbeats, and cleanup when the worker goes away.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use taskotron_common::protocol::{
    decode_bounded, encode, CommandArgs, Message, MkdirArgs, Op, PathArgs, Paths, Request,
    Response, UpdateItem, Value, WorkerInfo, WorkerSettings,
};
use tokio::sync::mpsc;

use super::{builders_for_arch, CmdEvent, Conn, Slot};
use crate::state::Master;

/// How long the old connection of a duplicate login has to answer (Buildbot: 10 s).
const DUPLICATE_PING: Duration = Duration::from_secs(10);
/// Timeout for setup requests.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(master: Arc<Master>, socket: WebSocket, name: String) {
    let workerid = match master.db.ensure_worker(&name) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(worker = %name, "cannot record worker: {e}");
            return;
        }
    };
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let conn = Arc::new(Conn::new(name.clone(), workerid, out_tx.clone()));

    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if sink.send(WsMessage::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let max = master.cfg.limits.max_frame_bytes;
    let rconn = conn.clone();
    let rmaster = master.clone();
    let reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(WsMessage::Binary(data)) => match decode_bounded(&data, max) {
                    // Our protocol extension: the worker asks to be drained (SIGTERM).
                    Ok(Message::Request(Request {
                        seq_number,
                        op: Op::GracefulShutdown,
                    })) => super::drain::worker_asked(&rmaster, &rconn, seq_number),
                    Ok(m) => {
                        // Command traffic waits for room in the backlog (bounded memory).
                        let share = match &m {
                            Message::Request(r) if r.op.command_id().is_some() => {
                                rconn.reserve(data.len()).await
                            }
                            _ => None,
                        };
                        rconn.handle(m, share)
                    }
                    Err(e) => match e.reply_to() {
                        Some(seq) => {
                            tracing::warn!(worker = %rconn.name, "bad message: {e}");
                            let _ = out_tx.send(encode(&Message::Response(Response::exception(
                                seq,
                                e.to_string(),
                            ))));
                        }
                        None => {
                            tracing::warn!(worker = %rconn.name, "undecodable frame dropped: {e}")
                        }
                    },
                },
                Ok(WsMessage::Text(_)) => {
                    tracing::warn!(worker = %rconn.name, "text frame ignored (the protocol uses binary frames)")
                }
                Ok(WsMessage::Close(_)) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(worker = %rconn.name, "connection error: {e}");
                    break;
                }
            }
        }
        rconn.close();
    });

    if handle_duplicate(&master, &conn).await {
        conn.close();
    } else {
        match setup(&master, &conn).await {
            Ok(slot) => {
                let arch = slot.arch.clone();
                master.workers.insert(slot);
                tracing::info!(worker = %name, arch = %arch, "worker attached");
                master.wake.notify_one();
                heartbeat(&master, &conn).await;
            }
            Err(e) => tracing::warn!(worker = %name, "worker setup failed: {e}"),
        }
        conn.close();
    }
    reader.abort();
    writer.abort();
    let was_current = master
        .workers
        .get_conn(&name)
        .is_some_and(|c| Arc::ptr_eq(&c, &conn));
    master.workers.remove_if(&conn);
    if was_current || master.workers.get_conn(&name).is_none() {
        let _ = master.db.set_worker_connected(workerid, false, None);
    }
    tracing::info!(worker = %name, "worker detached");
    master.wake.notify_one();
}

/// If a worker of that name is already connected, pings it: when it answers, the new login is
/// refused (returns true); otherwise the old connection is dropped.
async fn handle_duplicate(master: &Master, conn: &Arc<Conn>) -> bool {
    let Some(old) = master.workers.get_conn(&conn.name) else {
        return false;
    };
    let op = Op::Print {
        message: "master got a duplicate connection".into(),
    };
    let wait = DUPLICATE_PING.min(Duration::from_secs_f64(master.cfg.heartbeat.timeout));
    match old.request(op, wait).await {
        Ok(_) => {
            tracing::warn!(worker = %conn.name, "duplicate login refused: the existing connection is alive");
            true
        }
        Err(_) => {
            tracing::warn!(worker = %conn.name, "replacing a dead connection with a new login");
            old.close();
            master.workers.remove_if(&old);
            false
        }
    }
}

/// Buildbot's sequence: print attached → get_worker_info → set_worker_settings → listdir
/// basedir → mkdir missing builder dirs → print attached per builder.
fn err(what: &'static str) -> impl Fn(super::ConnError) -> String {
    move |e| format!("{what}: {e}")
}

async fn setup(master: &Master, conn: &Arc<Conn>) -> Result<Slot, String> {
    conn.request(
        Op::Print {
            message: "attached".into(),
        },
        SETUP_TIMEOUT,
    )
    .await
    .map_err(err("print"))?;
    let info_v = conn
        .request(Op::GetWorkerInfo, SETUP_TIMEOUT)
        .await
        .map_err(err("get_worker_info"))?;
    let info =
        WorkerInfo::from_value(&info_v).map_err(|e| format!("get_worker_info result: {e}"))?;
    if info.basedir.is_empty() || !info.basedir.starts_with('/') {
        return Err(format!(
            "worker basedir {:?} is not an absolute POSIX path",
            info.basedir
        ));
    }
    let wcfg = master
        .cfg
        .worker(&conn.name)
        .ok_or("worker removed from config")?;
    let arch = info
        .text("arch")
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| wcfg.arch.clone());
    conn.set_info(info.clone());
    conn.request(
        Op::SetWorkerSettings(WorkerSettings::default()),
        SETUP_TIMEOUT,
    )
    .await
    .map_err(err("set_worker_settings"))?;

    let existing = run_simple(
        conn,
        CommandArgs::Listdir(PathArgs {
            path: info.basedir.clone(),
            workdir: None,
        }),
    )
    .await?
    .unwrap_or_default();
    let builders = builders_for_arch(&arch);
    let missing: Vec<String> = builders
        .iter()
        .filter(|b| !existing.contains(b))
        .map(|b| format!("{}/{}", info.basedir.trim_end_matches('/'), b))
        .collect();
    if !missing.is_empty() {
        run_simple(
            conn,
            CommandArgs::Mkdir(MkdirArgs {
                paths: Paths::List(missing),
            }),
        )
        .await?;
    }
    for b in &builders {
        master.db.ensure_builder(b).map_err(|e| e.to_string())?;
        conn.request(
            Op::Print {
                message: "attached".into(),
            },
            SETUP_TIMEOUT,
        )
        .await
        .map_err(err("print"))?;
    }
    let paused = master
        .db
        .workers_json(
            &crate::db::Filter::by("workerid", conn.workerid),
            &|_| vec![],
        )
        .ok()
        .and_then(|v| v.first().and_then(|w| w["paused"].as_bool()))
        .unwrap_or(false);
    let mut info_json = serde_json::Map::new();
    for key in ["admin", "host", "access_uri", "version", "arch"] {
        let v = match key {
            "version" => Some(info.version.clone()),
            _ => info.text(key).map(str::to_string),
        };
        info_json.insert(
            key.into(),
            v.map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
    }
    master
        .db
        .set_worker_connected(
            conn.workerid,
            true,
            Some(&serde_json::Value::Object(info_json)),
        )
        .map_err(|e| e.to_string())?;
    Ok(Slot {
        conn: conn.clone(),
        arch,
        max_builds: wcfg.max_builds,
        running: 0,
        busy: vec![false; wcfg.max_builds as usize],
        paused,
        stopping: false,
    })
}

/// Runs a setup command (listdir/mkdir) and returns the `files` update if any.
async fn run_simple(conn: &Conn, args: CommandArgs) -> Result<Option<Vec<String>>, String> {
    let name = args.name();
    let (cid, mut rx) = conn
        .start_command(&args, None, SETUP_TIMEOUT)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let mut files = None;
    let mut rc = None;
    let res = tokio::time::timeout(SETUP_TIMEOUT, async {
        while let Some(ev) = rx.recv().await {
            match ev {
                CmdEvent::Update(items) => {
                    for it in items {
                        match it {
                            UpdateItem::Files(f) => files = Some(f),
                            UpdateItem::Rc(r) => rc = Some(r),
                            _ => {}
                        }
                    }
                }
                CmdEvent::Complete(None) => return Ok(()),
                CmdEvent::Complete(Some(f)) => return Err(format!("{name} failed: {f}")),
                CmdEvent::Lost => return Err("connection lost".to_string()),
                CmdEvent::ReadFile { reply, .. } => reply.ok(Value::Binary(vec![])),
                CmdEvent::ReadFileClose { reply }
                | CmdEvent::UploadDirectoryWrite { reply, .. }
                | CmdEvent::UploadDirectoryUnpack { reply }
                | CmdEvent::OtherUpload { reply, .. } => reply.err("unexpected during setup"),
            }
        }
        Err("connection lost".to_string())
    })
    .await;
    conn.end_command(&cid);
    match res {
        Err(_) => Err(format!("{name}: timed out")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) if rc.unwrap_or(0) != 0 => Err(format!("{name} exited with rc {rc:?}")),
        Ok(Ok(())) => Ok(files),
    }
}

/// Sends `keepalive` every interval; a reply missing for `timeout` means the worker is lost.
async fn heartbeat(master: &Master, conn: &Arc<Conn>) {
    let interval = Duration::from_secs_f64(master.cfg.heartbeat.interval);
    let timeout = Duration::from_secs_f64(master.cfg.heartbeat.timeout);
    loop {
        tokio::select! {
            _ = conn.closed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        tokio::select! {
            _ = conn.closed() => return,
            r = conn.request(Op::Keepalive, timeout) => match r {
                Ok(_) | Err(super::ConnError::Remote(_)) => master.metrics.heartbeat_ok(&conn.name),
                Err(e) => {
                    master.metrics.worker_lost(matches!(e, super::ConnError::Timeout(_)));
                    tracing::warn!(worker = %conn.name, "worker lost: {e}");
                    return;
                }
            }
        }
        if master.workers.is_idle_stopping(&conn.name) {
            // A drained worker whose `shutdown` (sent when its last build ended) was lost.
            let _ = conn.request(Op::Shutdown, timeout).await;
        }
    }
}
