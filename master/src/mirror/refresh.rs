//! Refreshing mirrors: the periodic pass over every repo (concurrency-limited, fetching only
//! repos whose remote refs changed), the on-demand refresh of one repo (webhook, CLI), and the
//! background task that runs the pass on an interval.
//!
//! A failing repo (upstream down, repo vanished) only records its error: its last good mirror
//! keeps being served and the other repos keep refreshing.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use git2::Repository;
use serde::{Deserialize, Serialize};

use super::entry::{lock, now_epoch, redact, RepoEntry, RepoKind};
use super::{manifest, repo, Mirrors};

/// What one refresh of one repo did (also the webhook's reply items).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Task key.
    pub name: String,
    /// Manifest path; empty for ad-hoc mirrors.
    pub path: String,
    /// True when the fetch changed refs.
    pub changed: bool,
    /// The jobs' branch head afterwards.
    pub head: Option<String>,
    /// Why the refresh failed; the previous mirror state is kept.
    pub error: Option<String>,
}

/// A blocking refresh's result: the outcome and, for published repos, the new manifest entry.
pub(crate) struct EntrySync {
    pub outcome: RefreshOutcome,
    pub manifest: Option<Option<manifest::Entry>>,
}

/// Records the jobs' branch head of `r` in `e`'s status.
pub(crate) fn note_head(e: &RepoEntry, r: &Repository) {
    let branch = e.branch().or_else(|| {
        r.find_reference("HEAD").ok().and_then(|h| {
            h.symbolic_target()
                .map(|t| t.trim_start_matches("refs/heads/").to_string())
        })
    });
    let head = branch
        .as_deref()
        .and_then(|b| repo::branch_head(r, b))
        .map(|o| o.to_string());
    e.record(|s| {
        s.branch = branch;
        s.head = head;
    });
}

/// The manifest entry of a repo with these refs (None when it has no refs).
pub(crate) fn describe(
    e: &RepoEntry,
    r: &Repository,
    refs: &repo::Refs,
    owner: Option<&str>,
) -> Option<manifest::Entry> {
    let upstream = lock(&e.upstream).clone();
    let owner = match e.kind {
        RepoKind::Followed => upstream.as_ref().and_then(|u| u.owner.clone()),
        _ => owner.map(str::to_string),
    };
    Some(manifest::Entry {
        modified: repo::modified(r, refs),
        fingerprint: Some(repo::fingerprint(refs)?),
        head: repo::head_line(&e.dir),
        owner,
        description: repo::description(&e.dir),
        reference: None,
        forkgroup: None,
        symlinks: None,
    })
}

/// Brings one mirror up to date (blocking). `force` skips the follow-mode fingerprint shortcut
/// and asks the remote (webhooks, CLI).
pub(crate) fn sync_entry_with(e: &RepoEntry, owner: Option<&str>, force: bool) -> EntrySync {
    let _guard = lock(&e.lock);
    let started = now_epoch();
    let upstream = lock(&e.upstream).clone();
    let (head, desc) = match e.kind {
        RepoKind::Configured => (
            format!("refs/heads/{}", e.branch().unwrap_or_default()),
            Some(format!("Taskotron task {}", e.key)),
        ),
        RepoKind::Adhoc => (
            format!("refs/heads/{}", e.branch().unwrap_or_default()),
            None,
        ),
        RepoKind::Followed => (
            upstream
                .as_ref()
                .and_then(|u| u.head.as_deref())
                .and_then(|h| h.strip_prefix("ref: "))
                .unwrap_or("refs/heads/master")
                .to_string(),
            upstream.as_ref().and_then(|u| u.description.clone()),
        ),
    };
    let expected = match (e.kind, force) {
        (RepoKind::Followed, false) => upstream.as_ref().and_then(|u| u.fingerprint.clone()),
        _ => None,
    };
    let result = repo::open_or_init(&e.dir, &head, desc.as_deref()).and_then(|r| {
        let synced = repo::sync(&r, &e.url, e.refspecs(), expected.as_deref())
            .map_err(super::MirrorError::git("fetch", redact(&e.url)))?;
        Ok((r, synced))
    });
    let mut outcome = RefreshOutcome {
        name: e.key.clone(),
        path: e.path.clone(),
        changed: false,
        head: None,
        error: None,
    };
    let mut manifest = None;
    match result {
        Ok((r, synced)) => {
            note_head(e, &r);
            outcome.changed = synced.changed;
            if synced.changed {
                tracing::info!(repo = %e.key, "mirror updated");
            }
            e.record(|s| {
                s.last_refresh = Some(started);
                s.last_error = None;
                if synced.changed {
                    s.last_change = Some(started);
                }
            });
            if e.kind != RepoKind::Adhoc {
                manifest = Some(describe(e, &r, &synced.refs, owner));
            }
        }
        Err(err) => {
            let msg = err.to_string();
            crate::metrics::MIRROR_REFRESH_ERRORS
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(repo = %e.key, "mirror refresh failed, keeping the last good copy: {msg}");
            e.record(|s| {
                s.last_refresh = Some(started);
                s.last_error = Some(msg.clone());
            });
            outcome.error = Some(msg);
        }
    }
    outcome.head = e.status().head;
    EntrySync { outcome, manifest }
}

