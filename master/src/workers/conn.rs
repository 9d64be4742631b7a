//! One worker connection: request/response correlation by `seq_number`, routing of
//! worker → master ops to the command they belong to, and the end of the connection.
//!
//! The socket itself is driven by `session.rs`; this type is what build steps and the setup
//! sequence talk to. Replies to `update_read_file` / `update_upload_*` are sent by the step
//! that owns the command (through a [`Responder`]), so a slow disk never blocks the reader.
//!
//! Command traffic (log updates, upload blocks) waits in per-command queues until its step
//! takes it. Those queues share a byte budget per connection ([`BACKLOG_BYTES`]): when it is
//! used up, the reader stops reading the socket until a step catches up, so a worker that
//! does not wait for its update replies (buildbot-worker does not) is slowed down by TCP
//! instead of growing the master's memory without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskotron_common::protocol::{
    encode, CommandArgs, Message, Op, Request, Response, UpdateItem, Value, WorkerInfo,
};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

/// Bytes of command traffic a connection may have queued for its steps (see the module doc).
/// Larger than any frame the master accepts, so one frame always fits.
pub const BACKLOG_BYTES: u32 = 64 << 20;

/// A queued event and its share of the connection's backlog, returned when the step takes it.
type Queued = (CmdEvent, Option<OwnedSemaphorePermit>);

/// The receiving end of one command's events.
pub struct CmdEvents {
    rx: mpsc::UnboundedReceiver<Queued>,
}

impl CmdEvents {
    pub async fn recv(&mut self) -> Option<CmdEvent> {
        self.rx.recv().await.map(|(event, _backlog_share)| event)
    }
}

/// Master-process-wide command ids, like Buildbot's `RemoteCommand.generate_new_command_id`.
static COMMAND_IDS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnError {
    #[error("connection to worker lost")]
    Lost,
    #[error("worker did not answer {0} within the timeout")]
    Timeout(String),
    #[error("worker answered with an exception: {0}")]
    Remote(String),
}

/// Sends the one reply a worker request gets.
pub struct Responder {
    out: mpsc::UnboundedSender<Vec<u8>>,
    seq: u64,
}

impl Responder {
    pub fn ok(self, result: Value) {
        let _ = self
            .out
            .send(encode(&Message::Response(Response::ok(self.seq, result))));
    }
    pub fn err(self, msg: impl Into<String>) {
        let _ = self.out.send(encode(&Message::Response(Response::exception(
            self.seq, msg,
        ))));
    }
}

/// What a running command hears from the worker.
pub enum CmdEvent {
    Update(Vec<UpdateItem>),
    /// `None` on success, else the failure text.
    Complete(Option<String>),
    ReadFile {
        length: u64,
        reply: Responder,
    },
    ReadFileClose {
        reply: Responder,
    },
    UploadDirectoryWrite {
        data: Vec<u8>,
        reply: Responder,
    },
    UploadDirectoryUnpack {
        reply: Responder,
    },
    /// Any other upload op (`upload_file`): the step decides.
    OtherUpload {
        op: String,
        reply: Responder,
    },
    Lost,
}

pub struct Conn {
    pub name: String,
    pub workerid: i64,
    out: mpsc::UnboundedSender<Vec<u8>>,
    next_seq: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    commands: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
    backlog: Arc<Semaphore>,
    closed_tx: watch::Sender<bool>,
    closed: AtomicBool,
    info: Mutex<Option<WorkerInfo>>,
}

impl Conn {
    pub fn new(name: String, workerid: i64, out: mpsc::UnboundedSender<Vec<u8>>) -> Conn {
        Conn {
            name,
            workerid,
            out,
            next_seq: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            commands: Mutex::new(HashMap::new()),
            backlog: Arc::new(Semaphore::new(BACKLOG_BYTES as usize)),
            closed_tx: watch::channel(false).0,
            closed: AtomicBool::new(false),
            info: Mutex::new(None),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        let mut rx = self.closed_tx.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn set_info(&self, info: WorkerInfo) {
        *lock(&self.info) = Some(info);
    }

    pub fn basedir(&self) -> String {
        lock(&self.info)
            .as_ref()
            .map(|i| i.basedir.clone())
            .unwrap_or_default()
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&self, op: Op, timeout: Duration) -> Result<Value, ConnError> {
        let name = op.name().to_string();
        let (seq, rx) = self.send_request(op)?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                // A late reply will be logged and dropped; do not keep the slot forever.
                lock(&self.pending).remove(&seq);
                Err(ConnError::Timeout(name))
            }
            Ok(Err(_)) => Err(ConnError::Lost),
            Ok(Ok(resp)) if resp.is_exception => {
                Err(ConnError::Remote(resp.error_text().unwrap_or_default()))
            }
            Ok(Ok(resp)) => Ok(resp.result),
        }
    }

