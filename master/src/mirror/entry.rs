//! One mirrored repository as the service tracks it: where it comes from, where it lives, and
//! what happened at its last refresh (for logs, the webhook reply and the UI).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::repo;

/// Why a repository is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    /// Listed in the master's `tasks:` config.
    Configured,
    /// Listed in the followed upstream GrokMirror manifest.
    Followed,
    /// Fetched on demand for a job's `git_repo` (not published in our manifest).
    Adhoc,
}

/// Per-repository refresh state, as shown to operators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStatus {
    /// Task key: the task name, `namespace/name` for followed repos, `_adhoc_<hash>`.
    pub name: String,
    /// Manifest path (`/fedoraqa/rpmlint.git`); empty for ad-hoc mirrors.
    pub path: String,
    /// Where it is fetched from (password removed).
    pub url: String,
    pub kind: Option<RepoKind>,
    /// The branch jobs run (configured/ad-hoc) or HEAD's branch (followed).
    pub branch: Option<String>,
    /// sha of that branch in the mirror.
    pub head: Option<String>,
    /// Epoch seconds of the last refresh attempt.
    pub last_refresh: Option<i64>,
    /// Epoch seconds of the last refresh that changed refs.
    pub last_change: Option<i64>,
    /// Error of the last attempt; None when it succeeded.
    pub last_error: Option<String>,
}

/// A repository the service mirrors.
pub struct RepoEntry {
    pub key: String,
    pub path: String,
    pub kind: RepoKind,
    pub url: String,
    /// Branch HEAD should name; None for followed repos (HEAD comes from the manifest).
    pub branch: Mutex<Option<String>>,
    pub dir: PathBuf,
    /// Follow mode: the upstream manifest's fingerprint and metadata for this repo.
    pub upstream: Mutex<Option<super::manifest::Entry>>,
    /// Serialises fetches into this repo (the periodic pass, webhooks, ad-hoc pins).
    pub lock: Mutex<()>,
    pub status: Mutex<RepoStatus>,
}

pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RepoEntry {
    pub fn new(
        key: String,
        path: String,
        kind: RepoKind,
        url: String,
        branch: Option<String>,
        dir: PathBuf,
    ) -> Self {
        let status = RepoStatus {
            name: key.clone(),
            path: path.clone(),
            url: redact(&url),
            kind: Some(kind),
            branch: branch.clone(),
            ..Default::default()
        };
        RepoEntry {
            key,
            path,
            kind,
            url,
            branch: Mutex::new(branch),
            dir,
            upstream: Mutex::new(None),
            lock: Mutex::new(()),
            status: Mutex::new(status),
        }
    }

    pub fn refspecs(&self) -> &'static [&'static str] {
        match self.kind {
            RepoKind::Followed => repo::ALL_REFSPECS,
            _ => repo::TASK_REFSPECS,
        }
    }

    pub fn branch(&self) -> Option<String> {
        lock(&self.branch).clone()
    }

    pub fn status(&self) -> RepoStatus {
        lock(&self.status).clone()
    }

    pub fn record(&self, f: impl FnOnce(&mut RepoStatus)) {
        f(&mut lock(&self.status))
    }
}

/// Locks a std mutex, ignoring poisoning (the data is plain status).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `https://user:secret@host/x` -> `https://user@host/x`, so tokens never reach logs or the UI.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, tail) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((userinfo, host)) = auth.rsplit_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}@{host}{tail}");
        }
    }
    url.to_string()
}

/// Canonical form for matching webhook URLs to mirrors: no scheme, no userinfo, scp-like
/// `host:path` as `host/path`, lowercase host, no trailing `/` or `.git`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_string(),
        None if !url.starts_with('/') => match url.split_once(':') {
            Some((host, path)) => format!("{host}/{}", path.trim_start_matches('/')),
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest.as_str(), ""),
    };
    let host = host
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(host)
        .to_ascii_lowercase();
    let mut s = format!("{host}{path}");
    while s.ends_with('/') {
        s.pop();
    }
    if let Some(t) = s.strip_suffix(".git") {
        s = t.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("https://u:tok@h/x.git"), "https://u@h/x.git");
        assert_eq!(redact("https://h/x.git"), "https://h/x.git");
        assert_eq!(redact("/srv/x"), "/srv/x");
    }

    #[test]
    fn normalizes_forge_urls() {
        let n = normalize_url("https://GitHub.com/fedoraqa/rpmlint.git");
        assert_eq!(n, "github.com/fedoraqa/rpmlint");
        assert_eq!(normalize_url("git@github.com:fedoraqa/rpmlint.git"), n);
        assert_eq!(normalize_url("ssh://git@github.com/fedoraqa/rpmlint"), n);
        assert_eq!(normalize_url("https://github.com/fedoraqa/rpmlint/"), n);
        assert_eq!(normalize_url("file:///srv/git/a.git"), "/srv/git/a");
        assert_eq!(normalize_url("/srv/git/a.git"), "/srv/git/a");
    }
}
