//! Follow mode: mirror every repo an upstream GrokMirror manifest lists, like `grok-pull`.
//!
//! Each pass fetches the upstream manifest (`If-Modified-Since` over HTTP, mtime for
//! `file://`), keeps the paths that match `include` and not `exclude` (fnmatch-style globs,
//! `*` crosses `/` as in Python's fnmatch), and records each repo's upstream fingerprint. The
//! refresh pass then fetches only the repos whose local fingerprint differs. Repos that vanish
//! upstream are kept (no purge): the last good copy keeps serving.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::config::MirrorConfig;
use super::entry::{lock, RepoKind};
use super::error::MirrorError;
use super::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use super::Mirrors;

/// Follow-mode settings and the state of the last manifest fetch.
pub struct Follower {
    url: Option<String>,
    site: Option<String>,
    include: GlobSet,
    exclude: GlobSet,
    /// `Last-Modified` of the last 200 (HTTP) or the file's mtime (file://).
    last_http: Mutex<Option<String>>,
    last_mtime: Mutex<Option<SystemTime>>,
    client: reqwest::Client,
}

fn globset(globs: &[String], field: &str) -> Result<GlobSet, MirrorError> {
    let mut b = GlobSetBuilder::new();
    for (i, g) in globs.iter().enumerate() {
        let glob = Glob::new(g).map_err(|e| {
            MirrorError::Config(format!("mirror.{field}[{i}]: bad glob {g:?}: {e}"))
        })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| MirrorError::Config(format!("mirror.{field}: {e}")))
}

impl Follower {
    pub fn new(cfg: &MirrorConfig) -> Result<Follower, MirrorError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("taskotron-master/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                MirrorError::Config(format!("mirror.upstream_manifest: HTTP client: {e}"))
            })?;
        Ok(Follower {
            url: cfg.upstream_manifest.clone(),
            site: cfg.upstream_site(),
            include: globset(&cfg.include, "include")?,
            exclude: globset(&cfg.exclude, "exclude")?,
            last_http: Mutex::new(None),
            last_mtime: Mutex::new(None),
            client,
        })
    }

    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Clone base that manifest paths are appended to.
    pub fn site(&self) -> Option<&str> {
        self.site.as_deref()
    }

    /// Whether a manifest path passes include/exclude.
    pub fn wanted(&self, path: &str) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// The upstream manifest, or None when it has not changed since the last fetch.
    pub async fn fetch(&self) -> Result<Option<Manifest>, MirrorError> {
        let Some(url) = self.url.as_deref() else {
            return Ok(None);
        };
        let up = |msg: String| MirrorError::Upstream {
            url: url.to_string(),
            msg,
        };
        if let Some(path) = url.strip_prefix("file://") {
            let path = std::path::PathBuf::from(path);
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| up(e.to_string()))?;
            if *lock(&self.last_mtime) == Some(mtime) {
                return Ok(None);
            }
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| up(e.to_string()))?;
            let m = manifest::parse(&bytes, url)?;
            *lock(&self.last_mtime) = Some(mtime);
            return Ok(Some(m));
        }
        let mut req = self.client.get(url);
        if let Some(lm) = lock(&self.last_http).clone() {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        let mut resp = req.send().await.map_err(|e| up(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(up(format!("HTTP {}", resp.status())));
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| up(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(up(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
            }
        }
        let m = manifest::parse(&body, url)?;
        *lock(&self.last_http) = last_modified;
        Ok(Some(m))
    }
}

impl Mirrors {
    /// Reads the upstream manifest and starts tracking/updates the wanted repos. Refuses an
    /// empty manifest (as grok-pull does) so a broken upstream cannot look like "no repos".
    pub(crate) async fn follow_pass(&self) -> Result<usize, MirrorError> {
        let Some(m) = self.follow.fetch().await? else {
            return Ok(0);
        };
        if m.is_empty() {
            return Err(MirrorError::Upstream {
                url: self.cfg.upstream_manifest.clone().unwrap_or_default(),
                msg: "the manifest is empty; refusing it".into(),
            });
        }
        let mut n = 0;
        for (path, entry) in m {
            if entry.fingerprint.is_none() || !self.follow.wanted(&path) {
                continue;
            }
            if let Some(e) = self.add_followed(&path, None) {
                if e.kind == RepoKind::Followed {
                    *lock(&e.upstream) = Some(entry);
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
