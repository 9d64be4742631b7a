//! Task snapshots: a `.tar.gz` of a commit's tree with the task's files at the top level, built
//! from the mirror's objects (no checkout) and cached by sha, so a pinned job gets exactly the
//! commit it was submitted with even after the branch moved on.
//!
//! The archive is deterministic: entries in tree order, mtime = the commit's committer time,
//! modes 0644/0755, symlinks kept as symlinks, submodules left out.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::error::MirrorError;

/// Parses a full 40-hex commit id (pins are always full shas).
pub fn parse_sha(sha: &str) -> Result<Oid, MirrorError> {
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(MirrorError::BadInput(format!(
            "{sha:?} is not a full 40-hex commit sha"
        )));
    }
    Oid::from_str(&sha.to_ascii_lowercase())
        .map_err(|e| MirrorError::BadInput(format!("sha {sha:?}: {e}")))
}

/// Writes the archive of `commit` to `out` (atomically: temp file, then rename).
pub fn build(repo: &Repository, key: &str, commit: Oid, out: &Path) -> Result<(), MirrorError> {
    let commit = repo.find_commit(commit).map_err(|_| {
        MirrorError::NotFound(format!("commit {commit} not found in the mirror of {key}"))
    })?;
    let tree = commit
        .tree()
        .map_err(MirrorError::git("read tree of", key))?;
    let mtime = commit.committer().when().seconds().max(0) as u64;

    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(MirrorError::io("create", dir))?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}.{n}.tmp", commit.id(), std::process::id()));
    let res = write_archive(repo, key, &tree, mtime, &tmp)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(MirrorError::io("write snapshot", out)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn write_archive(
    repo: &Repository,
    key: &str,
    tree: &git2::Tree,
    mtime: u64,
    out: &Path,
) -> Result<(), MirrorError> {
    let file = std::fs::File::create(out).map_err(MirrorError::io("create", out))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);

    let mut failure: Option<MirrorError> = None;
    tree.walk(TreeWalkMode::PreOrder, |root, entry| {
        let Some(name) = entry.name() else {
            return TreeWalkResult::Skip;
        };
        let path = format!("{root}{name}");
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        let res = match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Tree), _) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            (Some(ObjectType::Blob), mode) => {
                let blob = match repo.find_blob(entry.id()) {
                    Ok(b) => b,
                    Err(e) => {
                        failure = Some(MirrorError::git("read blob of", key)(e));
                        return TreeWalkResult::Abort;
                    }
                };
                if mode == 0o120000 {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    tar.append_link(&mut header, &path, target)
                } else {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
                    header.set_size(blob.content().len() as u64);
                    tar.append_data(&mut header, &path, blob.content())
                }
            }
            // Submodule commits (gitlinks) have no content here.
            _ => return TreeWalkResult::Skip,
        };
        if let Err(e) = res {
            failure = Some(MirrorError::io("write snapshot", out)(e));
            return TreeWalkResult::Abort;
        }
        TreeWalkResult::Ok
    })
    .ok();
    if let Some(e) = failure {
        return Err(e);
    }
    let gz = tar
        .into_inner()
        .map_err(MirrorError::io("write snapshot", out))?;
    let f = gz
        .finish()
        .map_err(MirrorError::io("write snapshot", out))?;
    f.sync_all().map_err(MirrorError::io("write snapshot", out))
}
