//! A minimal scripted master for protocol-level tests of our worker: accepts one WebSocket
//! connection (recording the Authorization header), sends requests, and answers the worker's
//! requests the way the spec says (acks, bytes for `update_read_file`).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use taskotron_common::protocol::{
    decode, encode, Message, Op, Request, Response, UpdateItem, Value,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as HsRequest, Response as HsResponse,
};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(60);

pub struct FakeMaster {
    pub listener: TcpListener,
    pub port: u16,
}

impl FakeMaster {
    pub async fn bind() -> FakeMaster {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        FakeMaster { listener, port }
    }

    /// A fresh fake master with our worker (config `overrides`, basedir under `root`)
    /// connected to it, after the first step of Buildbot's setup: `print("attached")`.
    pub async fn with_attached_worker(
        root: &std::path::Path,
        overrides: &str,
    ) -> (FakeMaster, super::OurWorker, Conn) {
        let fm = FakeMaster::bind().await;
        let worker = super::OurWorker::start(root, fm.port, overrides);
        let mut conn = fm.accept().await;
        let r = conn
            .call(Op::Print {
                message: "attached".into(),
            })
            .await;
        assert_eq!(r.result, Value::Nil);
        (fm, worker, conn)
    }

    /// Accepts the next worker connection.
    // The handshake callback's Result type is fixed by tungstenite.
    #[allow(clippy::result_large_err)]
    pub async fn accept(&self) -> Conn {
        let (tcp, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("worker connects in time")
            .unwrap();
        let mut auth = None;
        let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &HsRequest, resp: HsResponse| {
            auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(resp)
        })
        .await
        .expect("websocket handshake");
        Conn {
            ws,
            seq: 0,
            auth,
            inbox: VecDeque::new(),
            download: Vec::new(),
            utime_exception: None,
        }
    }
}

/// Everything the worker sent for one command.
#[derive(Debug, Default)]
pub struct Trace {
    pub updates: Vec<UpdateItem>,
    pub ops: Vec<Op>,
    pub failure: Option<String>,
    pub start_reply: Option<Response>,
}

impl Trace {
    pub fn rc(&self) -> Option<i64> {
        self.updates.iter().rev().find_map(|u| match u {
            UpdateItem::Rc(rc) => Some(*rc),
            _ => None,
        })
    }
    pub fn text(&self, key: &str) -> String {
        self.updates
            .iter()
            .filter_map(|u| match u {
                UpdateItem::Stdout(c) if key == "stdout" => Some(c.text.clone()),
                UpdateItem::Stderr(c) if key == "stderr" => Some(c.text.clone()),
                UpdateItem::Header(c) if key == "header" => Some(c.text.clone()),
                UpdateItem::Log(n, c) if key == n => Some(c.text.clone()),
                _ => None,
            })
            .collect()
    }
    pub fn has(&self, key: &str) -> bool {
        self.updates.iter().any(|u| u.key() == key)
    }
}

pub struct Conn {
    pub ws: WebSocketStream<TcpStream>,
    seq: u64,
    pub auth: Option<String>,
    inbox: VecDeque<Message>,
    /// Bytes served to `update_read_file` (spec behaviour, unlike Buildbot 4.3).
    pub download: Vec<u8>,
    /// When set, `update_upload_file_utime` is refused with this text (Buildbot 4.3's bug).
    pub utime_exception: Option<String>,
}

impl Conn {
    pub async fn send_raw(&mut self, msg: Ws) {
        self.ws.send(msg).await.expect("send to worker");
    }

