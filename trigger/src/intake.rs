//! The intake: reads what the bus sockets received, checks it, and stores it in the inbox
//! before anything slow happens. It runs on its own thread and never waits for rules, git or
//! the master, so the ZeroMQ sockets are read as fast as SQLite can append (messages that
//! arrive together are stored in one transaction). Inputs that acknowledge (AMQP) are told
//! what became of each message only after the transaction committed, so a message is acked
//! only once it is safely on disk.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bus::{BusMessage, Origin, Stored};
use crate::cli::State;
use crate::fedmsg::Envelope;
use crate::inbox::{Incoming, Put};

/// Messages stored per transaction at most.
const MAX_BATCH: usize = 512;

/// Starts the intake thread; it ends when every bus task has dropped its sender.
pub fn spawn(state: Arc<State>, rx: mpsc::Receiver<BusMessage>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("intake".into())
        .spawn(move || run(&state, rx))
        .map(|_| ())
}

fn run(state: &State, mut rx: mpsc::Receiver<BusMessage>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut incoming = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for m in batch {
            let BusMessage {
                topic,
                body,
                origin,
            } = m;
            let ack = match origin {
                Origin::Zmq => None,
                Origin::Amqp(ack) => Some(ack),
            };
            match accept(state, topic, body, ack.is_none()) {
                Some(i) => {
                    incoming.push(i);
                    acks.push(ack);
                }
                // Unusable: redelivering it would not make it usable.
                None => answer(ack, Stored::Done),
            }
        }
        if !incoming.is_empty() {
            let requeueable: Vec<bool> = acks.iter().map(Option::is_some).collect();
            let verdicts = store(state, &incoming, &requeueable);
            for (ack, v) in acks.into_iter().zip(verdicts) {
                answer(ack, v);
            }
        }
    }
}

fn answer(ack: Option<tokio::sync::oneshot::Sender<Stored>>, verdict: Stored) {
    if let Some(ack) = ack {
        // The input may have lost its connection meanwhile; the broker redelivers then.
        let _ = ack.send(verdict);
    }
}

/// Parses and (for ZeroMQ input, when configured) verifies one message; None: dropped
/// (logged and counted). AMQP deliveries were size-checked on conversion, and their
/// authenticity is the broker's (TLS and its permissions), not a fedmsg signature.
fn accept(state: &State, topic: Vec<u8>, body: Vec<u8>, from_zmq: bool) -> Option<Incoming> {
    let limit = if from_zmq {
        state.cfg.max_message_bytes
    } else {
        usize::MAX
    };
    let env = match Envelope::from_frames(&topic, &body, limit) {
        Ok(e) => e,
        Err(e) => {
            crate::metrics::global().malformed();
            tracing::warn!(topic = %String::from_utf8_lossy(&topic), error = %e, "dropping malformed message");
            return None;
        }
    };
    crate::metrics::global().message(&env.topic);
    if from_zmq && !state.signature_ok(&env, &body) {
        return None;
    }
    Some(Incoming {
        msg_id: env.msg_id,
        topic,
        body,
    })
}

/// Stores a batch; one verdict per message. `requeueable[i]`: the input hands the message
/// back to its broker when it cannot be stored (AMQP), so it is not lost.
fn store(state: &State, incoming: &[Incoming], requeueable: &[bool]) -> Vec<Stored> {
    let metrics = crate::metrics::global();
    let results = match state.inbox.put(incoming) {
        Ok(r) => r,
        Err(e) => {
            for (m, back) in incoming.iter().zip(requeueable) {
                let topic = String::from_utf8_lossy(&m.topic);
                if *back {
                    tracing::error!(msg_id = %m.msg_id, %topic, error = %e,
                        "inbox: cannot store message; handed back to the broker");
                } else {
                    metrics.inbox_dropped();
                    tracing::error!(msg_id = %m.msg_id, %topic, error = %e,
                        "inbox: cannot store message; dropped");
                }
            }
            return vec![Stored::Retry; incoming.len()];
        }
    };
    let mut added = 0;
    let mut verdicts = Vec::with_capacity(incoming.len());
    for ((m, put), back) in incoming.iter().zip(results).zip(requeueable) {
        verdicts.push(if put == Put::Full {
            Stored::Retry
        } else {
            Stored::Done
        });
        match put {
            Put::Added => {
                added += 1;
                tracing::debug!(msg_id = %m.msg_id, "message stored in the inbox");
            }
            Put::Duplicate => {
                metrics.duplicate();
                tracing::debug!(msg_id = %m.msg_id, "duplicate message ignored");
            }
            Put::Full if *back => {
                tracing::warn!(msg_id = %m.msg_id, topic = %String::from_utf8_lossy(&m.topic),
                    capacity = state.cfg.inbox_capacity,
                    "inbox full (inbox_capacity): handed back to the broker; processing is not keeping up");
            }
            Put::Full => {
                metrics.inbox_dropped();
                tracing::error!(msg_id = %m.msg_id, topic = %String::from_utf8_lossy(&m.topic),
                    capacity = state.cfg.inbox_capacity,
                    "inbox full (inbox_capacity): message dropped; processing is not keeping up");
            }
        }
    }
    if added > 0 {
        metrics.inbox_received(added);
        state.wake_processor.notify_one();
    }
    verdicts
}
