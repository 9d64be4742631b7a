//! The fedora-messaging input: an AMQP 0-9-1 consumer (lapin) on RabbitMQ, beside the fedmsg
//! ZeroMQ input ([`crate::bus`]).
//!
//! The trigger declares its queue (durable when named), binds it to the exchange with the
//! configured or derived routing keys, and consumes with `prefetch` unacknowledged deliveries
//! at most. Each delivery is converted ([`delivery`]) and handed to the intake with a one-shot
//! answer channel; it is acked only after the intake's inbox transaction committed (or found
//! it a duplicate), so a trigger killed before that gets the message again from the broker.
//! Unusable deliveries (not JSON, too large, wrong content type) are acked at once, logged
//! with the reason and counted: redelivering them would never make them usable. When the
//! inbox is full the delivery is requeued after a pause and stays the broker's.
//!
//! A broker restart or a dropped connection ends the session; the input reconnects with
//! backoff, declares and binds again and resumes the (durable) queue. Deliveries that were
//! not acked when the connection went are redelivered by the broker; the inbox's msg_id
//! de-duplication turns those into duplicates, not second jobs.

pub mod config;
pub mod delivery;
pub mod publish;

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{Acker, Connection, ConnectionProperties};
use tokio::sync::{mpsc, oneshot};

pub use config::AmqpConfig;
use config::{redact, TlsConfig};

use crate::bus::{BusMessage, Origin, Stored};

/// How long a delivery the inbox had no room for waits before it goes back to the broker.
const FULL_INBOX_PAUSE: Duration = Duration::from_secs(1);

/// Opens a connection, with the TLS settings for `amqps://`.
pub async fn connect(url: &str, tls: Option<&TlsConfig>) -> anyhow::Result<Connection> {
    let tls_config = tls_config(tls)?;
    let runtime = lapin::runtime::default_runtime()?;
    let props = ConnectionProperties::default().with_connection_name("taskotron-trigger".into());
    Connection::connect_with_config(url, props, tls_config, runtime)
        .await
        .map_err(|e| anyhow::anyhow!("amqp: connect to {}: {e}", redact(url)))
}

fn tls_config(tls: Option<&TlsConfig>) -> anyhow::Result<OwnedTLSConfig> {
    let Some(tls) = tls else {
        return Ok(OwnedTLSConfig::default());
    };
    let read = |field: &str, p: &std::path::Path| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("amqp.tls.{field}: {}: {e}", p.display()))
    };
    let cert_chain = match &tls.ca {
        Some(p) => Some(
            String::from_utf8(read("ca", p)?)
                .map_err(|_| anyhow::anyhow!("amqp.tls.ca: {}: not PEM text", p.display()))?,
        ),
        None => None,
    };
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read("cert", cert)?,
            key: read("key", key)?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

/// Starts the input in the background; it runs until the intake goes away.
pub fn spawn(
    cfg: AmqpConfig,
    prefixes: Vec<String>,
    max_message_bytes: usize,
    tx: mpsc::Sender<BusMessage>,
) {
    let metrics = crate::metrics::global();
    metrics.amqp_set_connected(false);
    tokio::spawn(async move {
        let initial = Duration::from_millis(cfg.reconnect_initial_ms);
        let max = Duration::from_millis(cfg.reconnect_max_ms);
        let mut delay = initial;
        loop {
            let mut session = Session {
                cfg: &cfg,
                prefixes: &prefixes,
                max_message_bytes,
                tx: &tx,
                connected: false,
            };
            let result = session.run().await;
            metrics.amqp_set_connected(false);
            if session.connected {
                delay = initial;
            }
            match result {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(url = %redact(&cfg.url), error = %format!("{e:#}"),
                        retry_in_ms = delay.as_millis() as u64, "amqp: connection lost; reconnecting")
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max);
        }
    });
}

/// One connection to the broker, from connect to the first error.
struct Session<'a> {
    cfg: &'a AmqpConfig,
    prefixes: &'a [String],
    max_message_bytes: usize,
    tx: &'a mpsc::Sender<BusMessage>,
    /// Got as far as consuming (resets the backoff).
    connected: bool,
}

