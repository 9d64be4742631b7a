//! Message in, jobs out: envelope -> consumers -> message data -> rules -> jobs. Shared by
//! `run`, `replay` and `check-rules` so rule authors see exactly what production does.

use std::sync::{Arc, RwLock};

use crate::discover::Discoverer;
use crate::fedmsg::Envelope;
use crate::jobtriggers::{self, ConsumeError, Consumer, Context, MessageData};
use crate::rules::{Reaction, RuleSet, What};
use crate::submit::Job;

pub struct Pipeline {
    consumers: Vec<Box<dyn Consumer>>,
    pub ctx: Context,
    rules: RwLock<Arc<RuleSet>>,
    pub valid_arches: Vec<String>,
    /// `None` disables `discover` reactions (they are then only reported).
    pub discoverer: Option<Discoverer>,
}

/// What the rules asked for, before discovery: used by `check-rules --no-discover`.
#[derive(Debug, Clone)]
pub struct Planned {
    pub rule: usize,
    pub job: Job,
}

impl Pipeline {
    pub fn new(
        ctx: Context,
        rules: RuleSet,
        valid_arches: Vec<String>,
        discoverer: Option<Discoverer>,
    ) -> Pipeline {
        Pipeline {
            consumers: jobtriggers::all(),
            ctx,
            rules: RwLock::new(Arc::new(rules)),
            valid_arches,
            discoverer,
        }
    }

    /// Topic prefixes to subscribe to (one per consumer topic family).
    pub fn subscriptions(&self) -> Vec<String> {
        let mut subs: Vec<String> = self
            .consumers
            .iter()
            .flat_map(|c| c.topics(&self.ctx))
            .collect();
        subs.sort();
        subs.dedup();
        subs
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in new rules (after a successful reload).
    pub fn set_rules(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// `Ok(None)`: no consumer handles the topic.
    pub fn message_data(&self, env: &Envelope) -> Result<Option<Vec<MessageData>>, ConsumeError> {
        jobtriggers::dispatch(&self.consumers, env, &self.ctx)
    }

    /// The jobs for one message-data dict, with `discover` run (blocking: may call git).
    pub fn jobs(&self, data: &MessageData, msg_id: &str) -> Vec<(usize, Job)> {
        self.build(data, msg_id, &self.plan(data, msg_id))
    }

    /// The reactions of the rules that match (quick: no git). Rules that cannot be rendered
    /// for this message give none (with a warning).
    ///
    /// A message whose item does not fit its item type's grammar gives none either: items
    /// reach shell strings in task formulas (taskotron_common::item).
    pub fn plan(&self, data: &MessageData, msg_id: &str) -> Vec<(usize, Reaction)> {
        let reactions = match self.rules().evaluate(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(msg_id, error = %e, "rules could not be rendered for this message; no jobs");
                return vec![];
            }
        };
        if reactions.is_empty() {
            return reactions;
        }
        let text = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        if let Err(e) = taskotron_common::item::check(text("item_type"), text("item")) {
            crate::metrics::global().item_refused();
            tracing::error!(msg_id, error = %e, "refusing the message's jobs: its item could reach a shell");
            return vec![];
        }
        reactions
    }

    /// True if building these reactions' jobs runs git (a `discover` with discovery enabled).
    pub fn needs_git(&self, reactions: &[(usize, Reaction)]) -> bool {
        self.discoverer.is_some()
            && reactions
                .iter()
                .any(|(_, r)| matches!(r.what, What::Discover(_)))
    }

    /// The jobs for planned reactions; runs `discover` (blocking: may call git).
    pub fn build(
        &self,
        data: &MessageData,
        msg_id: &str,
        reactions: &[(usize, Reaction)],
    ) -> Vec<(usize, Job)> {
        let text = |k: &str| {
            data.get(k)
                .map(crate::rules::template::py_str)
                .unwrap_or_default()
        };
        let (item, item_type, message_type) =
            (text("item"), text("item_type"), text("message_type"));
        let mut out: Vec<(usize, Job)> = vec![];
        let mut push = |rule: usize,
                        taskname: &str,
                        arch: &str,
                        repo: Option<&str>,
                        branch: Option<&str>,
                        mha: bool| {
            let dup = out.iter().any(|(_, j)| {
                j.taskname == taskname
                    && j.arch == arch
                    && j.git_repo.as_deref() == repo
                    && j.git_branch.as_deref() == branch
            });
            if !dup {
                out.push((
                    rule,
                    Job {
                        uuid: uuid::Uuid::new_v4().to_string(),
                        taskname: taskname.to_string(),
                        item: item.clone(),
                        item_type: item_type.clone(),
                        arch: arch.to_string(),
                        git_repo: repo.map(str::to_string),
                        git_branch: branch.map(str::to_string),
                        match_host_arch: mha,
                        message_type: message_type.clone(),
                        msg_id: msg_id.to_string(),
                    },
                ));
            }
        };
        for (rule, r) in reactions {
            let rule = *rule;
            let arches = r.arches.as_ref().unwrap_or(&self.valid_arches);
            match &r.what {
                What::Tasks(tasks) => {
                    for t in tasks {
                        for a in arches {
                            push(rule, t, a, None, None, r.match_host_arch);
                        }
                    }
                }
                What::Discover(spec) => {
                    let Some(d) = &self.discoverer else {
                        tracing::info!(msg_id, repo = %spec.repo, "discover skipped (disabled)");
                        continue;
                    };
                    match d.discover(spec) {
                        Ok(found) => {
                            for f in found {
                                for a in arches {
                                    push(
                                        rule,
                                        &f.taskname,
                                        a,
                                        Some(&spec.repo),
                                        Some(&f.branch),
                                        r.match_host_arch,
                                    );
                                }
                            }
                        }
                        Err(e) if e.is_timeout() => {
                            crate::metrics::global().discover_failed(true);
                            tracing::error!(msg_id, rule, repo = %spec.repo, error = %e,
                                "discover timed out (git killed); no jobs from it")
                        }
                        Err(e) => {
                            crate::metrics::global().discover_failed(false);
                            tracing::warn!(msg_id, rule, repo = %spec.repo, error = %e, "discover failed; no jobs from it")
                        }
                    }
                }
            }
        }
        out
    }
}
