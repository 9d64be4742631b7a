//! The master's Prometheus metrics: counters and a histogram updated by hooks in the build,
//! scheduler, worker-session and submit code, plus gauges read at scrape time (queue depth,
//! running builds, connected workers, mirror state). `/metrics` renders them in Prometheus'
//! text exposition format 0.0.4 (see `http/metrics.rs`), checked by `promtool check metrics`.
//!
//! The encoder is hand-written on purpose: it is small, and its output is exactly the classic
//! text format promtool and every Prometheus version parse (the crates emit OpenMetrics).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::db::results;
use taskotron_common::prometheus_text::fmt_f64;
pub use taskotron_common::prometheus_text::Encoder;

/// Refresh passes of a task mirror that ended in an error. A process-wide counter because the
/// mirror service has no handle on the master's state; bumped by `mirror/refresh.rs`.
pub static MIRROR_REFRESH_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Upper bounds (seconds) of the dispatch latency histogram buckets.
const DISPATCH_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Submission times kept for the dispatch histogram are bounded, so a queue that never drains
/// cannot grow this map without limit (the oldest requests then simply go unmeasured).
const MAX_TRACKED_SUBMISSIONS: usize = 100_000;

/// A cumulative histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<HistState>,
}

#[derive(Default, Clone)]
struct HistState {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            inner: Mutex::new(HistState {
                counts: vec![0; bounds.len()],
                ..Default::default()
            }),
        }
    }

    pub fn observe(&self, v: f64) {
        let mut s = lock(&self.inner);
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                s.counts[i] += 1;
            }
        }
        s.sum += v;
        s.count += 1;
    }

    pub fn count(&self) -> u64 {
        lock(&self.inner).count
    }

    fn encode(&self, out: &mut Encoder, name: &str, help: &str) {
        let s = lock(&self.inner).clone();
        out.family(name, help, "histogram");
        for (b, c) in self.bounds.iter().zip(&s.counts) {
            out.sample(
                &format!("{name}_bucket"),
                &[("le", &fmt_f64(*b))],
                *c as f64,
            );
        }
        out.sample(&format!("{name}_bucket"), &[("le", "+Inf")], s.count as f64);
        out.sample(&format!("{name}_sum"), &[], s.sum);
        out.sample(&format!("{name}_count"), &[], s.count as f64);
    }
}

/// Everything the master counts while it runs. One per [`crate::state::Master`].
pub struct Metrics {
    /// Finished builds by Buildbot result name (a lost worker's build counts as `retry`).
    builds: Mutex<BTreeMap<&'static str, u64>>,
    /// HTTP requests to `/change_hook*` by status code.
    change_hook: Mutex<BTreeMap<u16, u64>>,
    heartbeat_misses: AtomicU64,
    workers_lost: AtomicU64,
    dispatch: Histogram,
    /// brid → when it was queued by this process (for the dispatch latency).
    queued_at: Mutex<HashMap<i64, Instant>>,
    /// worker name → epoch seconds of its last answered keepalive (for the UI).
    last_heartbeat: Mutex<HashMap<String, i64>>,
    /// What the janitor deleted: logs, log bytes, artifact dirs, artifact bytes.
    pruned: [AtomicU64; 4],
}

impl Default for Metrics {
    fn default() -> Self {
        let builds = [
            results::SUCCESS,
            results::WARNINGS,
            results::FAILURE,
            results::SKIPPED,
            results::EXCEPTION,
            results::RETRY,
            results::CANCELLED,
        ]
        .iter()
        .map(|r| (results::name(*r), 0))
        .collect();
        Metrics {
            builds: Mutex::new(builds),
            change_hook: Mutex::new(BTreeMap::new()),
            heartbeat_misses: AtomicU64::new(0),
            workers_lost: AtomicU64::new(0),
            dispatch: Histogram::new(DISPATCH_BUCKETS),
            queued_at: Mutex::new(HashMap::new()),
            last_heartbeat: Mutex::new(HashMap::new()),
            pruned: Default::default(),
        }
    }
}

/// Values read at scrape time from the database and the registries.
#[derive(Default)]
pub struct Snapshot {
    /// Pending (unclaimed) requests by arch.
    pub queue_depth: BTreeMap<String, i64>,
    pub builds_running: i64,
    pub workers_connected: i64,
    pub workers_paused: i64,
    pub workers_configured: i64,
    /// (repos mirrored, repos whose last refresh failed)
    pub mirror_repos: (i64, i64),
}

impl Metrics {
    /// A request was stored (submit path).
    pub fn queued(&self, brid: i64) {
        let mut q = lock(&self.queued_at);
        if q.len() < MAX_TRACKED_SUBMISSIONS {
            q.insert(brid, Instant::now());
        }
    }

    /// A request was handed to a worker: observes the time since it was queued.
    pub fn dispatched(&self, brid: i64) {
        if let Some(t) = lock(&self.queued_at).remove(&brid) {
            self.dispatch.observe(t.elapsed().as_secs_f64());
        }
    }

    /// A request ended without running (cancelled while queued): forget its submission time.
    pub fn forget(&self, brid: i64) {
        lock(&self.queued_at).remove(&brid);
    }

    pub fn build_finished(&self, result: i64) {
        *lock(&self.builds).entry(results::name(result)).or_insert(0) += 1;
    }

    pub fn builds_finished(&self, result: i64) -> u64 {
        lock(&self.builds)
            .get(results::name(result))
            .copied()
            .unwrap_or(0)
    }

