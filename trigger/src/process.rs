//! The processor: turns inbox messages into jobs, off the intake path.
//!
//! It reads the inbox oldest first. Consumers and rules are quick, so a message whose rules
//! need no git is finished at once. A message with a `discover` reaction is handed to a bounded
//! pool (`discover_concurrency` at a time, each discover limited by `discover_timeout_secs`) and
//! the processor moves on. Messages that discover the same repository take turns *before* they
//! take a pool slot, so a slow or hanging git server delays only the messages that need that
//! repository and never fills the pool with messages waiting for it. Messages therefore may finish out of order; each message's jobs are still
//! recorded together, and a message is removed from the inbox in the same transaction
//! ([`crate::inbox::Inbox::finish`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, Semaphore};

use crate::cli::State;
use crate::fedmsg::Envelope;
use crate::jobtriggers::MessageData;
use crate::pipeline::Pipeline;
use crate::rules::{Reaction, What};
use crate::submit::outbox::FuseLight;
use crate::submit::Job;

/// Messages taken from the inbox that may wait for a discover slot at once; beyond it the
/// processor waits (the messages stay safely in the inbox, and intake is not affected).
const MAX_WAITING_FOR_GIT: usize = 1024;

/// Inbox rows read per query.
const BATCH: usize = 256;

/// The result of processing one message, ready to be committed.
#[derive(Debug)]
pub struct Outcome {
    pub msg_id: String,
    pub topic: String,
    pub jobs: Vec<Job>,
    pub fuses: Vec<FuseLight>,
}

/// Reactions that still have to run git.
pub struct Pending {
    outcome: Outcome,
    work: Vec<(MessageData, Vec<(usize, Reaction)>)>,
}

pub enum Prepared {
    Ready(Outcome),
    NeedsGit(Pending),
}

impl Pending {
    /// The repositories its discovers clone or fetch, sorted (the order locks are taken in).
    fn repos(&self) -> Vec<String> {
        let mut repos: Vec<String> = self
            .work
            .iter()
            .flat_map(|(_, reactions)| reactions)
            .filter_map(|(_, r)| match &r.what {
                What::Discover(spec) => Some(spec.repo.clone()),
                What::Tasks(_) => None,
            })
            .collect();
        repos.sort();
        repos.dedup();
        repos
    }

    /// Runs the discovers (blocking) and returns the complete outcome.
    pub fn run(mut self, pipeline: &Pipeline) -> Outcome {
        for (data, reactions) in &self.work {
            let made = pipeline.build(data, &self.outcome.msg_id, reactions);
            crate::metrics::global().jobs_made(&made);
            self.outcome.jobs.extend(made.into_iter().map(|(_, j)| j));
        }
        self.outcome
    }
}

/// Consumers, fuses and rules for one message (quick); discover is left to the caller.
pub fn prepare(state: &State, env: &Envelope, msg_id: &str) -> Prepared {
    let mut out = Outcome {
        msg_id: msg_id.to_string(),
        topic: env.topic.clone(),
        jobs: vec![],
        fuses: vec![],
    };
    let datas = match state.pipeline.message_data(env) {
        Ok(None) => {
            tracing::debug!(msg_id, topic = %env.topic, "no consumer for topic; dropped");
            return Prepared::Ready(out);
        }
        Ok(Some(d)) => d,
        Err(e) => {
            crate::metrics::global().malformed();
            tracing::warn!(msg_id, topic = %env.topic, error = %e, "malformed message dropped");
            return Prepared::Ready(out);
        }
    };
    let mut work = vec![];
    for data in datas {
        let is_tag = data.get("message_type").and_then(|v| v.as_str()) == Some("KojiTagChanged");
        if is_tag && state.cfg.fuse_delay > 0.0 {
            let tag = data
                .get("tag")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let data = serde_json::Value::Object(data).to_string();
            out.fuses.push(FuseLight { tag, data });
            continue;
        }
        let reactions = state.pipeline.plan(&data, msg_id);
        if state.pipeline.needs_git(&reactions) {
            work.push((data, reactions));
            continue;
        }
        let made = state.pipeline.build(&data, msg_id, &reactions);
        crate::metrics::global().jobs_made(&made);
        out.jobs.extend(made.into_iter().map(|(_, j)| j));
    }
    if work.is_empty() {
        Prepared::Ready(out)
    } else {
        Prepared::NeedsGit(Pending { outcome: out, work })
    }
}

