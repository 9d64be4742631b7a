//! A scriptable protocol client for the master's worker port (tokio-tungstenite +
//! `taskotron_common::protocol`): it logs in, answers the master's setup requests like an idle
//! buildbot-worker, and lets a test send raw frames (garbage, oversized, unknown ops) and read
//! the master's replies. Used for the bad-input tests and the 100-idle-workers measurement.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use taskotron_common::protocol::{
    decode, encode, Message, Op, Request, Response, UpdateItem, Value, WorkerInfo,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// Opens the WebSocket with the given `Authorization` header; Err(status) if refused.
pub async fn open(
    port: u16,
    authorization: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut req = format!("ws://127.0.0.1:{port}/")
        .into_client_request()
        .unwrap();
    if let Some(a) = authorization {
        req.headers_mut()
            .insert("Authorization", a.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect: {e}"),
    }
}

pub fn basic(name: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
    )
}

/// A logged-in fake worker: answers every master request; the test sends frames through
/// `send_raw` and reads replies to its own requests from `responses`.
pub struct FakeWorker {
    out: mpsc::UnboundedSender<WsMessage>,
    pub responses: mpsc::UnboundedReceiver<Response>,
    pub closed: tokio::sync::watch::Receiver<bool>,
    pub ops_seen: mpsc::UnboundedReceiver<String>,
}

impl FakeWorker {
    pub async fn connect(port: u16, name: &str, password: &str) -> FakeWorker {
        let ws = open(port, Some(&basic(name, password)))
            .await
            .expect("login");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (resp_tx, responses) = mpsc::unbounded_channel();
        let (ops_tx, ops_seen) = mpsc::unbounded_channel();
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let basedir = format!("/tmp/fake-worker-{name}");
        let out2 = out.clone();
        tokio::spawn(async move {
            let mut seq = 1_000_000u64;
            while let Some(Ok(msg)) = stream.next().await {
                let WsMessage::Binary(data) = msg else {
                    if let WsMessage::Close(_) = msg {
                        break;
                    }
                    continue;
                };
                let Ok(m) = decode(&data) else { continue };
                match m {
                    // Replies to our own automatic update/complete (seq ≥ 1e6) are not the test's.
                    Message::Response(r) if r.seq_number < 1_000_000 => {
                        let _ = resp_tx.send(r);
                    }
                    Message::Response(_) => {}
                    Message::Request(Request { seq_number, op }) => {
                        let _ = ops_tx.send(op.name().to_string());
                        let result = match &op {
                            Op::GetWorkerInfo => {
                                let mut info = WorkerInfo {
                                    basedir: basedir.clone(),
                                    system: "posix".into(),
                                    numcpus: 1,
                                    version: "4.3.0".into(),
                                    ..Default::default()
                                };
                                info.extra
                                    .insert("admin".into(), Value::from("fake <f@example.org>\n"));
                                info.extra.insert("host".into(), Value::from("fake\n"));
                                info.to_value()
                            }
                            _ => Value::Nil,
                        };
                        let _ = out2.send(WsMessage::Binary(
                            encode(&Message::Response(Response::ok(seq_number, result))).into(),
                        ));
                        if let Op::StartCommand { command_id, .. } = op {
                            for op in [
                                Op::Update {
                                    command_id: command_id.clone(),
                                    args: vec![UpdateItem::Files(vec![]), UpdateItem::Rc(0)],
                                },
                                Op::Complete {
                                    command_id,
                                    failure: None,
                                },
                            ] {
                                seq += 1;
                                let frame = encode(&Message::Request(Request {
                                    seq_number: seq,
                                    op,
                                }));
                                let _ = out2.send(WsMessage::Binary(frame.into()));
                            }
                        }
                    }
                }
            }
            let _ = closed_tx.send(true);
        });
        FakeWorker {
            out,
            responses,
            closed,
            ops_seen,
        }
    }

    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    pub fn send_text(&self, text: &str) {
        let _ = self.out.send(WsMessage::Text(text.to_string().into()));
    }

    /// Waits until the master has sent `op` (e.g. the first `keepalive` after setup).
    pub async fn wait_op(&mut self, op: &str, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, async {
            while let Some(o) = self.ops_seen.recv().await {
                if o == op {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }

    pub async fn next_response(&mut self, timeout: Duration) -> Option<Response> {
        tokio::time::timeout(timeout, self.responses.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.closed.wait_for(|c| *c))
            .await
            .is_ok()
    }
}
