//! What a running trigger shares between its tasks ([`State`]), and handling one message
//! inline for `replay` (signature check, de-duplication, then [`crate::process`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Config;
use crate::discover::Discoverer;
use crate::fedmsg::{Envelope, Verifier};
use crate::inbox::Inbox;
use crate::jobtriggers::Context;
use crate::pipeline::Pipeline;
use crate::process::{self, Prepared};
use crate::rules::RuleSet;
use crate::submit::{Backoff, ChangeHookClient, JobLog, Outbox};

/// Everything a running trigger shares between its tasks.
pub struct State {
    pub cfg: Config,
    pub pipeline: Arc<Pipeline>,
    pub outbox: Arc<Outbox>,
    /// Received messages not yet processed (same database as the outbox).
    pub inbox: Arc<Inbox>,
    pub verifier: Option<Verifier>,
    pub wake_submitter: Arc<Notify>,
    pub wake_fuses: Arc<Notify>,
    /// Notified when the intake stored new messages.
    pub wake_processor: Arc<Notify>,
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
        let outbox = Arc::new(
            Outbox::open(&db, cfg.dedupe_capacity)
                .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?,
        );
        let inbox = Inbox::open(outbox.clone(), cfg.inbox_capacity)
            .map_err(|e| anyhow::anyhow!("{}: inbox: {e}", db.display()))?;
        let discoverer = Discoverer::new(
            &cfg.git_cache_dir,
            Duration::from_secs(cfg.discover_refresh_secs),
        )
        .with_timeout(Duration::from_secs(cfg.discover_timeout_secs));
        let ctx = Context::new(&cfg, critpath);
        let pipeline = Pipeline::new(ctx, rules, cfg.valid_arches.clone(), Some(discoverer));
        Ok(State {
            cfg,
            pipeline: Arc::new(pipeline),
            outbox,
            inbox: Arc::new(inbox),
            verifier,
            wake_submitter: Arc::new(Notify::new()),
            wake_fuses: Arc::new(Notify::new()),
            wake_processor: Arc::new(Notify::new()),
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

    /// With `signatures.validate`, checks the message's signature; false: drop it (logged and
    /// counted here).
    pub fn signature_ok(&self, env: &Envelope, body: &[u8]) -> bool {
        let Some(v) = &self.verifier else {
            return true;
        };
        match v.verify(body) {
            Ok(cn) => {
                tracing::debug!(msg_id = %env.msg_id, signer = %cn, "signature ok");
                true
            }
            Err(e) => {
                crate::metrics::global().signature_failure();
                tracing::warn!(msg_id = %env.msg_id, topic = %env.topic, error = %e, "dropping message: invalid signature");
                false
            }
        }
    }

    /// Handles one message to the end, discover included (`replay`; `run` goes through the
    /// inbox instead).
    pub async fn handle(&self, env: Envelope, body: &[u8]) -> anyhow::Result<()> {
        if !self.signature_ok(&env, body) {
            return Ok(());
        }
        if self.outbox.is_seen(&env.msg_id)? {
            crate::metrics::global().duplicate();
            tracing::debug!(msg_id = %env.msg_id, "duplicate message ignored");
            return Ok(());
        }
        let outcome = match process::prepare(self, &env, &env.msg_id) {
            Prepared::Ready(o) => o,
            Prepared::NeedsGit(p) => {
                let pipeline = self.pipeline.clone();
                tokio::task::spawn_blocking(move || p.run(&pipeline)).await?
            }
        };
        process::finish(self, outcome)
    }
}
