//! Submission: jobs are stored in a durable SQLite outbox ([`outbox`]) in the same transaction
//! that marks their message as seen, then POSTed to the master's change hook
//! ([`change_hook`]) and deleted only once the master accepted them. While the master is down
//! or failing, the submitter retries with capped, jittered exponential backoff; a permanent
//! refusal (4xx other than 408/429) moves the job to a dead-letter table.

pub mod change_hook;
pub mod joblog;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub use change_hook::{ChangeHookClient, Outcome};
pub use joblog::JobLog;
pub use outbox::Outbox;

/// One job: a task to run on an item for an arch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub uuid: String,
    pub taskname: String,
    pub item: String,
    pub item_type: String,
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_host_arch: bool,
    pub message_type: String,
    pub msg_id: String,
}

impl Job {
    /// The Buildbot change properties Taskotron's master reads.
    pub fn properties(&self) -> Value {
        let mut p = json!({
            "taskname": self.taskname,
            "item": self.item,
            "item_type": self.item_type,
            "arch": self.arch,
            "uuid": self.uuid,
        });
        if let Some(r) = &self.git_repo {
            p["git_repo"] = r.clone().into();
        }
        if let Some(b) = &self.git_branch {
            p["git_branch"] = b.clone().into();
        }
        if self.match_host_arch {
            p["match_host_arch"] = true.into();
        }
        p
    }
}

/// Backoff settings of the submitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.max)
    }

    /// ±25 % jitter so many triggers do not retry in lockstep.
    fn jittered(d: Duration) -> Duration {
        d.mul_f64(rand::rng().random_range(0.75..1.25))
    }
}

/// Submits outbox jobs forever, oldest first. `wake` is notified when new jobs are recorded.
pub async fn run_submitter(
    outbox: Arc<Outbox>,
    client: ChangeHookClient,
    wake: Arc<Notify>,
    joblog: Option<JobLog>,
    backoff: Backoff,
) {
    let mut delay = backoff.initial;
    loop {
        let batch = match outbox.next_batch(64) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read pending jobs");
                tokio::time::sleep(backoff.max).await;
                continue;
            }
        };
        if batch.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
            continue;
        }
        for (id, job) in batch {
            match client.submit(&job).await {
                Outcome::Accepted(body) => {
                    crate::metrics::global().submitted();
                    delay = backoff.initial;
                    if let Err(e) = outbox.accepted(id) {
                        tracing::error!(uuid = %job.uuid, error = %e, "outbox: cannot delete accepted job");
                    }
                    tracing::info!(uuid = %job.uuid, taskname = %job.taskname, item = %job.item,
                        arch = %job.arch, response = %body.trim(), "job accepted by master");
                    if let Some(log) = &joblog {
                        if let Err(e) = log.append(&job) {
                            tracing::warn!(error = %e, "job log: cannot append");
                        }
                    }
                }
                Outcome::Rejected { status, body } => {
                    crate::metrics::global().submit_failure("rejected");
                    tracing::error!(uuid = %job.uuid, taskname = %job.taskname, status, body = %body.trim(),
                        "master refused job; kept in the dead-letter table");
                    if let Err(e) = outbox.dead(id, status, &body) {
                        tracing::error!(uuid = %job.uuid, error = %e, "outbox: cannot move job to dead letters");
                    }
                }
                Outcome::Retry(reason) => {
                    crate::metrics::global().submit_failure("unavailable");
                    let _ = outbox.retry(id, &reason);
                    let wait = Backoff::jittered(delay);
                    tracing::warn!(uuid = %job.uuid, reason = %reason, retry_in_ms = wait.as_millis() as u64,
                        "master unavailable; will retry");
                    tokio::time::sleep(wait).await;
                    delay = backoff.next(delay);
                    break;
                }
            }
        }
    }
}
