//! The master's shared state: config, database, mirrors, connected workers, running builds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::db::Db;
use crate::mirror::Mirrors;
use crate::workers::Registry;

/// A build in progress, as seen by the REST control calls.
#[allow(dead_code)] // ids and worker are for status pages (UI, metrics)
pub struct RunningBuild {
    pub buildid: i64,
    pub brid: i64,
    pub worker: String,
    /// Set to Some(reason) by a `stop` call.
    pub stop: watch::Sender<Option<String>>,
}

pub struct Master {
    pub cfg: Config,
    pub db: Db,
    pub mirrors: Arc<Mirrors>,
    pub workers: Registry,
    /// Wakes the scheduler (new request, worker connected, build finished).
    pub wake: Notify,
    pub running: Mutex<HashMap<i64, Arc<RunningBuild>>>,
    shutting_down: AtomicBool,
    /// Fires when a build ends (for the graceful shutdown wait).
    pub build_ended: Notify,
    /// Prometheus counters and the UI's heartbeat times (`metrics.rs`).
    pub metrics: crate::metrics::Metrics,
}

impl Master {
    pub fn new(cfg: Config, db: Db, mirrors: Arc<Mirrors>) -> Master {
        Master {
            cfg,
            db,
            mirrors,
            workers: Registry::default(),
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            build_ended: Notify::new(),
            metrics: Default::default(),
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn running_builds(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<RunningBuild>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builder ids a worker is configured on (for `/api/v2/workers`).
    pub fn builder_ids_of(&self, worker: &str) -> Vec<i64> {
        let arch = self
            .workers
            .archs()
            .get(worker)
            .cloned()
            .or_else(|| self.cfg.worker(worker).map(|w| w.arch.clone()))
            .unwrap_or_default();
        crate::workers::builders_for_arch(&arch)
            .iter()
            .filter_map(|b| self.db.ensure_builder(b).ok())
            .collect()
    }
}
