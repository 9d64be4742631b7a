//! The worker's handle on one connection to the master: sends requests (with this side's own
//! `seq_number` counter) and replies, and matches the master's responses to our requests.
//!
//! Frames go through one ordered channel to the writer task, so `update`s leave in the order
//! they were produced. Buildbot does not wait for `update` acks; transfers do wait for each
//! block's response (flow control), which is what [`Peer::request`] is for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use taskotron_common::protocol::{encode, Message, Op, Response, Value};
use tokio::sync::{mpsc, oneshot};

/// What the writer task sends: a protocol frame or a WebSocket ping.
#[derive(Debug)]
pub enum Outgoing {
    Frame(Vec<u8>),
    Ping,
    /// Send what is queued before this, then close the WebSocket.
    Close,
}

/// Why a request got no useful answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    #[error("connection to the master lost")]
    ConnectionLost,
    #[error("master answered with an exception: {0}")]
    Remote(String),
}

type Waiter = Option<oneshot::Sender<Result<Value, PeerError>>>;

#[derive(Debug, Default)]
struct Pending {
    next_seq: u64,
    waiters: HashMap<u64, Waiter>,
    closed: bool,
}

#[derive(Clone, Debug)]
pub struct Peer {
    tx: mpsc::UnboundedSender<Outgoing>,
    pending: Arc<Mutex<Pending>>,
}

impl Peer {
    pub fn new(tx: mpsc::UnboundedSender<Outgoing>) -> Peer {
        Peer {
            tx,
            pending: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, op: Op, waiter: Waiter) -> Result<(), PeerError> {
        let mut p = self.lock();
        if p.closed {
            return Err(PeerError::ConnectionLost);
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        p.waiters.insert(seq, waiter);
        // Sent under the lock so seq numbers leave in order.
        self.tx
            .send(Outgoing::Frame(encode(&Message::request(seq, op))))
            .map_err(|_| PeerError::ConnectionLost)
    }

    /// Sends a request and waits for the master's response.
    pub async fn request(&self, op: Op) -> Result<Value, PeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(op, Some(tx))?;
        rx.await.unwrap_or(Err(PeerError::ConnectionLost))
    }

    /// Sends a request without waiting; an exception reply is only logged.
    pub fn notify(&self, op: Op) -> Result<(), PeerError> {
        self.send(op, None)
    }

    /// Answers one of the master's requests.
    pub fn reply(&self, resp: Response) {
        let _ = self
            .tx
            .send(Outgoing::Frame(encode(&Message::Response(resp))));
    }

    pub fn ping(&self) {
        let _ = self.tx.send(Outgoing::Ping);
    }

    /// Routes a response from the master to whoever waits for it.
    pub fn deliver(&self, resp: Response) {
        let waiter = self.lock().waiters.remove(&resp.seq_number);
        let result = match resp.error_text() {
            Some(e) => Err(PeerError::Remote(e)),
            None => Ok(resp.result),
        };
        match waiter {
            Some(Some(tx)) => {
                let _ = tx.send(result);
            }
            Some(None) => {
                if let Err(e) = result {
                    tracing::warn!(seq = resp.seq_number, error = %e, "master refused a message");
                }
            }
            None => tracing::warn!(
                seq = resp.seq_number,
                "response to a request we never sent; ignored"
            ),
        }
    }

    /// Fails every waiting request, refuses new ones, and tells the writer to close the
    /// socket after what is already queued.
    pub fn close(&self) {
        let mut p = self.lock();
        p.closed = true;
        let _ = self.tx.send(Outgoing::Close);
        for (_, w) in p.waiters.drain() {
            if let Some(tx) = w {
                let _ = tx.send(Err(PeerError::ConnectionLost));
            }
        }
    }
}