    fn send_request(&self, op: Op) -> Result<(u64, oneshot::Receiver<Response>), ConnError> {
        if self.is_closed() {
            return Err(ConnError::Lost);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(seq, tx);
        let frame = encode(&Message::Request(Request {
            seq_number: seq,
            op,
        }));
        if self.out.send(frame).is_err() {
            lock(&self.pending).remove(&seq);
            return Err(ConnError::Lost);
        }
        Ok((seq, rx))
    }

    /// Registers a command id, then sends `start_command` (updates may beat the reply).
    pub async fn start_command(
        &self,
        args: &CommandArgs,
        builder: Option<&str>,
        timeout: Duration,
    ) -> Result<(String, CmdEvents), ConnError> {
        let cid = COMMAND_IDS.fetch_add(1, Ordering::SeqCst).to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.commands).insert(cid.clone(), tx);
        if self.is_closed() {
            lock(&self.commands).remove(&cid);
            return Err(ConnError::Lost);
        }
        let op = args.start_command(cid.clone(), builder.map(str::to_string));
        match self.request(op, timeout).await {
            Ok(_) => Ok((cid, CmdEvents { rx })),
            Err(e) => {
                lock(&self.commands).remove(&cid);
                Err(e)
            }
        }
    }

    /// Forgets a finished command.
    pub fn end_command(&self, cid: &str) {
        lock(&self.commands).remove(cid);
    }

    pub async fn interrupt(
        &self,
        cid: &str,
        why: &str,
        builder: Option<&str>,
    ) -> Result<(), ConnError> {
        let op = Op::InterruptCommand {
            command_id: cid.to_string(),
            why: why.to_string(),
            builder_name: builder.map(str::to_string),
        };
        self.request(op, Duration::from_secs(30)).await.map(|_| ())
    }

    /// Answers one of the worker's requests directly (most answers go through a [`Responder`]).
    pub fn reply(&self, resp: Response) {
        let _ = self.out.send(encode(&Message::Response(resp)));
    }

