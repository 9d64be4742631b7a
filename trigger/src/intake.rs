//! The intake: reads what the bus sockets received, checks it, and stores it in the inbox
//! before anything slow happens. It runs on its own thread and never waits for rules, git or
//! the master, so the ZeroMQ sockets are read as fast as SQLite can append (messages that
//! arrive together are stored in one transaction).

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bus::BusMessage;
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
        let incoming: Vec<Incoming> = batch.into_iter().filter_map(|m| accept(state, m)).collect();
        if !incoming.is_empty() {
            store(state, &incoming);
        }
    }
}

/// Parses and (optionally) verifies one message; None: dropped (logged and counted).
fn accept(state: &State, m: BusMessage) -> Option<Incoming> {
    let env = match Envelope::from_frames(&m.topic, &m.body, state.cfg.max_message_bytes) {
        Ok(e) => e,
        Err(e) => {
            crate::metrics::global().malformed();
            tracing::warn!(topic = %String::from_utf8_lossy(&m.topic), error = %e, "dropping malformed message");
            return None;
        }
    };
    crate::metrics::global().message(&env.topic);
    if !state.signature_ok(&env, &m.body) {
        return None;
    }
    Some(Incoming {
        msg_id: env.msg_id,
        topic: m.topic,
        body: m.body,
    })
}

fn store(state: &State, incoming: &[Incoming]) {
    let metrics = crate::metrics::global();
    let results = match state.inbox.put(incoming) {
        Ok(r) => r,
        Err(e) => {
            for m in incoming {
                metrics.inbox_dropped();
                tracing::error!(msg_id = %m.msg_id, topic = %String::from_utf8_lossy(&m.topic), error = %e,
                    "inbox: cannot store message; dropped");
            }
            return;
        }
    };
    let mut added = 0;
    for (m, put) in incoming.iter().zip(results) {
        match put {
            Put::Added => {
                added += 1;
                tracing::debug!(msg_id = %m.msg_id, "message stored in the inbox");
            }
            Put::Duplicate => {
                metrics.duplicate();
                tracing::debug!(msg_id = %m.msg_id, "duplicate message ignored");
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
}