    pub fn change_hook_request(&self, status: u16) {
        *lock(&self.change_hook).entry(status).or_insert(0) += 1;
    }

    pub fn heartbeat_ok(&self, worker: &str) {
        lock(&self.last_heartbeat).insert(worker.to_string(), crate::db::now());
    }

    /// The heartbeat gave up on a worker; `missed` when it was a keepalive timeout.
    /// Counts a janitor pass (`janitor.rs`).
    pub fn pruned(&self, r: &crate::janitor::Report) {
        let add = [
            r.logs as u64,
            r.log_bytes,
            r.artifacts as u64,
            r.artifact_bytes,
        ];
        for (c, n) in self.pruned.iter().zip(add) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn worker_lost(&self, missed: bool) {
        if missed {
            self.heartbeat_misses.fetch_add(1, Ordering::Relaxed);
        }
        self.workers_lost.fetch_add(1, Ordering::Relaxed);
    }

    pub fn last_heartbeat(&self, worker: &str) -> Option<i64> {
        lock(&self.last_heartbeat).get(worker).copied()
    }

    pub fn dispatch_count(&self) -> u64 {
        self.dispatch.count()
    }

    /// The whole exposition text.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut e = Encoder::default();
        e.family(
            "taskotron_master_queue_depth",
            "Build requests waiting for a worker, by job arch.",
            "gauge",
        );
        for (arch, n) in &snap.queue_depth {
            e.sample("taskotron_master_queue_depth", &[("arch", arch)], *n as f64);
        }
        e.gauge(
            "taskotron_master_builds_running",
            "Builds in progress.",
            snap.builds_running as f64,
        );
        e.family(
            "taskotron_master_builds_total",
            "Builds finished by this master process, by result.",
            "counter",
        );
        for (r, n) in lock(&self.builds).iter() {
            e.sample("taskotron_master_builds_total", &[("result", r)], *n as f64);
        }
        self.dispatch.encode(
            &mut e,
            "taskotron_master_dispatch_latency_seconds",
            "Time from a request being queued to its build starting on a worker.",
        );
        e.gauge(
            "taskotron_master_workers_connected",
            "Workers attached over the worker protocol.",
            snap.workers_connected as f64,
        );
        e.gauge(
            "taskotron_master_workers_paused",
            "Connected workers that are paused.",
            snap.workers_paused as f64,
        );
        e.gauge(
            "taskotron_master_workers_configured",
            "Workers in the master's config.",
            snap.workers_configured as f64,
        );
        e.counter(
            "taskotron_master_workers_lost_total",
            "Workers declared lost by the heartbeat (no keepalive reply, or the connection broke).",
            self.workers_lost.load(Ordering::Relaxed) as f64,
        );
        for (i, (name, help)) in [
            (
                "taskotron_master_pruned_logs_total",
                "Step logs whose content the janitor deleted (retention.logs_days).",
            ),
            (
                "taskotron_master_pruned_log_bytes_total",
                "Bytes of step log content the janitor deleted.",
            ),
            (
                "taskotron_master_pruned_artifacts_total",
                "Job artifact directories the janitor deleted (retention.artifacts_days).",
            ),
            (
                "taskotron_master_pruned_artifact_bytes_total",
                "Bytes of artifacts the janitor deleted.",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            e.counter(name, help, self.pruned[i].load(Ordering::Relaxed) as f64);
        }
        e.counter(
            "taskotron_master_heartbeat_misses_total",
            "Keepalive requests that got no reply within heartbeat.timeout.",
            self.heartbeat_misses.load(Ordering::Relaxed) as f64,
        );
        e.family(
            "taskotron_master_change_hook_requests_total",
            "Requests to /change_hook, by HTTP status code.",
            "counter",
        );
        for (code, n) in lock(&self.change_hook).iter() {
            e.sample(
                "taskotron_master_change_hook_requests_total",
                &[("code", &code.to_string())],
                *n as f64,
            );
        }
        e.counter(
            "taskotron_master_mirror_refresh_errors_total",
            "Task mirror refresh attempts that failed.",
            MIRROR_REFRESH_ERRORS.load(Ordering::Relaxed) as f64,
        );
        e.gauge(
            "taskotron_master_mirror_repos",
            "Task repositories mirrored.",
            snap.mirror_repos.0 as f64,
        );
        e.gauge(
            "taskotron_master_mirror_repos_failing",
            "Task repositories whose last refresh failed.",
            snap.mirror_repos.1 as f64,
        );
        e.out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_text_is_escaped() {
        let m = Metrics::default();
        m.queued(1);
        m.dispatched(1);
        m.dispatched(2); // never queued here: not observed
        m.build_finished(results::SUCCESS);
        m.change_hook_request(200);
        let mut snap = Snapshot::default();
        snap.queue_depth.insert("x\"86".into(), 3);
        let text = m.render(&snap);
        assert!(text.contains("taskotron_master_dispatch_latency_seconds_count 1\n"));
        assert!(text.contains("taskotron_master_dispatch_latency_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("taskotron_master_builds_total{result=\"success\"} 1\n"));
        assert!(text.contains("taskotron_master_builds_total{result=\"failure\"} 0\n"));
        assert!(text.contains("taskotron_master_queue_depth{arch=\"x\\\"86\"} 3\n"));
        assert!(text.contains("taskotron_master_change_hook_requests_total{code=\"200\"} 1\n"));
    }
}
