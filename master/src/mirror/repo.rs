//! One bare mirror on disk, driven with libgit2: create it, compare its refs with the remote's
//! (an `ls-remote` style check, cheap when nothing changed), fetch, and describe it the way
//! grok-manifest does (fingerprint, modified, head, description).
//!
//! Everything here blocks; callers run it on `spawn_blocking` threads.

use std::path::Path;

use git2::{AutotagOption, Direction, FetchOptions, FetchPrune, Oid, RemoteCallbacks, Repository};
use sha1::{Digest, Sha1};

use super::error::MirrorError;

/// Refs a configured task mirror copies: branches and tags. Forge-private namespaces such as
/// GitHub's `refs/pull/*` are left out on purpose (they can be huge and no job runs them).
pub const TASK_REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
/// Refs a followed GrokMirror repo copies: everything, like grok-pull's `--mirror=fetch`, so our
/// fingerprint can equal the upstream's.
pub const ALL_REFSPECS: &[&str] = &["+refs/*:refs/*"];

/// Sorted `(refname, target)` pairs, the same lines `git show-ref` prints.
pub type Refs = Vec<(String, Oid)>;

/// Opens the bare repo at `dir`, creating it (and its parents) if needed. `head` is the
/// symbolic ref HEAD should name (`refs/heads/main`); `description` goes to the description
/// file when given.
pub fn open_or_init(
    dir: &Path,
    head: &str,
    description: Option<&str>,
) -> Result<Repository, MirrorError> {
    let key = dir.display().to_string();
    let repo = if dir.join("HEAD").exists() {
        Repository::open_bare(dir).map_err(MirrorError::git("open mirror", &key))?
    } else {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).mkpath(true).no_reinit(false);
        let repo =
            Repository::init_opts(dir, &opts).map_err(MirrorError::git("create mirror", &key))?;
        // Same hygiene as grok-pull's init: no sample hooks, no automatic gc (old pinned commits
        // must stay reachable for snapshots).
        if let Ok(rd) = std::fs::read_dir(dir.join("hooks")) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".sample") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if let Ok(mut cfg) = repo.config() {
            let _ = cfg.set_i32("gc.auto", 0);
        }
        repo
    };
    set_head(&repo, head, &key)?;
    if let Some(d) = description {
        let path = dir.join("description");
        let cur = std::fs::read_to_string(&path).unwrap_or_default();
        if cur.trim() != d {
            std::fs::write(&path, format!("{d}\n")).map_err(MirrorError::io("write", path))?;
        }
    }
    Ok(repo)
}

/// Points HEAD at `head` (a full ref name) unless it already does.
pub fn set_head(repo: &Repository, head: &str, key: &str) -> Result<(), MirrorError> {
    let cur = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|r| r.symbolic_target().map(str::to_string));
    if cur.as_deref() != Some(head) {
        repo.set_head(head)
            .map_err(MirrorError::git("set HEAD of", key))?;
    }
    Ok(())
}

