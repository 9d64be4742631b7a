//! Task repositories: GrokMirror-compatible git mirrors of the configured tasks.
//!
//! The master keeps a bare mirror of every configured task under
//! `<data_dir>/mirror/<namespace>/<name>.git`, refreshes them on an interval and on push
//! webhooks, publishes `<data_dir>/mirror/manifest.js.gz` in GrokMirror 2.x format (so a real
//! `grok-pull` can replicate us), serves the repos read-only over git's smart and dumb HTTP
//! protocols, and turns a pinned commit into a cached `.tar.gz` snapshot that workers download.
//!
//! Layout: [`config`] (settings), [`entry`] (one tracked repo and its status), [`repo`] (libgit2
//! operations), [`manifest`] (GrokMirror manifest), [`refresh`] (periodic and on-demand passes),
//! [`follow`] (upstream manifest mode), [`snapshot`] (tar.gz of a commit), [`http`] + [`dumb`]
//! (routes) and [`hooks`] (push webhooks).

pub mod config;
pub mod dumb;
pub mod entry;
pub mod error;
pub mod follow;
pub mod hooks;
pub mod http;
pub mod manifest;
pub mod owner;
pub mod refresh;
pub mod repo;
pub mod smart;
pub mod snapshot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha1::{Digest, Sha1};

pub use config::{MirrorConfig, TaskSource};
pub use entry::{RepoKind, RepoStatus};
pub use error::MirrorError;
pub use refresh::RefreshOutcome;

use entry::{lock, RepoEntry};

/// Prefix of the task keys [`Mirrors::pin_adhoc`] hands out.
pub const ADHOC_PREFIX: &str = "_adhoc_";

/// The mirror service. Cheap to share (`Arc`); all methods take `&self`.
pub struct Mirrors {
    /// `<data_dir>/mirror`: published repos and manifest.js.gz.
    root: PathBuf,
    /// `<data_dir>/mirror-adhoc`: cache mirrors of ad-hoc repos (not published).
    adhoc_root: PathBuf,
    /// `<data_dir>/mirror-snapshots/<task key>/<sha>.tar.gz`.
    snap_root: PathBuf,
    cfg: MirrorConfig,
    /// All tracked repos by task key.
    repos: RwLock<BTreeMap<String, Arc<RepoEntry>>>,
    publisher: Arc<manifest::Publisher>,
    follow: follow::Follower,
    sem: Arc<tokio::sync::Semaphore>,
}

impl Mirrors {
    /// Sets up the mirror tree for `tasks` (creating empty bare repos as needed; no network)
    /// and publishes the manifest of what is already on disk. Call [`Mirrors::refresh_all`] or
    /// [`Mirrors::spawn_background`] to fetch.
    pub fn open(
        data_dir: &Path,
        cfg: MirrorConfig,
        tasks: Vec<TaskSource>,
    ) -> Result<Arc<Mirrors>, MirrorError> {
        cfg.validate()?;
        config::validate_tasks(&tasks)?;
        set_network_timeouts(cfg.fetch_timeout);
        let root = data_dir.join("mirror");
        std::fs::create_dir_all(&root).map_err(MirrorError::io("create", &root))?;
        let mut repos = BTreeMap::new();
        for t in tasks {
            let path = format!("/{}/{}.git", cfg.namespace, t.name);
            let dir = root.join(&cfg.namespace).join(format!("{}.git", t.name));
            let e = RepoEntry::new(
                t.name.clone(),
                path,
                RepoKind::Configured,
                t.url,
                Some(t.branch),
                dir,
            );
            repos.insert(t.name, Arc::new(e));
        }
        let follow = follow::Follower::new(&cfg)?;
        // Repos followed before a restart are picked up from the manifest we published.
        let publisher = manifest::Publisher::open(root.join("manifest.js.gz"))?;
        let published = publisher.entries();
        let mirrors = Mirrors {
            adhoc_root: data_dir.join("mirror-adhoc"),
            snap_root: data_dir.join("mirror-snapshots"),
            sem: Arc::new(tokio::sync::Semaphore::new(cfg.concurrency)),
            publisher: Arc::new(publisher),
            repos: RwLock::new(repos),
            follow,
            root,
            cfg,
        };
        if mirrors.follow.enabled() {
            for (path, e) in published {
                if mirrors.follow.wanted(&path) && mirrors.by_path(&path).is_none() {
                    mirrors.add_followed(&path, Some(e));
                }
            }
        }
        // Create missing repos and describe existing ones.
        let mut changes = Vec::new();
        for e in mirrors.entries() {
            if e.kind == RepoKind::Configured {
                let r = repo::open_or_init(
                    &e.dir,
                    &head_ref(&e),
                    Some(&format!("Taskotron task {}", e.key)),
                )?;
                refresh::note_head(&e, &r);
            }
            changes.push((e.path.clone(), mirrors.describe(&e)));
        }
        // Entries of repos no longer tracked (task removed from the config) go away.
        for path in mirrors.publisher.entries().into_keys() {
            if mirrors.by_path(&path).is_none() {
                changes.push((path, None));
            }
        }
        mirrors.publisher.update(changes)?;
        Ok(Arc::new(mirrors))
    }

