//! One simulated worker: a msgpack_experimental_v7 client that logs in, answers every master
//! request at once, and runs every remote command instantly with plausible updates and rc 0.
//!
//! It pulls `download_file` data through `update_read_file` and pushes a small tar.gz through
//! `update_upload_directory_*` like a real buildbot-worker, so the master does the same work it
//! would do for a real job. Commands whose arguments mention a job uuid of this run are timed:
//! the first `shell` is the job's start, the end of `upload_directory` its end.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use taskotron_common::protocol::{
    decode, encode, LogChunk, Message, Op, Request, Response, UpdateItem, Value, WorkerInfo,
    COMMAND_VERSION, WORKER_COMMANDS,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::shared::Shared;

const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The sending half of a connection plus the table of our requests awaiting a reply.
#[derive(Clone)]
struct Link {
    out: mpsc::UnboundedSender<WsMessage>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>,
    next_seq: Arc<std::sync::atomic::AtomicU64>,
}

impl Link {
    fn send(&self, msg: &Message) {
        let _ = self.out.send(WsMessage::Binary(encode(msg).into()));
    }

    /// Sends a worker → master request and waits for its reply.
    async fn call(&self, op: Op) -> anyhow::Result<Value> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(seq, tx);
        self.send(&Message::Request(Request {
            seq_number: seq,
            op,
        }));
        let r = tokio::time::timeout(REPLY_TIMEOUT, rx)
            .await
            .map_err(|_| anyhow::anyhow!("no reply within {REPLY_TIMEOUT:?}"))?
            .map_err(|_| anyhow::anyhow!("connection closed"))?;
        if r.is_exception {
            anyhow::bail!("master answered with an exception: {:?}", r.error_text());
        }
        Ok(r.result)
    }
}