    /// Waits until a message of `bytes` fits in the command backlog. The reader calls this
    /// for command traffic before [`Conn::handle`]; while it waits, the socket is not read.
    pub async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = bytes.clamp(1, BACKLOG_BYTES as usize) as u32;
        self.backlog.clone().acquire_many_owned(n).await.ok()
    }

    /// Handles one decoded message from the worker; `backlog_share` (from [`Conn::reserve`])
    /// travels with a command event until its step takes it.
    pub fn handle(&self, msg: Message, backlog_share: Option<OwnedSemaphorePermit>) {
        match msg {
            Message::Response(resp) => {
                if let Some(tx) = lock(&self.pending).remove(&resp.seq_number) {
                    let _ = tx.send(resp);
                } else {
                    tracing::warn!(worker = %self.name, seq = resp.seq_number, "response to an unknown request; dropped");
                }
            }
            Message::Request(req) => self.handle_request(req, backlog_share),
        }
    }

    fn responder(&self, seq: u64) -> Responder {
        Responder {
            out: self.out.clone(),
            seq,
        }
    }

    fn handle_request(&self, req: Request, backlog_share: Option<OwnedSemaphorePermit>) {
        let reply = self.responder(req.seq_number);
        let op_name = req.op.name().to_string();
        let Some(cid) = req.op.command_id().map(str::to_string) else {
            match req.op {
                Op::Unknown { op, .. } => {
                    tracing::warn!(worker = %self.name, op = %op, "unknown op from worker");
                    let _ = self
                        .out
                        .send(encode(&Message::Response(Response::unknown_op(
                            req.seq_number,
                            &op,
                        ))));
                }
                _ => reply.err(format!("op {op_name} is not accepted from a worker")),
            }
            return;
        };
        let chan = lock(&self.commands).get(&cid).cloned();
        let Some(chan) = chan else {
            reply.err(format!("unknown command_id {cid:?}"));
            return;
        };
        let event = match req.op {
            Op::Update { args, .. } => {
                reply.ok(Value::Nil);
                CmdEvent::Update(args)
            }
            Op::Complete { failure, .. } => {
                reply.ok(Value::Nil);
                lock(&self.commands).remove(&cid);
                CmdEvent::Complete(failure)
            }
            Op::ReadFile { length, .. } => CmdEvent::ReadFile { length, reply },
            Op::ReadFileClose { .. } => CmdEvent::ReadFileClose { reply },
            Op::UploadDirectoryWrite { data, .. } => CmdEvent::UploadDirectoryWrite { data, reply },
            Op::UploadDirectoryUnpack { .. } => CmdEvent::UploadDirectoryUnpack { reply },
            Op::UploadFileWrite { .. }
            | Op::UploadFileClose { .. }
            | Op::UploadFileUtime { .. } => CmdEvent::OtherUpload { op: op_name, reply },
            _ => {
                reply.err(format!("op {op_name} is not accepted from a worker"));
                return;
            }
        };
        if let Err(mpsc::error::SendError((ev, _))) = chan.send((event, backlog_share)) {
            // The step stopped listening; still answer so the worker is not left waiting.
            match ev {
                CmdEvent::ReadFile { reply, .. } => reply.ok(Value::Binary(vec![])),
                CmdEvent::ReadFileClose { reply }
                | CmdEvent::UploadDirectoryWrite { reply, .. }
                | CmdEvent::UploadDirectoryUnpack { reply }
                | CmdEvent::OtherUpload { reply, .. } => reply.err("command no longer running"),
                _ => {}
            }
        }
    }

    /// Marks the connection ended: pending requests fail, running commands hear `Lost`.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&self.pending).clear();
        let cmds: Vec<_> = lock(&self.commands).drain().collect();
        for (_, tx) in cmds {
            let _ = tx.send((CmdEvent::Lost, None));
        }
        let _ = self.closed_tx.send(true);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskotron_common::protocol::{decode, LogChunk, PathArgs};

    /// A worker that streams without waiting for replies fills the backlog; the reader then
    /// waits (stops reading the socket) until the step takes an event.
    #[tokio::test]
    async fn command_traffic_beyond_the_backlog_waits_for_the_step() {
        let (out, mut sent) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn::new("w".into(), 1, out));
        let c = conn.clone();
        let start = tokio::spawn(async move {
            let args = CommandArgs::Listdir(PathArgs {
                path: "build".into(),
                workdir: None,
            });
            c.start_command(&args, None, Duration::from_secs(60)).await
        });
        let Ok(Message::Request(req)) = decode(&sent.recv().await.unwrap()) else {
            panic!("expected start_command");
        };
        conn.handle(
            Message::Response(Response::ok(req.seq_number, Value::Nil)),
            None,
        );
        let (cid, mut events) = start.await.unwrap().unwrap();
        let update = |seq_number| {
            Message::Request(Request {
                seq_number,
                op: Op::Update {
                    command_id: cid.clone(),
                    args: vec![UpdateItem::Stdout(LogChunk::from_text("x\n", 0.0))],
                },
            })
        };
        let quarter = BACKLOG_BYTES as usize / 4;
        for seq in 0..4 {
            let share = conn.reserve(quarter).await;
            conn.handle(update(seq), share);
        }
        let mut fifth = Box::pin(conn.reserve(quarter));
        assert!(
            futures_util::poll!(&mut fifth).is_pending(),
            "backlog full: the reader must wait"
        );
        assert!(matches!(events.recv().await, Some(CmdEvent::Update(_))));
        assert!(
            futures_util::poll!(&mut fifth).is_ready(),
            "the step took one event: room for one more"
        );
        // Every update was answered at once (the worker is not blocked by our bookkeeping).
        let replies = std::iter::from_fn(|| sent.try_recv().ok()).count();
        assert_eq!(replies, 4);
    }
}