    /// The config this service runs with.
    pub fn config(&self) -> &MirrorConfig {
        &self.cfg
    }

    /// `<data_dir>/mirror`, the GrokMirror toplevel (manifest.js.gz is in it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn entries(&self) -> Vec<Arc<RepoEntry>> {
        self.repos
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A tracked repo by task key: the task name, `namespace/name` of a followed repo (or just
    /// `name` when it is in our namespace), or an ad-hoc key.
    pub(crate) fn find(&self, task: &str) -> Option<Arc<RepoEntry>> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        repos
            .get(task)
            .or_else(|| repos.get(&format!("{}/{}", self.cfg.namespace, task)))
            .cloned()
    }

    /// A published repo by manifest path (`/fedoraqa/rpmlint.git`).
    pub(crate) fn by_path(&self, path: &str) -> Option<Arc<RepoEntry>> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        repos
            .values()
            .find(|e| e.kind != RepoKind::Adhoc && e.path == path)
            .cloned()
    }

    /// Starts tracking a repo listed in the upstream manifest.
    pub(crate) fn add_followed(
        &self,
        path: &str,
        upstream: Option<manifest::Entry>,
    ) -> Option<Arc<RepoEntry>> {
        let site = self.follow.site()?;
        let key = path
            .trim_start_matches('/')
            .trim_end_matches(".git")
            .to_string();
        let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = repos.get(&key) {
            return Some(e.clone());
        }
        if repos.values().any(|e| e.path == path) {
            tracing::warn!(
                path,
                "followed repo has the same path as a configured task; the configured one wins"
            );
            return None;
        }
        let dir = self.root.join(path.trim_start_matches('/'));
        let e = Arc::new(RepoEntry::new(
            key.clone(),
            path.to_string(),
            RepoKind::Followed,
            format!("{site}{path}"),
            None,
            dir,
        ));
        *lock(&e.upstream) = upstream;
        repos.insert(key, e.clone());
        Some(e)
    }

    /// The manifest entry of a repo as it is on disk now (None: missing or no refs).
    pub(crate) fn describe(&self, e: &RepoEntry) -> Option<manifest::Entry> {
        let r = git2::Repository::open_bare(&e.dir).ok()?;
        let refs = repo::local_refs(&r).ok()?;
        refresh::describe(e, &r, &refs, self.cfg.owner.as_deref())
    }

    /// Status of every tracked repo, for the UI and `mirror status`.
    pub fn status(&self) -> Vec<RepoStatus> {
        self.entries().iter().map(|e| e.status()).collect()
    }

    /// The gzipped manifest we publish and its Last-Modified time.
    pub fn manifest(&self) -> (bytes::Bytes, std::time::SystemTime) {
        self.publisher.current()
    }

    /// The commit the task's branch points at in the mirror (the master records it as the
    /// build property `task_sha`). Blocking (libgit2): call from `spawn_blocking` in async code.
    /// Fetches first when the mirror has never been fetched; builds the snapshot right away so
    /// the pinned commit stays available whatever happens upstream.
    pub fn pin(&self, task: &str) -> Result<String, MirrorError> {
        let e = self
            .find(task)
            .ok_or_else(|| MirrorError::UnknownTask(task.to_string()))?;
        let sha = match self.branch_sha(&e)? {
            Some(sha) => sha,
            None => {
                // Not fetched yet (fresh start) or the branch is new: one fetch, then decide.
                self.sync_now(&e)?;
                self.branch_sha(&e)?.ok_or_else(|| {
                    MirrorError::NotFound(format!(
                        "branch {:?} not found in the mirror of {} ({})",
                        e.branch().unwrap_or_default(),
                        e.key,
                        entry::redact(&e.url)
                    ))
                })?
            }
        };
        if let Err(err) = self.snapshot(&e.key, &sha) {
            tracing::warn!(task = %e.key, %sha, "could not pre-build snapshot: {err}");
        }
        Ok(sha)
    }

    fn branch_sha(&self, e: &RepoEntry) -> Result<Option<String>, MirrorError> {
        let Ok(r) = git2::Repository::open_bare(&e.dir) else {
            return Ok(None);
        };
        let branch = match e.branch() {
            Some(b) => b,
            None => match r
                .find_reference("HEAD")
                .ok()
                .and_then(|h| h.symbolic_target().map(str::to_string))
            {
                Some(t) => t.trim_start_matches("refs/heads/").to_string(),
                None => return Ok(None),
            },
        };
        Ok(repo::branch_head(&r, &branch).map(|o| o.to_string()))
    }

    /// Blocking fetch of one entry now (ls-remote check first), recording status and updating
    /// the manifest.
    fn sync_now(&self, e: &Arc<RepoEntry>) -> Result<(), MirrorError> {
        let out = refresh::sync_entry(e, self.cfg.owner.as_deref());
        if let Some(change) = &out.manifest {
            self.publisher
                .update(vec![(e.path.clone(), change.clone())])?;
        }
        match out.outcome.error {
            Some(msg) => Err(MirrorError::NotFound(format!(
                "refresh of {} failed: {msg}",
                e.key
            ))),
            None => Ok(()),
        }
    }

    /// Refreshes `e`, then reads `branch`. When the refresh fails but the mirror already has
    /// the branch, the last good copy is used (with a warning), as for configured tasks.
    fn fresh_branch_head(&self, e: &Arc<RepoEntry>, branch: &str) -> Result<String, MirrorError> {
        let synced = self.sync_now(e);
        let head = git2::Repository::open_bare(&e.dir)
            .ok()
            .and_then(|r| repo::branch_head(&r, branch));
        match (head, synced) {
            (Some(sha), Ok(())) => Ok(sha.to_string()),
            (Some(sha), Err(err)) => {
                tracing::warn!(repo = %e.key, "using the last good mirror: {err}");
                Ok(sha.to_string())
            }
            (None, Err(err)) => Err(err),
            (None, Ok(())) => Err(MirrorError::NotFound(format!(
                "branch {branch:?} not found in {}",
                entry::redact(&e.url)
            ))),
        }
    }

    /// Pins a job's `git_repo`/`git_branch` (trigger `discover`). When the URL is that of a
    /// configured or followed repo, its mirror is used (all branches are mirrored). Otherwise
    /// `git_repo` must start with one of `mirror.adhoc_allow` and is fetched into a cache
    /// mirror. Either way the mirror is brought up to date first (only what changed is
    /// fetched). Returns the task key to use with [`Mirrors::snapshot`] and the branch head's
    /// sha. Blocking.
    pub fn pin_adhoc(
        &self,
        git_repo: &str,
        git_branch: &str,
    ) -> Result<(String, String), MirrorError> {
        let url = git_repo.trim();
        if !git2::Reference::is_valid_name(&format!("refs/heads/{git_branch}")) {
            return Err(MirrorError::BadInput(format!(
                "git_branch {git_branch:?} is not a valid branch name"
            )));
        }
        let wanted = entry::normalize_url(url);
        let known = self
            .entries()
            .into_iter()
            .find(|e| e.kind != RepoKind::Adhoc && entry::normalize_url(&e.url) == wanted);
        if let Some(e) = known {
            let sha = self.fresh_branch_head(&e, git_branch)?;
            if let Err(err) = self.snapshot(&e.key, &sha) {
                tracing::warn!(task = %e.key, %sha, "could not pre-build snapshot: {err}");
            }
            return Ok((e.key.clone(), sha));
        }
        let allowed = config::valid_url(url)
            && !url.split('/').any(|c| c == ".." || c == ".")
            && self
                .cfg
                .adhoc_allow
                .iter()
                .any(|p| url.starts_with(p.as_str()));
        if !allowed {
            return Err(MirrorError::NotAllowed(entry::redact(url)));
        }
        let hash = hex::encode(Sha1::digest(url.as_bytes()));
        let key = format!("{ADHOC_PREFIX}{}", &hash[..16]);
        let e = {
            let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
            repos
                .entry(key.clone())
                .or_insert_with(|| {
                    let dir = self.adhoc_root.join(format!("{}.git", &hash[..16]));
                    Arc::new(RepoEntry::new(
                        key.clone(),
                        String::new(),
                        RepoKind::Adhoc,
                        url.to_string(),
                        Some(git_branch.to_string()),
                        dir,
                    ))
                })
                .clone()
        };
        *lock(&e.branch) = Some(git_branch.to_string());
        let sha = self.fresh_branch_head(&e, git_branch)?;
        if let Err(err) = self.snapshot(&key, &sha) {
            tracing::warn!(task = %key, %sha, "could not pre-build snapshot: {err}");
        }
        Ok((key, sha))
    }

    /// Path of the `.tar.gz` of `task` at commit `sha` (full 40 hex), building and caching it
    /// on first use. Works for any commit the mirror has, also after the branch moved on.
    /// Blocking.
    pub fn snapshot(&self, task: &str, sha: &str) -> Result<PathBuf, MirrorError> {
        let oid = snapshot::parse_sha(sha)?;
        let e = self
            .find(task)
            .ok_or_else(|| MirrorError::UnknownTask(task.to_string()))?;
        let out = self.snap_root.join(&e.key).join(format!("{oid}.tar.gz"));
        if out.is_file() {
            return Ok(out);
        }
        let r =
            git2::Repository::open_bare(&e.dir).map_err(MirrorError::git("open mirror", &e.key))?;
        snapshot::build(&r, &e.key, oid, &out)?;
        Ok(out)
    }
}

