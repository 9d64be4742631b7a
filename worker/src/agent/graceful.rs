//! Worker-initiated graceful shutdown, a small Taskotron extension of `msgpack_experimental_v7`.
//!
//! Why: the msgpack protocol never tells a worker where a build ends (each step is just another
//! `start_command`), so a worker stopping on its own can only finish the running *command*; the
//! next step is refused and the build is retried elsewhere. Buildbot's `--allow-shutdown` asks
//! the master through PB's `perspective.shutdown`, which msgpack lacks. So on SIGTERM we send
//! `{"op": "graceful_shutdown", "seq_number": N}`:
//!
//! * taskotron-master answers success and drains us exactly like REST `stop`: no new builds,
//!   the running ones finish, then it sends `shutdown`; we keep accepting commands meanwhile;
//! * a stock Buildbot master answers `"Command graceful_shutdown does not exist."` (an
//!   exception), and a master that does not answer within `graceful_timeout` seconds is treated
//!   the same: we fall back to finishing the running commands, refusing new ones, and exiting.

use std::sync::Arc;
use std::time::Duration;

use taskotron_common::protocol::Op;

use super::peer::{Peer, PeerError};
use super::state::AgentState;

/// What the master said to `graceful_shutdown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It will drain us and send `shutdown`.
    Accepted,
    /// Exception reply (a stock Buildbot master: the op does not exist).
    Refused(String),
    /// No answer in time.
    Timeout,
    /// The connection ended first.
    Lost,
}

/// Sends `graceful_shutdown` and waits up to `timeout` for the answer.
pub async fn ask(peer: &Peer, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, peer.request(Op::GracefulShutdown)).await {
        Ok(Ok(_)) => Answer::Accepted,
        Ok(Err(PeerError::Remote(e))) => Answer::Refused(e),
        Ok(Err(PeerError::ConnectionLost)) => Answer::Lost,
        Err(_) => Answer::Timeout,
    }
}

/// Asks the master and switches the agent to draining (accepted) or to the fallback stop.
pub async fn ask_and_apply(peer: Peer, state: Arc<AgentState>, timeout: Duration) {
    tracing::info!("asking the master for a graceful shutdown (graceful_shutdown)");
    let answer = ask(&peer, timeout).await;
    if state.stopping() {
        return; // a second SIGTERM or an abort decided already
    }
    match answer {
        Answer::Accepted => {
            state.set_draining();
            tracing::info!(
                running = state.running_count(),
                "draining: the master gives us no new builds and sends shutdown once our builds finish"
            );
        }
        Answer::Refused(why) => {
            state.request_stop();
            tracing::info!(
                running = state.running_count(),
                master_said = %why,
                "the master cannot drain us: finishing running commands, then exiting"
            );
        }
        Answer::Timeout => {
            state.request_stop();
            tracing::warn!(
                running = state.running_count(),
                timeout_s = timeout.as_secs_f64(),
                "no answer to graceful_shutdown: finishing running commands, then exiting"
            );
        }
        Answer::Lost => {
            // The session ends; the lifecycle loop exits instead of reconnecting.
            state.request_stop();
            tracing::info!("connection lost before the master answered graceful_shutdown; exiting");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::peer::Outgoing;
    use taskotron_common::protocol::{decode, Message, Response};

    /// Reads the one request the peer sent and returns its seq_number.
    async fn sent_seq(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Outgoing>) -> u64 {
        match rx.recv().await {
            Some(Outgoing::Frame(b)) => match decode(&b).unwrap() {
                Message::Request(r) => {
                    assert_eq!(r.op, Op::GracefulShutdown);
                    r.seq_number
                }
                other => panic!("request expected, got {other:?}"),
            },
            other => panic!("frame expected, got {other:?}"),
        }
    }

    async fn run(reply: Option<Response>) -> Arc<AgentState> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let peer = Peer::new(tx);
        let state = Arc::new(AgentState::default());
        state.request_graceful();
        let task = tokio::spawn(ask_and_apply(
            peer.clone(),
            state.clone(),
            Duration::from_millis(200),
        ));
        let seq = sent_seq(&mut rx).await;
        if let Some(mut r) = reply {
            r.seq_number = seq;
            peer.deliver(r);
        }
        task.await.unwrap();
        state
    }

    #[tokio::test]
    async fn accepted_means_draining_and_commands_still_welcome() {
        let s = run(Some(Response::ok(
            0,
            taskotron_common::protocol::Value::Nil,
        )))
        .await;
        assert!(s.draining());
        assert!(!s.stopping(), "commands are still accepted while draining");
    }

    #[tokio::test]
    async fn stock_buildbot_answer_falls_back_to_stop() {
        let s = run(Some(Response::unknown_op(0, "graceful_shutdown"))).await;
        assert!(!s.draining());
        assert!(s.stopping());
    }

    #[tokio::test]
    async fn no_answer_falls_back_to_stop() {
        let s = run(None).await;
        assert!(!s.draining());
        assert!(s.stopping());
    }
}
