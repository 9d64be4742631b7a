//! One WebSocket session with the master: connect with HTTP Basic auth, then read frames,
//! answer the master's requests (see [`super::handler`]) and route responses to our own
//! requests, while a writer task sends frames in order and the heartbeat watches for silence.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use taskotron_common::protocol::{decode_bounded, Message, Response, DEFAULT_MAX_FRAME};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::config::WorkerConfig;
use super::handler::{Handler, Verdict};
use super::heartbeat::{watch_master, LastSeen};
use super::lines::OutputSettings;
use super::peer::{Outgoing, Peer};
use super::state::AgentState;

static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The master sent `shutdown`.
    Shutdown,
    /// A local stop (the fallback of SIGTERM/SIGINT) completed: no command runs any more.
    Stopped,
    /// A local abort (second SIGINT).
    Aborted,
    /// The connection closed or failed; reconnect.
    Lost(String),
    /// The master stopped answering pings; reconnect.
    Silent,
}

/// Connects and runs one session until it ends. `Err` means the connection could not be
/// established (refused, auth failure, bad handshake).
pub async fn run_session(
    cfg: &WorkerConfig,
    basedir: &Path,
    state: &Arc<AgentState>,
) -> anyhow::Result<SessionEnd> {
    let mut request = cfg
        .url()
        .into_client_request()
        .with_context(|| format!("bad master URL {}", cfg.url()))?;
    let creds =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", cfg.name, cfg.password));
    request.headers_mut().insert(
        "Authorization",
        format!("Basic {creds}")
            .parse()
            .context("credentials do not fit in an HTTP header")?,
    );
    let mut ws_cfg = WebSocketConfig::default();
    ws_cfg.max_message_size = Some(DEFAULT_MAX_FRAME);
    ws_cfg.max_frame_size = Some(DEFAULT_MAX_FRAME);
    let connector = match &cfg.tls {
        Some(tls) => Some(tokio_tungstenite::Connector::Rustls(
            super::tls::client_config(tls)?,
        )),
        None => None,
    };
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_cfg), true, connector);
    let (ws, _resp) = tokio::time::timeout(Duration::from_secs(20), connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {} timed out", cfg.url()))?
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => anyhow::anyhow!(
                "master {} refused the connection: HTTP {} (check name and password)",
                cfg.master,
                resp.status()
            ),
            other => anyhow::anyhow!("connecting to {}: {other}", cfg.url()),
        })?;
    tracing::info!(master = %cfg.master, worker = %cfg.name, "connected");

    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let msg = match out {
                Outgoing::Frame(b) => WsMessage::Binary(b.into()),
                Outgoing::Ping => WsMessage::Ping(Vec::new().into()),
                Outgoing::Close => break,
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let peer = Peer::new(tx);
    let seen = LastSeen::default();
    seen.touch();
    let heartbeat = watch_master(
        peer.clone(),
        seen.clone(),
        Duration::from_secs_f64(cfg.keepalive),
        Duration::from_secs_f64(cfg.ping_timeout),
    );
    tokio::pin!(heartbeat);
    let mut handler = Handler {
        cfg,
        basedir,
        state,
        peer: peer.clone(),
        session: NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        settings: OutputSettings::default(),
    };

    // The `graceful_shutdown` request of this session, sent once after SIGTERM.
    let mut graceful_ask = None;
    let end = loop {
        let changed = state.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if state.aborting() {
            break SessionEnd::Aborted;
        }
        if state.stopping() && state.running_count() == 0 {
            break SessionEnd::Stopped;
        }
        if state.graceful_requested() && !state.stopping() && graceful_ask.is_none() {
            graceful_ask = Some(tokio::spawn(super::graceful::ask_and_apply(
                peer.clone(),
                Arc::clone(state),
                Duration::from_secs_f64(cfg.graceful_timeout),
            )));
        }
        tokio::select! {
            frame = stream.next() => {
                let frame = match frame {
                    None => break SessionEnd::Lost("connection closed by the master".into()),
                    Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                    Some(Ok(f)) => f,
                };
                seen.touch();
                match frame {
                    WsMessage::Binary(data) => {
                        if let Some(v) = handle_frame(&mut handler, &data) {
                            break v;
                        }
                    }
                    WsMessage::Text(t) => {
                        tracing::warn!(len = t.len(), "text frame from the master ignored (only binary is used)");
                    }
                    WsMessage::Close(_) => break SessionEnd::Lost("master closed the connection".into()),
                    _ => {} // ping (answered by tungstenite), pong: sign of life only
                }
            }
            _ = &mut heartbeat => break SessionEnd::Silent,
            _ = &mut changed => {}
        }
    };
    if matches!(
        end,
        SessionEnd::Lost(_) | SessionEnd::Silent | SessionEnd::Aborted | SessionEnd::Shutdown
    ) {
        // Nobody will read these commands' results; stop them.
        state.interrupt_all("connection to the master ended");
    }
    peer.close();
    if let Some(ask) = graceful_ask {
        // Answered, or failed by `peer.close()` just now: it ends promptly.
        let _ = ask.await;
    }
    drop(handler);
    drop(peer);
    // Let the writer send what is queued (e.g. the reply to `shutdown`), briefly.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(end)
}

/// Decodes and dispatches one binary frame; Some(end) when the session must end.
fn handle_frame(handler: &mut Handler<'_>, data: &[u8]) -> Option<SessionEnd> {
    match decode_bounded(data, DEFAULT_MAX_FRAME) {
        Ok(Message::Response(r)) => {
            handler.peer.deliver(r);
            None
        }
        Ok(Message::Request(req)) => match handler.handle(req) {
            Verdict::Continue => None,
            Verdict::Shutdown => Some(SessionEnd::Shutdown),
            Verdict::Stopped => Some(SessionEnd::Stopped),
        },
        Err(e) => {
            match e.reply_to() {
                Some(seq) => handler.peer.reply(Response::exception(seq, e.to_string())),
                None => {
                    tracing::warn!(error = %e, len = data.len(), "malformed frame from the master dropped")
                }
            }
            None
        }
    }
}
