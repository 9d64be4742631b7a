//! Handling one message in a running trigger (shared by `run` and `replay`): signature check,
//! de-duplication, consumers, fuse or rules, then the outbox in one transaction.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::discover::Discoverer;
use crate::fedmsg::{Envelope, Verifier};
use crate::jobtriggers::Context;
use crate::pipeline::Pipeline;
use crate::rules::RuleSet;
use crate::submit::{Backoff, ChangeHookClient, JobLog, Outbox};

/// Everything a running trigger shares between its tasks.
pub struct State {
    pub cfg: Config,
    pub pipeline: Arc<Pipeline>,
    pub outbox: Arc<Outbox>,
    pub verifier: Option<Verifier>,
    pub wake_submitter: Arc<Notify>,
    pub wake_fuses: Arc<Notify>,
}

impl State {
    /// Loads rules, critpath, CA/CRL and opens the outbox; any problem is an error naming it.
    pub fn load(cfg: Config) -> anyhow::Result<State> {
        let rules = RuleSet::load(&cfg.rules)?;
        tracing::info!(rules = rules.rules_count(), file = %cfg.rules.display(), "rules loaded");
        let critpath = cfg.load_critpath()?;
        let verifier = if cfg.signatures.validate {
            let v = Verifier::from_config(&cfg.signatures)?;
            if !v.checks_chain() {
                tracing::warn!("signatures: no ca_cert configured; checking signatures against the embedded certificate only");
            }
            Some(v)
        } else {
            None
        };
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| anyhow::anyhow!("state_dir {}: {e}", cfg.state_dir.display()))?;
        let db = cfg.state_dir.join("trigger.sqlite");
        let outbox = Outbox::open(&db, cfg.dedupe_capacity)
            .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
        let discoverer = Discoverer::new(
            &cfg.git_cache_dir,
            std::time::Duration::from_secs(cfg.discover_refresh_secs),
        );
        let ctx = Context::new(&cfg, critpath);
        let pipeline = Pipeline::new(ctx, rules, cfg.valid_arches.clone(), Some(discoverer));
        Ok(State {
            cfg,
            pipeline: Arc::new(pipeline),
            outbox: Arc::new(outbox),
            verifier,
            wake_submitter: Arc::new(Notify::new()),
            wake_fuses: Arc::new(Notify::new()),
        })
    }

    /// Starts the submitter and the fuse tasks.
    pub fn spawn_workers(self: &Arc<Self>) -> anyhow::Result<()> {
        let client = ChangeHookClient::new(&self.cfg.master)?;
        tracing::info!(
            url = client.url(),
            "submitting jobs to the master's change hook"
        );
        let backoff = Backoff {
            initial: std::time::Duration::from_millis(self.cfg.master.retry_initial_ms),
            max: std::time::Duration::from_millis(self.cfg.master.retry_max_ms),
        };
        let joblog = self.cfg.job_log.as_deref().map(JobLog::new);
        tokio::spawn(crate::submit::run_submitter(
            self.outbox.clone(),
            client,
            self.wake_submitter.clone(),
            joblog,
            backoff,
        ));
        tokio::spawn(crate::fuse::run_fuses(
            self.pipeline.clone(),
            self.outbox.clone(),
            self.wake_fuses.clone(),
            self.wake_submitter.clone(),
        ));
        Ok(())
    }

    /// Handles one message body that arrived as `env` (already parsed).
    pub async fn handle(&self, env: Envelope, body: &[u8]) -> anyhow::Result<()> {
        let msg_id = env.msg_id.clone();
        if let Some(v) = &self.verifier {
            match v.verify(body) {
                Ok(cn) => tracing::debug!(msg_id = %msg_id, signer = %cn, "signature ok"),
                Err(e) => {
                    crate::metrics::global().signature_failure();
                    tracing::warn!(msg_id = %msg_id, topic = %env.topic, error = %e, "dropping message: invalid signature");
                    return Ok(());
                }
            }
        }
        if self.outbox.is_seen(&msg_id)? {
            crate::metrics::global().duplicate();
            tracing::debug!(msg_id = %msg_id, "duplicate message ignored");
            return Ok(());
        }
        let datas = match self.pipeline.message_data(&env) {
            Ok(None) => {
                tracing::debug!(msg_id = %msg_id, topic = %env.topic, "no consumer for topic; dropped");
                return Ok(());
            }
            Ok(Some(d)) => d,
            Err(e) => {
                crate::metrics::global().malformed();
                tracing::warn!(msg_id = %msg_id, topic = %env.topic, error = %e, "malformed message dropped");
                self.outbox.record(&msg_id, &[])?;
                return Ok(());
            }
        };
        let mut jobs = vec![];
        for data in datas {
            let is_tag =
                data.get("message_type").and_then(|v| v.as_str()) == Some("KojiTagChanged");
            if is_tag && self.cfg.fuse_delay > 0.0 {
                let tag = data
                    .get("tag")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let text = serde_json::Value::Object(data).to_string();
                if self
                    .outbox
                    .light_fuse(&tag, self.cfg.fuse_delay, &text, &msg_id)?
                {
                    tracing::info!(msg_id = %msg_id, tag = %tag, delay = self.cfg.fuse_delay, "fuse lit");
                    self.wake_fuses.notify_one();
                } else {
                    tracing::debug!(msg_id = %msg_id, tag = %tag, "fuse already burning; absorbed");
                }
                continue;
            }
            let p = self.pipeline.clone();
            let id = msg_id.clone();
            let made = tokio::task::spawn_blocking(move || p.jobs(&data, &id)).await?;
            crate::metrics::global().jobs_made(&made);
            jobs.extend(made.into_iter().map(|(_, j)| j));
        }
        self.outbox.record(&msg_id, &jobs)?;
        if !jobs.is_empty() {
            tracing::info!(msg_id = %msg_id, topic = %env.topic, jobs = jobs.len(), "jobs recorded");
            self.wake_submitter.notify_one();
        } else {
            tracing::debug!(msg_id = %msg_id, topic = %env.topic, "no rule matched");
        }
        Ok(())
    }
}
