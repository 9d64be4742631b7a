//! The worker side of the master: the msgpack WebSocket listener (`server.rs`), one session per
//! connected worker (`session.rs`: setup sequence, heartbeats, loss), the connection object
//! build steps talk to (`conn.rs`), graceful stop of one worker (`drain.rs`: REST `stop`, the
//! UI's Drain button, and the worker's own `graceful_shutdown`), and the registry of who is
//! connected and how busy.

pub mod conn;
pub mod drain;
pub mod server;
mod session;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use conn::{CmdEvent, Conn, ConnError};

/// A connected, set-up worker.
pub struct Slot {
    pub conn: Arc<Conn>,
    pub arch: String,
    pub max_builds: u32,
    pub running: u32,
    /// Which build slots (0..max_builds) are in use; a slot picks the build directory.
    pub busy: Vec<bool>,
    pub paused: bool,
    /// Graceful stop requested: no new builds; `shutdown` once idle.
    pub stopping: bool,
}

/// Who is connected; the scheduler picks from here.
#[derive(Default)]
pub struct Registry {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Builder names a worker of `arch` serves: `all` (noarch jobs) and its own arch.
pub fn builders_for_arch(arch: &str) -> Vec<String> {
    let mut v = vec!["all".to_string()];
    if arch != "all" && arch != "noarch" {
        v.push(arch.to_string());
    }
    v
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_conn(&self, name: &str) -> Option<Arc<Conn>> {
        self.lock().get(name).map(|s| s.conn.clone())
    }

    pub fn insert(&self, slot: Slot) {
        self.lock().insert(slot.conn.name.clone(), slot);
    }

    /// Removes the slot if it still belongs to `conn` (a newer login may have replaced it).
    pub fn remove_if(&self, conn: &Arc<Conn>) {
        let mut g = self.lock();
        if g.get(&conn.name)
            .is_some_and(|s| Arc::ptr_eq(&s.conn, conn))
        {
            g.remove(&conn.name);
        }
    }

    /// Names and archs of connected workers.
    pub fn archs(&self) -> HashMap<String, String> {
        self.lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.arch.clone()))
            .collect()
    }

    pub fn connected_count(&self) -> usize {
        self.lock().len()
    }

    /// Picks the least busy worker that can take a build for `builder` and reserves a slot on
    /// it; returns the connection and the slot index.
    pub fn reserve(&self, builder: &str) -> Option<(Arc<Conn>, usize)> {
        let mut g = self.lock();
        let best = g
            .values_mut()
            .filter(|s| !s.paused && !s.stopping && !s.conn.is_closed() && s.running < s.max_builds)
            .filter(|s| builder == "all" || s.arch == builder)
            .min_by_key(|s| (s.running, s.conn.name.clone()))?;
        best.running += 1;
        if best.busy.len() < best.max_builds as usize {
            best.busy.resize(best.max_builds as usize, false);
        }
        let slot = best.busy.iter().position(|b| !b).unwrap_or(0);
        best.busy[slot] = true;
        Some((best.conn.clone(), slot))
    }

    /// Free build slots over all connected, unpaused workers.
    pub fn free_slots(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| !s.paused && !s.stopping && !s.conn.is_closed())
            .map(|s| s.max_builds.saturating_sub(s.running) as usize)
            .sum()
    }

    /// True if some connected, unpaused worker has a free build slot.
    pub fn has_capacity(&self) -> bool {
        self.lock()
            .values()
            .any(|s| !s.paused && !s.stopping && !s.conn.is_closed() && s.running < s.max_builds)
    }

    pub fn release(&self, conn: &Arc<Conn>, slot: usize) {
        if let Some(s) = self.lock().get_mut(&conn.name) {
            if Arc::ptr_eq(&s.conn, conn) {
                s.running = s.running.saturating_sub(1);
                if let Some(b) = s.busy.get_mut(slot) {
                    *b = false;
                }
            }
        }
    }

    pub fn set_paused(&self, name: &str, paused: bool) {
        if let Some(s) = self.lock().get_mut(name) {
            s.paused = paused;
        }
    }

    /// Marks a worker for graceful stop; returns true if it is idle now.
    pub fn set_stopping(&self, name: &str) -> Option<bool> {
        self.lock().get_mut(name).map(|s| {
            s.stopping = true;
            s.running == 0
        })
    }

    pub fn is_idle_stopping(&self, name: &str) -> bool {
        self.lock()
            .get(name)
            .is_some_and(|s| s.stopping && s.running == 0)
    }

    pub fn all_conns(&self) -> Vec<Arc<Conn>> {
        self.lock().values().map(|s| s.conn.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, arch: &str, max: u32) -> Slot {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        Slot {
            conn: Arc::new(Conn::new(name.into(), 1, tx)),
            arch: arch.into(),
            max_builds: max,
            running: 0,
            busy: vec![false; max as usize],
            paused: false,
            stopping: false,
        }
    }

    #[test]
    fn arch_matching_capacity_and_pause() {
        let r = Registry::default();
        r.insert(slot("a", "x86_64", 2));
        r.insert(slot("b", "i386", 1));
        // noarch (builder `all`) goes anywhere; an arch builder only to that arch.
        let (c1, s1) = r.reserve("x86_64").unwrap();
        assert_eq!((c1.name.as_str(), s1), ("a", 0));
        let (c2, s2) = r.reserve("x86_64").unwrap();
        assert_eq!((c2.name.as_str(), s2), ("a", 1));
        assert!(r.reserve("x86_64").is_none(), "max_builds reached");
        let (c3, _) = r.reserve("all").unwrap();
        assert_eq!(c3.name, "b");
        assert!(r.reserve("armhfp").is_none());
        r.release(&c1, s1);
        r.set_paused("a", true);
        assert!(r.reserve("x86_64").is_none(), "paused");
        r.set_paused("a", false);
        assert_eq!(r.reserve("x86_64").unwrap().1, 0, "freed slot reused");
    }
}