/// Records a message's jobs and fuses, marks it seen and removes it from the inbox.
pub fn finish(state: &State, o: Outcome) -> anyhow::Result<()> {
    let done = state
        .inbox
        .finish(&o.msg_id, &o.jobs, &o.fuses, state.cfg.fuse_delay)?;
    for (f, lit) in o.fuses.iter().zip(&done.lit) {
        if *lit {
            tracing::info!(msg_id = %o.msg_id, tag = %f.tag, delay = state.cfg.fuse_delay, "fuse lit");
            state.wake_fuses.notify_one();
        } else {
            tracing::debug!(msg_id = %o.msg_id, tag = %f.tag, "fuse already burning; absorbed");
        }
    }
    if !o.jobs.is_empty() {
        tracing::info!(msg_id = %o.msg_id, topic = %o.topic, jobs = o.jobs.len(), "jobs recorded");
        state.wake_submitter.notify_one();
    } else if o.fuses.is_empty() {
        tracing::debug!(msg_id = %o.msg_id, topic = %o.topic, "no rule matched");
    }
    Ok(())
}

fn finish_logged(state: &State, o: Outcome) {
    let msg_id = o.msg_id.clone();
    if let Err(e) = finish(state, o) {
        tracing::error!(msg_id = %msg_id, error = %e,
            "cannot record the message's jobs; it stays in the inbox and is processed again after a restart");
    }
}

/// One async lock per repository, so messages for one repository queue without a pool slot.
#[derive(Default)]
struct RepoLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RepoLocks {
    async fn lock_all(&self, repos: &[String]) -> Vec<OwnedMutexGuard<()>> {
        let locks: Vec<_> = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 4096 {
                // Forget repositories nobody waits for (one per package on Fedora's dist-git).
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            repos
                .iter()
                .map(|r| map.entry(r.clone()).or_default().clone())
                .collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for l in locks {
            guards.push(l.lock_owned().await);
        }
        guards
    }
}

/// Processes inbox messages forever; `state.wake_processor` is notified by the intake.
pub async fn run_processor(state: Arc<State>) {
    let pool = Arc::new(Semaphore::new(state.cfg.discover_concurrency));
    let backlog = Arc::new(Semaphore::new(MAX_WAITING_FOR_GIT));
    let repo_locks = Arc::new(RepoLocks::default());
    let left = state.inbox.depth();
    if left > 0 {
        tracing::info!(messages = left, "resuming messages left in the inbox");
    }
    let mut cursor = 0;
    loop {
        let rows = match state.inbox.after(cursor, BATCH) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "inbox: cannot read messages; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if rows.is_empty() {
            // notify_one keeps a permit, so a wake-up between the query and here is not lost.
            let _ =
                tokio::time::timeout(Duration::from_secs(5), state.wake_processor.notified()).await;
            continue;
        }
        for row in rows {
            cursor = row.id;
            // The intake checked size and shape already; only a changed config could fail here.
            let env = match Envelope::from_frames(&row.topic, &row.body, usize::MAX) {
                Ok(e) => e,
                Err(e) => {
                    crate::metrics::global().malformed();
                    tracing::warn!(msg_id = %row.msg_id, error = %e, "malformed message in the inbox dropped");
                    let topic = String::from_utf8_lossy(&row.topic).into_owned();
                    finish_logged(
                        &state,
                        Outcome {
                            msg_id: row.msg_id,
                            topic,
                            jobs: vec![],
                            fuses: vec![],
                        },
                    );
                    continue;
                }
            };
            match prepare(&state, &env, &row.msg_id) {
                Prepared::Ready(o) => finish_logged(&state, o),
                Prepared::NeedsGit(p) => {
                    let Ok(slot) = backlog.clone().acquire_owned().await else {
                        return;
                    };
                    let queued = crate::metrics::global().discover_queued();
                    let (state, pool, locks) = (state.clone(), pool.clone(), repo_locks.clone());
                    tokio::spawn(async move {
                        let _slot = slot;
                        let _repos = locks.lock_all(&p.repos()).await;
                        let Ok(_permit) = pool.acquire_owned().await else {
                            return;
                        };
                        drop(queued);
                        let pipeline = state.pipeline.clone();
                        let msg_id = p.outcome.msg_id.clone();
                        match tokio::task::spawn_blocking(move || p.run(&pipeline)).await {
                            Ok(o) => finish_logged(&state, o),
                            Err(e) => tracing::error!(msg_id = %msg_id, error = %e,
                                "discover task failed; the message stays in the inbox until a restart"),
                        }
                    });
                }
            }
        }
    }
}