impl Session<'_> {
    /// Ok: the intake is gone (shutdown). Err: the connection or channel failed.
    async fn run(&mut self) -> anyhow::Result<()> {
        let cfg = self.cfg;
        let conn = connect(&cfg.url, cfg.tls.as_ref()).await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(cfg.prefetch, BasicQosOptions::default())
            .await?;
        let queue = match &cfg.queue {
            Some(name) => {
                let opts = QueueDeclareOptions::durable();
                channel
                    .queue_declare(name.as_str().into(), opts, FieldTable::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("amqp.queue {name:?}: declare: {e}"))?;
                name.clone()
            }
            None => {
                let opts = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                };
                let q = channel
                    .queue_declare("".into(), opts, FieldTable::default())
                    .await?;
                q.name().as_str().to_string()
            }
        };
        for key in cfg.bindings_for(self.prefixes) {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    cfg.exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "amqp: bind {queue:?} to exchange {:?} with {key:?}: {e}",
                        cfg.exchange
                    )
                })?;
        }
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "taskotron-trigger".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.connected = true;
        crate::metrics::global().amqp_set_connected(true);
        tracing::info!(url = %redact(&cfg.url), queue = %queue, exchange = %cfg.exchange,
            bindings = ?cfg.bindings_for(self.prefixes), prefetch = cfg.prefetch, "amqp: consuming");

        // Acks go out in delivery order from one task, each after the intake's answer.
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(ack_rx));
        let result = loop {
            let Some(next) = consumer.next().await else {
                break Err(anyhow::anyhow!("the broker ended the consumer"));
            };
            let d = next?;
            let metrics = crate::metrics::global();
            metrics.amqp_delivery(d.redelivered);
            let topic = d.routing_key.as_str();
            if !self.prefixes.iter().any(|p| topic.starts_with(p.as_str())) {
                // Bound by a broader configured binding; nothing here consumes it.
                metrics.amqp_ignored();
                tracing::debug!(topic, "amqp: no consumer for this topic; acked");
                let _ = ack_tx.send((d.acker, Answer::Now(Stored::Done)));
                continue;
            }
            match delivery::convert(topic, &d.properties, &d.data, self.max_message_bytes) {
                Ok(c) => {
                    let (answer_tx, answer_rx) = oneshot::channel();
                    let m = BusMessage {
                        topic: topic.as_bytes().to_vec(),
                        body: c.envelope,
                        origin: Origin::Amqp(answer_tx),
                    };
                    if self.tx.send(m).await.is_err() {
                        break Ok(());
                    }
                    let _ = ack_tx.send((d.acker, Answer::Later(answer_rx)));
                }
                Err(poison) => {
                    metrics.amqp_poison(poison.reason());
                    tracing::warn!(topic, message_id = ?d.properties.message_id().as_ref().map(|i| i.as_str()),
                        reason = %poison, "amqp: unusable message acked and dropped");
                    let _ = ack_tx.send((d.acker, Answer::Now(Stored::Done)));
                }
            }
        };
        drop(ack_tx);
        // Send what can still be acked; on a dead connection this fails fast.
        let _ = acker.await;
        let _ = conn.close(200, "bye".into()).await;
        result
    }
}

/// The intake's answer for one delivery, or one known at once.
enum Answer {
    Now(Stored),
    Later(oneshot::Receiver<Stored>),
}

/// Acks in delivery order. Consecutive stored deliveries are acked together (one `basic.ack`
/// with `multiple`, which covers every earlier delivery on the channel: all of them are decided
/// by then, since answers are awaited in order).
async fn acknowledge(mut rx: mpsc::UnboundedReceiver<(Acker, Answer)>) {
    let metrics = crate::metrics::global();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // The newest stored delivery not acked yet, and how many it stands for.
        let mut to_ack: Option<(Acker, u64)> = None;
        for (acker, answer) in batch {
            let stored = match answer {
                Answer::Now(s) => s,
                // No answer (the intake stopped): the broker keeps it.
                Answer::Later(rx) => rx.await.unwrap_or(Stored::Retry),
            };
            match stored {
                Stored::Done => {
                    let n = to_ack.take().map_or(0, |(_, n)| n);
                    to_ack = Some((acker, n + 1));
                }
                Stored::Retry => {
                    ack_up_to(to_ack.take()).await;
                    tokio::time::sleep(FULL_INBOX_PAUSE).await;
                    let nack = BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    };
                    match acker.nack(nack).await {
                        Ok(_) => metrics.amqp_requeue(),
                        Err(e) => {
                            tracing::debug!(error = %e, "amqp: cannot requeue; the broker will redeliver")
                        }
                    }
                }
            }
        }
        ack_up_to(to_ack).await;
    }
}

async fn ack_up_to(last: Option<(Acker, u64)>) {
    let Some((acker, n)) = last else { return };
    let opts = BasicAckOptions { multiple: true };
    match acker.ack(opts).await {
        Ok(_) => crate::metrics::global().amqp_acks(n),
        // The connection went: the broker redelivers everything not acked.
        Err(e) => {
            tracing::debug!(error = %e, "amqp: cannot acknowledge; the broker will redeliver")
        }
    }
}
