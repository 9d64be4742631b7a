//! State that outlives one connection: running commands (so `interrupt_command` and shutdown
//! can reach them) and the shutdown requests from signals.
//!
//! Shutdown modes, mildest first (docs/worker.md, "Signals"):
//! * graceful (first SIGTERM/SIGINT): ask the master with `graceful_shutdown` to drain us;
//!   commands are still accepted while the answer is pending and, once the master agreed
//!   (`draining`), until it sends `shutdown`;
//! * stop (fallback, or a second SIGTERM): finish running commands, accept no new ones, exit;
//! * abort (second SIGINT): kill running commands and exit now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::{watch, Notify};

#[derive(Debug, Default)]
pub struct AgentState {
    running: Mutex<HashMap<String, watch::Sender<Option<String>>>>,
    graceful: AtomicBool,
    draining: AtomicBool,
    stopping: AtomicBool,
    aborting: AtomicBool,
    /// Woken whenever a command ends or a stop/abort is requested.
    pub changed: Notify,
}

impl AgentState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<String>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a command; returns its interrupt receiver, or None if the id is already running.
    pub fn register(&self, command_id: &str) -> Option<watch::Receiver<Option<String>>> {
        let mut map = self.lock();
        if map.contains_key(command_id) {
            return None;
        }
        let (tx, rx) = watch::channel(None);
        map.insert(command_id.to_string(), tx);
        Some(rx)
    }

    pub fn finished(&self, command_id: &str) {
        self.lock().remove(command_id);
        self.changed.notify_waiters();
    }

    /// Interrupts one command; false if it is not running.
    pub fn interrupt(&self, command_id: &str, why: &str) -> bool {
        match self.lock().get(command_id) {
            Some(tx) => {
                let _ = tx.send(Some(why.to_string()));
                true
            }
            None => false,
        }
    }

    pub fn interrupt_all(&self, why: &str) {
        for tx in self.lock().values() {
            let _ = tx.send(Some(why.to_string()));
        }
    }

    pub fn running_count(&self) -> usize {
        self.lock().len()
    }

    /// Graceful shutdown: ask the master to drain us (see [`super::graceful`]).
    pub fn request_graceful(&self) {
        self.graceful.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// A graceful shutdown was requested (the master may not have answered yet).
    pub fn graceful_requested(&self) -> bool {
        self.graceful.load(Ordering::SeqCst)
    }

    /// The master agreed to drain us: keep running its commands until it sends `shutdown`.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Any shutdown was requested: a lost connection is not re-established.
    pub fn winding_down(&self) -> bool {
        self.graceful_requested() || self.stopping()
    }

    /// Stop (the fallback): finish running commands, accept no new ones, then exit.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Abort: kill running commands and exit now.
    pub fn request_abort(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.aborting.store(true, Ordering::SeqCst);
        self.interrupt_all("worker aborted");
        self.changed.notify_waiters();
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn aborting(&self) -> bool {
        self.aborting.load(Ordering::SeqCst)
    }
}