    /// Sends a request; returns its seq_number.
    pub async fn send(&mut self, op: Op) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        let bytes = encode(&Message::request(seq, op));
        self.send_raw(Ws::Binary(bytes.into())).await;
        seq
    }

    /// Next decoded message from the worker (None: connection closed).
    pub async fn recv(&mut self) -> Option<Message> {
        if let Some(m) = self.inbox.pop_front() {
            return Some(m);
        }
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("worker answers in time");
            match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(Ws::Binary(b))) => return Some(decode(&b).expect("worker frames decode")),
                Some(Ok(Ws::Close(_))) => return None,
                Some(Ok(_)) => continue, // pings/pongs
            }
        }
    }

    /// Sends a request and waits for its response, answering worker requests meanwhile.
    pub async fn call(&mut self, op: Op) -> Response {
        let seq = self.send(op).await;
        let mut held = VecDeque::new();
        let resp = loop {
            match self.recv().await.expect("connection open") {
                Message::Response(r) if r.seq_number == seq => break r,
                other => held.push_back(other),
            }
        };
        self.inbox.extend(held);
        resp
    }

    /// Reads until a worker request matching `pred` arrives; everything else read meanwhile is
    /// kept, in order, for the next `recv`/`collect`.
    pub async fn next_request(&mut self, pred: impl Fn(&Op) -> bool) -> Request {
        let mut held = VecDeque::new();
        let mut found = None;
        // Look at what is already held back first, then at the socket.
        while let Some(m) = self.inbox.pop_front() {
            match m {
                Message::Request(r) if found.is_none() && pred(&r.op) => found = Some(r),
                other => held.push_back(other),
            }
        }
        let req = match found {
            Some(r) => r,
            None => loop {
                match self.recv().await.expect("connection open") {
                    Message::Request(r) if pred(&r.op) => break r,
                    other => held.push_back(other),
                }
            },
        };
        held.extend(self.inbox.drain(..));
        self.inbox = held;
        req
    }

    /// Sends a response of our choosing (e.g. Buildbot's answer to an op it does not know).
    pub async fn reply(&mut self, resp: Response) {
        let bytes = encode(&Message::Response(resp));
        self.send_raw(Ws::Binary(bytes.into())).await;
    }

    /// Answers one worker request like a spec-following master.
    pub async fn answer(&mut self, r: &Request) {
        let resp = match (&r.op, &self.utime_exception) {
            (Op::ReadFile { length, .. }, _) => {
                let n = (*length as usize).min(self.download.len());
                Response::ok(
                    r.seq_number,
                    Value::Binary(self.download.drain(..n).collect()),
                )
            }
            (Op::UploadFileUtime { .. }, Some(e)) => Response::exception(r.seq_number, e.clone()),
            _ => Response::ok(r.seq_number, Value::Nil),
        };
        let bytes = encode(&Message::Response(resp));
        // The worker may already be gone (e.g. the ack of its last `complete` before exiting).
        let _ = self.ws.send(Ws::Binary(bytes.into())).await;
    }

    /// Starts a command and collects everything until its `complete`.
    pub async fn run_command(&mut self, id: &str, name: &str, args: Value) -> Trace {
        let seq = self
            .send(Op::StartCommand {
                command_id: id.into(),
                command_name: name.into(),
                args,
                builder_name: Some("b".into()),
            })
            .await;
        self.collect(id, Some(seq), |_| {}).await
    }

    /// Collects one command's messages until `complete`; `on_update` sees each update item
    /// (e.g. to interrupt once output appears).
    pub async fn collect(
        &mut self,
        id: &str,
        start_seq: Option<u64>,
        mut on_update: impl FnMut(&UpdateItem),
    ) -> Trace {
        let mut t = Trace::default();
        loop {
            let msg = self.recv().await.expect("connection open until complete");
            match msg {
                Message::Response(r) => {
                    if Some(r.seq_number) == start_seq {
                        let failed = r.is_exception;
                        t.start_reply = Some(r);
                        if failed {
                            return t;
                        }
                    }
                }
                Message::Request(r) => {
                    self.answer(&r).await;
                    assert_eq!(
                        r.op.command_id(),
                        Some(id),
                        "message for another command: {r:?}"
                    );
                    match &r.op {
                        Op::Update { args, .. } => {
                            for u in args {
                                on_update(u);
                            }
                            t.updates.extend(args.iter().cloned());
                        }
                        Op::Complete { failure, .. } => {
                            t.failure = failure.clone();
                            return t;
                        }
                        other => t.ops.push(other.clone()),
                    }
                }
            }
        }
    }
}

/// Builds a msgpack map from (key, value) pairs.
pub fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}