/// All refs under `refs/` (symbolic ones resolved), sorted by name: `git show-ref`.
pub fn local_refs(repo: &Repository) -> Result<Refs, git2::Error> {
    let mut out = Vec::new();
    for r in repo.references()? {
        let r = r?;
        let Some(name) = r.name() else { continue };
        if !name.starts_with("refs/") {
            continue;
        }
        let target = match r.target() {
            Some(t) => t,
            None => match r.resolve().ok().and_then(|r| r.target()) {
                Some(t) => t,
                None => continue,
            },
        };
        out.push((name.to_string(), target));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// GrokMirror fingerprint: sha1 over the `show-ref` lines each followed by "\n".
/// `None` for a repo without refs (grok-manifest leaves those out).
pub fn fingerprint(refs: &Refs) -> Option<String> {
    if refs.is_empty() {
        return None;
    }
    let mut h = Sha1::new();
    for (name, oid) in refs {
        h.update(format!("{oid} {name}\n").as_bytes());
    }
    Some(hex::encode(h.finalize()))
}

/// GrokMirror `modified`: committer time of the newest ref that points at a commit
/// (annotated tags have no committer date in `for-each-ref`, so they do not count).
pub fn modified(repo: &Repository, refs: &Refs) -> i64 {
    refs.iter()
        .filter_map(|(_, oid)| repo.find_commit(*oid).ok())
        .map(|c| c.committer().when().seconds())
        .max()
        .unwrap_or(0)
}

/// The HEAD file's content, stripped (`ref: refs/heads/main`), as grok-manifest publishes it.
pub fn head_line(dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(dir.join("HEAD")).ok()?;
    Some(s.trim().to_string())
}

/// The description file unless it is git's placeholder ("...edit this file...").
pub fn description(dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(dir.join("description")).ok()?;
    let s = s.trim();
    (!s.is_empty() && !s.contains("edit this file")).then(|| s.to_string())
}

fn callbacks<'a>() -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let mut tried_agent = false;
    cb.credentials(move |_url, user, allowed| {
        // ssh remotes: try the agent once; anything else is anonymous (task repos are public).
        if allowed.contains(git2::CredentialType::SSH_KEY) && !tried_agent {
            tried_agent = true;
            return git2::Cred::ssh_key_from_agent(user.unwrap_or("git"));
        }
        Err(git2::Error::from_str(
            "no credentials configured for this remote",
        ))
    });
    cb
}

/// What the remote advertises (`git ls-remote`), limited to refs the refspecs would copy,
/// sorted by name. Peeled `^{}` lines are dropped.
pub fn remote_refs(repo: &Repository, url: &str, refspecs: &[&str]) -> Result<Refs, git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let conn = remote.connect_auth(Direction::Fetch, Some(callbacks()), None)?;
    let all_refs = refspecs.iter().any(|s| s.contains("refs/*:"));
    let mut out: Refs = conn
        .list()?
        .iter()
        .filter(|h| !h.name().ends_with("^{}"))
        .filter(|h| {
            let n = h.name();
            if all_refs {
                n.starts_with("refs/")
            } else {
                n.starts_with("refs/heads/") || n.starts_with("refs/tags/")
            }
        })
        .map(|h| (h.name().to_string(), h.oid()))
        .collect();
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// Refs of the local mirror that the refspecs cover (to compare with [`remote_refs`]).
pub fn covered_local_refs(refs: &Refs, refspecs: &[&str]) -> Refs {
    let all = refspecs.iter().any(|s| s.contains("refs/*:"));
    refs.iter()
        .filter(|(n, _)| all || n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
        .cloned()
        .collect()
}

/// Fetches `refspecs` from `url`, pruning refs the remote no longer has.
pub fn fetch(repo: &Repository, url: &str, refspecs: &[&str]) -> Result<(), git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(callbacks())
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    remote.fetch(refspecs, Some(&mut fo), Some("taskotron mirror fetch"))
}

/// Result of bringing one mirror up to date.
#[derive(Debug, Clone)]
pub struct Synced {
    /// A fetch ran and changed refs.
    pub changed: bool,
    /// The mirror's refs afterwards.
    pub refs: Refs,
}

/// The ls-remote check then, only if refs differ, a fetch. `expected` (follow mode: the
/// upstream fingerprint) replaces the ls-remote check with a fingerprint comparison.
pub fn sync(
    repo: &Repository,
    url: &str,
    refspecs: &[&str],
    expected: Option<&str>,
) -> Result<Synced, git2::Error> {
    let before = local_refs(repo)?;
    let need = match expected {
        Some(fp) => fingerprint(&before).as_deref() != Some(fp),
        None => remote_refs(repo, url, refspecs)? != covered_local_refs(&before, refspecs),
    };
    if !need {
        return Ok(Synced {
            changed: false,
            refs: before,
        });
    }
    fetch(repo, url, refspecs)?;
    let refs = local_refs(repo)?;
    Ok(Synced {
        changed: refs != before,
        refs,
    })
}

/// The commit a branch of the mirror points at.
pub fn branch_head(repo: &Repository, branch: &str) -> Option<Oid> {
    let r = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
    r.peel_to_commit().ok().map(|c| c.id())
}