/// Connects as `name`, serves the connection until it closes; returns Ok after a clean close.
pub async fn serve(shared: Arc<Shared>, index: usize, name: String) -> anyhow::Result<()> {
    let mut req = shared.worker_url.as_str().into_client_request()?;
    let auth = crate::basic_auth(&name, &shared.worker_password);
    req.headers_mut().insert("Authorization", auth.parse()?);
    // TCP_NODELAY: the simulated worker must not add Nagle/delayed-ACK stalls (~40 ms per
    // round trip) that would be measured as master latency.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let link = Link {
        out,
        pending: Arc::new(Mutex::new(HashMap::new())),
        next_seq: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    };
    let mut attached = false;
    while let Some(msg) = stream.next().await {
        let data = match msg {
            Ok(WsMessage::Binary(d)) => d,
            Ok(WsMessage::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Ok(m) = decode(&data) else { continue };
        match m {
            Message::Response(r) => {
                if let Some(tx) = link.pending.lock().unwrap().remove(&r.seq_number) {
                    let _ = tx.send(r);
                }
            }
            Message::Request(Request { seq_number, op }) => {
                // Keepalives never stop (every 5 s per worker: with hundreds of workers one is
                // nearly always in flight), so they do not count as setup activity.
                if !matches!(op, Op::Keepalive) {
                    shared
                        .last_setup_ns
                        .store(shared.now_ns(), Ordering::Relaxed);
                }
                let result = match &op {
                    Op::GetWorkerInfo => worker_info(&name),
                    _ => Value::Nil,
                };
                link.send(&Message::Response(Response::ok(seq_number, result)));
                match op {
                    Op::SetWorkerSettings(_) if !attached => {
                        attached = true;
                        shared.attached.fetch_add(1, Ordering::Relaxed);
                    }
                    Op::StartCommand {
                        command_id,
                        command_name,
                        args,
                        ..
                    } => {
                        let (l, s) = (link.clone(), shared.clone());
                        tokio::spawn(async move {
                            if let Err(e) =
                                run_command(&l, &s, &command_id, &command_name, &args).await
                            {
                                s.command_errors.fetch_add(1, Ordering::Relaxed);
                                if s.verbose {
                                    eprintln!("worker {index}: {command_name}: {e}");
                                }
                            }
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    if attached {
        shared.attached.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

fn worker_info(name: &str) -> Value {
    let mut info = WorkerInfo {
        basedir: format!("/tmp/loadgen/{name}"),
        system: "posix".into(),
        numcpus: 1,
        version: "4.3.0".into(),
        ..Default::default()
    };
    for c in WORKER_COMMANDS {
        info.worker_commands
            .insert(c.to_string(), COMMAND_VERSION.to_string());
    }
    info.extra
        .insert("admin".into(), Value::from("loadgen <loadgen@localhost>\n"));
    info.extra.insert("host".into(), Value::from("loadgen\n"));
    info.extra.insert("arch".into(), Value::from("x86_64\n"));
    info.to_value()
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn update(link: &Link, cid: &str, items: Vec<UpdateItem>) -> anyhow::Result<()> {
    link.call(Op::Update {
        command_id: cid.to_string(),
        args: items,
    })
    .await
    .map(|_| ())
}

async fn run_command(
    link: &Link,
    shared: &Arc<Shared>,
    cid: &str,
    name: &str,
    args: &Value,
) -> anyhow::Result<()> {
    let job = shared.job_in(args);
    match name {
        "download_file" | "downloadFile" => {
            // Pull the whole file like a real worker (bounded, in case the master loops).
            let mut total = 0usize;
            loop {
                let v = link
                    .call(Op::ReadFile {
                        command_id: cid.to_string(),
                        length: 65536,
                    })
                    .await?;
                let n = match &v {
                    Value::Binary(b) => b.len(),
                    Value::String(s) => s.as_bytes().len(),
                    _ => 0,
                };
                total += n;
                if n == 0 || total > 256 << 20 {
                    break;
                }
            }
            link.call(Op::ReadFileClose {
                command_id: cid.to_string(),
            })
            .await?;
        }
        "upload_directory" | "uploadDirectory" => {
            link.call(Op::UploadDirectoryWrite {
                command_id: cid.to_string(),
                data: shared.upload_tgz.clone(),
            })
            .await?;
            link.call(Op::UploadDirectoryUnpack {
                command_id: cid.to_string(),
            })
            .await?;
        }
        "upload_file" | "uploadFile" => {
            link.call(Op::UploadFileWrite {
                command_id: cid.to_string(),
                data: b"results: []\n".to_vec(),
            })
            .await?;
            link.call(Op::UploadFileClose {
                command_id: cid.to_string(),
            })
            .await?;
        }
        "shell" => {
            if let Some(j) = job {
                shared.mark_start(j);
                if shared.is_flood(j) {
                    // Flooding workers stand for other machines: they stream on their own
                    // threads, so the measured workers' replies never queue behind them here.
                    let (l, s, c) = (link.clone(), shared.clone(), cid.to_string());
                    shared
                        .flood_runtime
                        .spawn(async move { flood(&l, &s, &c).await })
                        .await??;
                }
            }
            let text = "Running check ... PASSED\n";
            update(
                link,
                cid,
                vec![UpdateItem::Stdout(LogChunk::from_text(text, now_f64()))],
            )
            .await?;
        }
        "listdir" | "glob" => update(link, cid, vec![UpdateItem::Files(vec![])]).await?,
        _ => {}
    }
    update(link, cid, vec![UpdateItem::Rc(0), UpdateItem::Elapsed(0.0)]).await?;
    link.call(Op::Complete {
        command_id: cid.to_string(),
        failure: None,
    })
    .await?;
    if let (Some(j), true) = (job, matches!(name, "upload_directory" | "uploadDirectory")) {
        shared.mark_end(j);
    }
    Ok(())
}

/// Streams `shared.flood_bytes` of stdout in 64 KiB updates, each acknowledged before the next
/// (buildbot-worker also waits for the master's reply to an update).
async fn flood(link: &Link, shared: &Shared, cid: &str) -> anyhow::Result<()> {
    let line =
        "flood 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\n";
    let per_chunk = 65536 / line.len();
    let mut sent = 0u64;
    while sent < shared.flood_bytes {
        let t = now_f64();
        let chunk = LogChunk::from_lines(std::iter::repeat_n((line, t), per_chunk));
        sent += (per_chunk * line.len()) as u64;
        update(link, cid, vec![UpdateItem::Stdout(chunk)]).await?;
    }
    Ok(())
}
