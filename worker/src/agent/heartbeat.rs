//! Detects a silent master. Buildbot's own keepalive is master-initiated (every 3600 s) with
//! no timeout, so a worker behind a dead NAT or a stopped master would wait forever. We send a
//! WebSocket ping every `keepalive` seconds; every frame from the master (pong, request, or
//! response) counts as a sign of life. When nothing arrives for `keepalive + ping_timeout`,
//! [`watch_master`] returns and the connection is dropped and re-established.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::peer::Peer;

/// The last time a frame arrived, shared between the reader (writes) and the heartbeat (reads).
#[derive(Debug, Clone)]
pub struct LastSeen {
    origin: Instant,
    millis: Arc<AtomicU64>,
}

impl Default for LastSeen {
    fn default() -> Self {
        LastSeen {
            origin: Instant::now(),
            millis: Arc::default(),
        }
    }
}

impl LastSeen {
    pub fn touch(&self) {
        self.millis
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn elapsed(&self) -> Duration {
        let at = Duration::from_millis(self.millis.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(at)
    }
}

/// Pings every `interval`; returns once nothing was heard for `interval + timeout`.
pub async fn watch_master(peer: Peer, seen: LastSeen, interval: Duration, timeout: Duration) {
    let limit = interval + timeout;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let silent = seen.elapsed();
        if silent >= limit {
            tracing::warn!(
                silent_s = silent.as_secs_f64(),
                "master silent; dropping the connection"
            );
            return;
        }
        tokio::select! {
            _ = tick.tick() => peer.ping(),
            _ = tokio::time::sleep(limit - silent) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::peer::Outgoing;

    #[tokio::test]
    async fn pings_then_gives_up_on_silence() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let seen = LastSeen::default();
        seen.touch();
        watch_master(
            Peer::new(tx),
            seen.clone(),
            Duration::from_millis(100),
            Duration::from_millis(150),
        )
        .await;
        assert!(seen.elapsed() >= Duration::from_millis(250));
        let mut pings = 0;
        while let Ok(m) = rx.try_recv() {
            assert!(matches!(m, Outgoing::Ping));
            pings += 1;
        }
        assert!(pings >= 2, "{pings} pings");
    }
}
