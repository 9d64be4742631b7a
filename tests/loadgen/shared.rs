//! State shared by the submitter and all simulated workers: per-job timestamps (lock-free,
//! indexed by job number) and counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use taskotron_common::protocol::Value;
use tokio::sync::Notify;

/// The log-flood jobs of a run.
pub struct Flood {
    pub jobs: usize,
    pub bytes_per_job: u64,
    /// Where their streams run (separate threads from the measured workers).
    pub runtime: tokio::runtime::Handle,
}

pub struct Shared {
    pub worker_url: String,
    pub worker_password: String,
    pub verbose: bool,
    /// Prefix of every uuid of this run, so workers recognise jobs in command arguments.
    pub run_id: String,
    /// Jobs `0..jobs` are measured; `jobs..jobs+flood_jobs` stream `flood_bytes` of output.
    pub jobs: usize,
    pub flood_bytes: u64,
    pub t0: Instant,
    pub submit_ns: Vec<AtomicU64>,
    pub start_ns: Vec<AtomicU64>,
    pub end_ns: Vec<AtomicU64>,
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    pub flood_started: AtomicUsize,
    pub flood_finished: AtomicUsize,
    /// A job's shell started a second time (a retry or a duplicate build).
    pub restarts: AtomicUsize,
    pub attached: AtomicUsize,
    pub last_setup_ns: AtomicU64,
    pub command_errors: AtomicUsize,
    pub changed: Notify,
    pub upload_tgz: Vec<u8>,
    /// Where log-flood streams run (separate threads from the measured workers).
    pub flood_runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn new(
        worker_url: String,
        worker_password: String,
        run_id: String,
        jobs: usize,
        flood: Flood,
        verbose: bool,
    ) -> Shared {
        let n = jobs + flood.jobs;
        let v = || (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Shared {
            worker_url,
            worker_password,
            verbose,
            run_id,
            jobs,
            flood_bytes: flood.bytes_per_job,
            t0: Instant::now(),
            submit_ns: v(),
            start_ns: v(),
            end_ns: v(),
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            flood_started: AtomicUsize::new(0),
            flood_finished: AtomicUsize::new(0),
            restarts: AtomicUsize::new(0),
            attached: AtomicUsize::new(0),
            last_setup_ns: AtomicU64::new(0),
            command_errors: AtomicUsize::new(0),
            changed: Notify::new(),
            upload_tgz: results_tgz(),
            flood_runtime: flood.runtime,
        }
    }

    /// Nanoseconds since the run began (never 0, so 0 can mean "not yet").
    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64 + 1
    }

    pub fn uuid(&self, job: usize) -> String {
        if job < self.jobs {
            format!("{}-{job:06}", self.run_id)
        } else {
            format!("{}-flood-{job:06}", self.run_id)
        }
    }

    pub fn is_flood(&self, job: usize) -> bool {
        job >= self.jobs
    }

    /// The job whose uuid appears in any string of a command's arguments.
    pub fn job_in(&self, v: &Value) -> Option<usize> {
        match v {
            Value::String(s) => s.as_str().and_then(|s| self.job_in_str(s)),
            Value::Array(a) => a.iter().find_map(|x| self.job_in(x)),
            Value::Map(m) => m.iter().find_map(|(_, x)| self.job_in(x)),
            _ => None,
        }
    }

    fn job_in_str(&self, s: &str) -> Option<usize> {
        let at = s.find(&self.run_id)? + self.run_id.len();
        let rest = s[at..].strip_prefix('-')?;
        let rest = rest.strip_prefix("flood-").unwrap_or(rest);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let j: usize = digits.parse().ok()?;
        (j < self.submit_ns.len()).then_some(j)
    }

    pub fn mark_submit(&self, job: usize) {
        self.submit_ns[job].store(self.now_ns(), Ordering::Relaxed);
    }

    pub fn mark_start(&self, job: usize) {
        let now = self.now_ns();
        if self.start_ns[job]
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if self.is_flood(job) {
                self.flood_started.fetch_add(1, Ordering::Relaxed);
            } else {
                self.started.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.changed.notify_waiters();
    }

    pub fn mark_end(&self, job: usize) {
        let now = self.now_ns();
        if self.end_ns[job]
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if self.is_flood(job) {
                self.flood_finished.fetch_add(1, Ordering::Relaxed);
            } else {
                self.finished.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.changed.notify_waiters();
    }

    /// Waits until `cond` holds, re-checking on every change and at least every 50 ms.
    pub async fn wait_until(&self, cond: impl Fn(&Shared) -> bool) {
        while !cond(self) {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(50),
                self.changed.notified(),
            )
            .await;
        }
    }
}

/// The artifacts a task leaves: `taskotron/results.yml` and `taskotron/taskotron.log`, as the
/// gzipped tar stream buildbot-worker sends for `upload_directory`.
fn results_tgz() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        for (path, body) in [
            (
                "taskotron/results.yml",
                &b"results:\n  - item: foo-1.0-1.fc40\n    type: koji_build\n    checkname: demo\n    outcome: PASSED\n"[..],
            ),
            ("taskotron/taskotron.log", &b"[runtask] done\n"[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            let _ = tar.append_data(&mut h, path, body);
        }
        let _ = tar.finish();
    }
    gz.finish().unwrap_or_default()
}