/// libgit2 waits forever on a silent server by default; a hung upstream would then hold a
/// refresh slot for good. These are process-wide libgit2 settings (the last `open` wins).
fn set_network_timeouts(secs: u64) {
    let ms = i32::try_from(secs.saturating_mul(1000)).unwrap_or(i32::MAX);
    // SAFETY: plain integer options inside libgit2; concurrent fetches only read them.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms.min(30_000));
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
    }
}

/// The ref HEAD of a configured/ad-hoc mirror names.
fn head_ref(e: &RepoEntry) -> String {
    format!(
        "refs/heads/{}",
        e.branch().unwrap_or_else(|| "master".into())
    )
}

/// `taskotron-master mirror refresh [NAME]`: opens the mirrors and refreshes one task (by key)
/// or all of them, once. The caller prints the outcomes and exits non-zero if any has an error.
pub async fn cli_refresh(
    data_dir: &Path,
    cfg: MirrorConfig,
    tasks: Vec<TaskSource>,
    name: Option<&str>,
) -> Result<Vec<RefreshOutcome>, MirrorError> {
    Mirrors::open(data_dir, cfg, tasks)?
        .refresh_named(name)
        .await
}

impl Mirrors {
    /// Refreshes the task mirror `name` (an unknown name is an error, unless the mirror follows
    /// an upstream manifest that may list it), or all of them.
    pub async fn refresh_named(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<RefreshOutcome>, MirrorError> {
        Ok(match name {
            Some(n) => {
                if self.find(n).is_none() && !self.follow.enabled() {
                    return Err(MirrorError::UnknownTask(n.to_string()));
                }
                vec![self.refresh(n).await]
            }
            None => self.refresh_all().await,
        })
    }
}
