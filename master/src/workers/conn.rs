//! One worker connection: request/response correlation by `seq_number`, routing of
//! worker → master ops to the command they belong to, and the end of the connection.
//!
//! The socket itself is driven by `session.rs`; this type is what build steps and the setup
//! sequence talk to. Replies to `update_read_file` / `update_upload_*` are sent by the step
//! that owns the command (through a [`Responder`]), so a slow disk never blocks the reader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use taskotron_common::protocol::{
    encode, CommandArgs, Message, Op, Request, Response, UpdateItem, Value, WorkerInfo,
};
use tokio::sync::{mpsc, oneshot, watch};

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
    commands: Mutex<HashMap<String, mpsc::UnboundedSender<CmdEvent>>>,
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
    ) -> Result<(String, mpsc::UnboundedReceiver<CmdEvent>), ConnError> {
        let cid = COMMAND_IDS.fetch_add(1, Ordering::SeqCst).to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.commands).insert(cid.clone(), tx);
        if self.is_closed() {
            lock(&self.commands).remove(&cid);
            return Err(ConnError::Lost);
        }
        let op = args.start_command(cid.clone(), builder.map(str::to_string));
        match self.request(op, timeout).await {
            Ok(_) => Ok((cid, rx)),
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

    /// Handles one decoded message from the worker.
    pub fn handle(&self, msg: Message) {
        match msg {
            Message::Response(resp) => {
                if let Some(tx) = lock(&self.pending).remove(&resp.seq_number) {
                    let _ = tx.send(resp);
                } else {
                    tracing::warn!(worker = %self.name, seq = resp.seq_number, "response to an unknown request; dropped");
                }
            }
            Message::Request(req) => self.handle_request(req),
        }
    }

    fn responder(&self, seq: u64) -> Responder {
        Responder {
            out: self.out.clone(),
            seq,
        }
    }

    fn handle_request(&self, req: Request) {
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
        if let Err(mpsc::error::SendError(ev)) = chan.send(event) {
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
            let _ = tx.send(CmdEvent::Lost);
        }
        let _ = self.closed_tx.send(true);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
