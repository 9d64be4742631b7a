//! The fedmsg bus: ZeroMQ SUB sockets (pure-Rust `zeromq`) that connect to publishers or bind
//! for active publishers, subscribe by topic prefix, and forward two-frame messages.
//!
//! Each connected endpoint has its own socket and task. The socket reconnects by itself when a
//! publisher goes away and comes back (and re-sends the subscriptions); if the first connection
//! cannot be made the task keeps trying with backoff, so the trigger can start before the bus.

use std::time::Duration;

use tokio::sync::mpsc;
use zeromq::prelude::*;
use zeromq::{PubSocket, SocketEvent, SocketOptions, SubSocket, ZmqMessage};

/// One message from a bus: the topic and the fedmsg envelope (JSON), and where it came from.
#[derive(Debug)]
pub struct BusMessage {
    pub topic: Vec<u8>,
    pub body: Vec<u8>,
    pub origin: Origin,
}

/// Which input a message came through.
#[derive(Debug)]
pub enum Origin {
    /// ZeroMQ frames 1 and 2, as received (size unchecked, signature checked when configured).
    Zmq,
    /// An AMQP delivery already converted ([`crate::amqp`]): its size was checked and it is
    /// acked once the intake answers on this channel.
    Amqp(tokio::sync::oneshot::Sender<Stored>),
}

/// What the intake did with a message, for inputs that acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// In the inbox now, or already handled, or unusable: never send it again.
    Done,
    /// Not stored (inbox full, database error): the broker should deliver it again later.
    Retry,
}

/// Starts one SUB socket per connect endpoint and one per bind endpoint; messages go to `tx`.
/// Returns once every bind endpoint listens (so callers may advertise them).
pub async fn start(
    connect: &[String],
    bind: &[String],
    prefixes: &[String],
    tx: mpsc::Sender<BusMessage>,
) -> anyhow::Result<()> {
    for ep in bind {
        let mut sock = new_socket(prefixes).await?;
        let events = sock.monitor();
        let bound = sock
            .bind(ep)
            .await
            .map_err(|e| anyhow::anyhow!("bind {ep}: {e}"))?;
        tracing::info!(endpoint = %bound, "bus: SUB bound; waiting for publishers");
        tokio::spawn(log_events(events, ep.clone()));
        tokio::spawn(receive(sock, ep.clone(), tx.clone()));
    }
    for ep in connect {
        let (ep, prefixes, tx) = (ep.clone(), prefixes.to_vec(), tx.clone());
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match new_socket(&prefixes).await {
                    Ok(mut sock) => {
                        let events = sock.monitor();
                        match sock.connect(&ep).await {
                            Ok(()) => {
                                tracing::info!(endpoint = %ep, "bus: connected");
                                tokio::spawn(log_events(events, ep.clone()));
                                receive(sock, ep.clone(), tx.clone()).await;
                                delay = Duration::from_millis(200);
                            }
                            Err(e) => {
                                tracing::warn!(endpoint = %ep, error = %e, "bus: connect failed; retrying")
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(endpoint = %ep, error = %e, "bus: socket setup failed")
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
    }
    Ok(())
}

async fn new_socket(prefixes: &[String]) -> anyhow::Result<SubSocket> {
    let mut opts = SocketOptions::default();
    // Keep trying the first connection instead of failing after 30 s.
    opts.no_connect_timeout();
    let mut sock = SubSocket::with_options(opts);
    for p in prefixes {
        sock.subscribe(p).await?;
    }
    Ok(sock)
}

async fn log_events(mut events: futures::channel::mpsc::Receiver<SocketEvent>, ep: String) {
    use futures::StreamExt;
    while let Some(ev) = events.next().await {
        match ev {
            SocketEvent::Accepted(from, _) => {
                tracing::info!(endpoint = %ep, peer = %from, "bus: publisher connected")
            }
            SocketEvent::Connected(..) => {
                tracing::info!(endpoint = %ep, "bus: publisher connected")
            }
            SocketEvent::Disconnected(_) => {
                tracing::warn!(endpoint = %ep, "bus: publisher went away")
            }
            other => tracing::debug!(endpoint = %ep, event = ?other, "bus: socket event"),
        }
    }
}

async fn receive(mut sock: SubSocket, ep: String, tx: mpsc::Sender<BusMessage>) {
    loop {
        match sock.recv().await {
            Ok(msg) => {
                if msg.len() != 2 {
                    tracing::warn!(endpoint = %ep, frames = msg.len(), "bus: dropping message that is not [topic, body]");
                    continue;
                }
                let mut frames = msg.into_vec().into_iter();
                let (Some(topic), Some(body)) = (frames.next(), frames.next()) else {
                    continue;
                };
                let m = BusMessage {
                    topic: topic.to_vec(),
                    body: body.to_vec(),
                    origin: Origin::Zmq,
                };
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep, error = %e, "bus: receive failed; reopening socket");
                return;
            }
        }
    }
}

/// Publishes messages on a PUB socket that binds or connects `endpoint` (for `publish` and
/// local testing). Waits `settle` after setting up so subscribers can join (ZeroMQ drops
/// messages published before a subscription arrives).
pub async fn publish(
    endpoint: &str,
    bind: bool,
    settle: Duration,
    messages: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut sock = PubSocket::new();
    if bind {
        sock.bind(endpoint)
            .await
            .map_err(|e| anyhow::anyhow!("bind {endpoint}: {e}"))?;
    } else {
        sock.connect(endpoint)
            .await
            .map_err(|e| anyhow::anyhow!("connect {endpoint}: {e}"))?;
    }
    tokio::time::sleep(settle).await;
    for (topic, body) in messages {
        let mut m = ZmqMessage::from(topic.clone());
        m.push_back(body.clone().into());
        sock.send(m).await?;
    }
    // Give the writer a moment to flush before the socket is dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}
