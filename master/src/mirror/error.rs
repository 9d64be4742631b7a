//! The mirror's error type. Each variant's message names the repository or file involved.

use std::path::PathBuf;

/// Everything that can go wrong in the mirror.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Bad `mirror:`/`tasks:` configuration; the message names the field.
    #[error("config: {0}")]
    Config(String),
    /// No configured, followed or ad-hoc task of that name.
    #[error("unknown task {0:?} (not configured and not in the followed manifest)")]
    UnknownTask(String),
    /// An ad-hoc repository outside `mirror.adhoc_allow`.
    #[error("git repo {0:?} is not allowed: it matches no mirror.adhoc_allow prefix")]
    NotAllowed(String),
    /// A sha/branch that the mirror does not have.
    #[error("{0}")]
    NotFound(String),
    /// Malformed input (sha, branch name, manifest).
    #[error("{0}")]
    BadInput(String),
    /// A libgit2 failure, with the repository it happened in.
    #[error("{what} {repo}: {source}")]
    Git {
        what: &'static str,
        repo: String,
        #[source]
        source: git2::Error,
    },
    /// A file-system failure, with the path.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Fetching the upstream manifest failed.
    #[error("upstream manifest {url}: {msg}")]
    Upstream { url: String, msg: String },
}

impl MirrorError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| MirrorError::Io { what, path, source }
    }

    pub(crate) fn git(
        what: &'static str,
        repo: impl Into<String>,
    ) -> impl FnOnce(git2::Error) -> Self {
        let repo = repo.into();
        move |source| MirrorError::Git { what, repo, source }
    }
}
