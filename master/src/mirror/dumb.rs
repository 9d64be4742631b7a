//! git's "dumb" HTTP protocol, read-only: what a client may GET inside `/mirror/<path>.git/`.
//!
//! The two index files `git update-server-info` would write (`info/refs`,
//! `objects/info/packs`) are generated on the fly from the repo, so fetches never see a stale
//! copy; everything else is a plain file under the repo, limited to `HEAD`, loose objects and
//! pack files. `info/refs` is served as text/plain, which tells a smart client to fall back to
//! the dumb protocol.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use git2::Repository;

/// A request inside a repo, after validation.
#[derive(Debug, PartialEq, Eq)]
pub enum DumbFile {
    /// Generated `info/refs`.
    InfoRefs,
    /// Generated `objects/info/packs`.
    Packs,
    /// A file to send as is (relative to the repo dir), and whether it is immutable (objects).
    File(PathBuf, bool),
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Maps a path inside the repo (`info/refs`, `objects/ab/cdef…`) to what to serve; None
/// for anything else (including `..` tricks, alternates and config).
pub fn classify(rest: &str) -> Option<DumbFile> {
    match rest {
        "info/refs" => return Some(DumbFile::InfoRefs),
        "objects/info/packs" => return Some(DumbFile::Packs),
        "HEAD" => return Some(DumbFile::File(PathBuf::from("HEAD"), false)),
        _ => {}
    }
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["objects", dir, file] if is_hex(dir, 2) && is_hex(file, 38) => {
            Some(DumbFile::File(PathBuf::from(rest), true))
        }
        ["objects", "pack", file] => {
            let stem = file.strip_prefix("pack-")?;
            let (hash, ext) = stem.split_once('.')?;
            ((is_hex(hash, 40) || is_hex(hash, 64)) && matches!(ext, "pack" | "idx"))
                .then(|| DumbFile::File(PathBuf::from(rest), true))
        }
        _ => None,
    }
}

/// `info/refs`: `<oid>\t<ref>` per ref, sorted, with the peeled `^{}` line after annotated tags.
pub fn info_refs(dir: &Path) -> Result<String, git2::Error> {
    let repo = Repository::open_bare(dir)?;
    let mut out = String::new();
    for (name, oid) in super::repo::local_refs(&repo)? {
        let _ = writeln!(out, "{oid}\t{name}");
        if let Ok(tag) = repo.find_tag(oid) {
            if let Ok(peeled) = tag.target().and_then(|t| t.peel(git2::ObjectType::Any)) {
                let _ = writeln!(out, "{}\t{name}^{{}}", peeled.id());
            }
        }
    }
    Ok(out)
}

/// `objects/info/packs`: `P pack-….pack` per pack file, then an empty line.
pub fn packs(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("objects/pack"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("pack-") && n.ends_with(".pack"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for n in names {
        let _ = writeln!(out, "P {n}");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_protocol_files_are_served() {
        assert_eq!(classify("info/refs"), Some(DumbFile::InfoRefs));
        assert_eq!(classify("objects/info/packs"), Some(DumbFile::Packs));
        assert!(matches!(classify("HEAD"), Some(DumbFile::File(_, false))));
        let loose = format!("objects/ab/{}", "c".repeat(38));
        assert!(matches!(classify(&loose), Some(DumbFile::File(_, true))));
        let pack = format!("objects/pack/pack-{}.idx", "0".repeat(40));
        assert!(matches!(classify(&pack), Some(DumbFile::File(_, true))));
        for bad in [
            "config",
            "objects/info/alternates",
            "objects/../config",
            "objects/ab/../../config",
            "objects/pack/pack-x.pack",
            "hooks/post-update",
            "objects/AB/cd",
            "",
        ] {
            assert_eq!(classify(bad), None, "{bad}");
        }
    }
}