/// [`sync_entry_with`] asking the remote (no fingerprint shortcut).
pub(crate) fn sync_entry(e: &RepoEntry, owner: Option<&str>) -> EntrySync {
    sync_entry_with(e, owner, true)
}

impl Mirrors {
    /// One pass over every published repo: follow mode first reads the upstream manifest; then
    /// each repo gets an ls-remote check (or fingerprint comparison) and a fetch only when
    /// something changed, at most `mirror.concurrency` at a time. The manifest is rewritten once
    /// at the end if anything changed.
    pub async fn refresh_all(&self) -> Vec<RefreshOutcome> {
        if self.follow.enabled() {
            if let Err(e) = self.follow_pass().await {
                tracing::warn!("follow mode: {e}; keeping the repos we have");
            }
        }
        let entries: Vec<_> = self
            .entries()
            .into_iter()
            .filter(|e| e.kind != RepoKind::Adhoc)
            .collect();
        let owner = self.cfg.owner.clone();
        let jobs = entries.into_iter().map(|e| {
            let sem = self.sem.clone();
            let owner = owner.clone();
            async move {
                let _permit = sem.acquire_owned().await.ok();
                let e2 = e.clone();
                let owner = owner.clone();
                match tokio::task::spawn_blocking(move || {
                    sync_entry_with(&e2, owner.as_deref(), false)
                })
                .await
                {
                    Ok(s) => (e, s),
                    Err(join) => (
                        e.clone(),
                        EntrySync {
                            outcome: RefreshOutcome {
                                name: e.key.clone(),
                                path: e.path.clone(),
                                changed: false,
                                head: None,
                                error: Some(format!("refresh task failed: {join}")),
                            },
                            manifest: None,
                        },
                    ),
                }
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        let mut changes = Vec::new();
        let mut outcomes = Vec::new();
        for (e, s) in results {
            if let Some(m) = s.manifest {
                changes.push((e.path.clone(), m));
            }
            outcomes.push(s.outcome);
        }
        self.publish(changes).await;
        outcomes
    }

    /// Refreshes one repo now, asking its remote (webhooks, `mirror refresh NAME`). `name` is a
    /// task key or a manifest path. Does not wait for the periodic pass's concurrency slots.
    pub async fn refresh(&self, name: &str) -> RefreshOutcome {
        let mut found = self.find(name).or_else(|| self.by_path(name));
        if found.is_none() && self.follow.enabled() {
            // Maybe a repo the upstream added since our last look.
            if let Err(e) = self.follow_pass().await {
                tracing::warn!("follow mode: {e}");
            }
            found = self.find(name).or_else(|| self.by_path(name));
        }
        let Some(e) = found else {
            return RefreshOutcome {
                name: name.to_string(),
                path: String::new(),
                changed: false,
                head: None,
                error: Some(format!("unknown task or repo {name:?}")),
            };
        };
        let owner = self.cfg.owner.clone();
        let e2 = e.clone();
        let s = match tokio::task::spawn_blocking(move || sync_entry(&e2, owner.as_deref())).await {
            Ok(s) => s,
            Err(join) => EntrySync {
                outcome: RefreshOutcome {
                    name: e.key.clone(),
                    path: e.path.clone(),
                    changed: false,
                    head: None,
                    error: Some(format!("refresh task failed: {join}")),
                },
                manifest: None,
            },
        };
        if let Some(m) = s.manifest {
            self.publish(vec![(e.path.clone(), m)]).await;
        }
        s.outcome
    }

    /// Applies manifest changes off the async threads; a failure is logged (the in-memory
    /// manifest is still served).
    async fn publish(&self, changes: Vec<(String, Option<manifest::Entry>)>) {
        if changes.is_empty() {
            return;
        }
        let p = self.publisher.clone();
        match tokio::task::spawn_blocking(move || p.update(changes)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("could not write manifest.js.gz: {e}"),
            Err(e) => tracing::error!("manifest update task failed: {e}"),
        }
    }

    /// Runs [`Mirrors::refresh_all`] every `mirror.refresh_interval` seconds on the current
    /// tokio runtime, the first time one interval from now (call `refresh_all` yourself for an
    /// initial pass), until the last `Arc<Mirrors>` is dropped. An interval of 0 disables it.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Mirrors> = Arc::downgrade(self);
        let interval = self.cfg.refresh_interval;
        tokio::spawn(async move {
            if interval == 0 {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(interval)).await;
                let Some(m) = weak.upgrade() else { break };
                let t0 = Instant::now();
                let out = m.refresh_all().await;
                drop(m);
                let changed = out.iter().filter(|o| o.changed).count();
                let failed = out.iter().filter(|o| o.error.is_some()).count();
                tracing::info!(
                    repos = out.len(),
                    changed,
                    failed,
                    ms = t0.elapsed().as_millis() as u64,
                    "mirror refresh pass done"
                );
            }
        })
    }
}
