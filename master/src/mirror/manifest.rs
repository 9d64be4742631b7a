//! GrokMirror 2.x `manifest.js.gz`: the entry model, reading (gzip or plain, unknown keys
//! ignored) and the published copy at the mirror root.
//!
//! The published manifest lives in memory (served over HTTP) and on disk (for `file://`
//! replicas). Every change rewrites the file atomically (temp file, fsync, rename) and moves
//! `Last-Modified` forward by at least one second, because grok-pull compares it at one-second
//! resolution and would otherwise miss a second change within the same second.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::MirrorError;

/// Largest manifest we accept from an upstream, uncompressed (bounds memory).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// One repository in a GrokMirror manifest (keys as grok-manifest writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Committer time of the newest ref, epoch seconds.
    #[serde(default)]
    pub modified: i64,
    /// sha1 of `git show-ref` output + "\n". Entries without one are skipped by readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// HEAD file content, e.g. `ref: refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Objects borrowed from another repo; always present in grokmirror's output, null here.
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forkgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlinks: Option<Vec<String>>,
}

/// A whole manifest: repo path (`/fedoraqa/rpmlint.git`) to entry.
pub type Manifest = BTreeMap<String, Entry>;

/// Parses manifest bytes, gunzipping when they start with the gzip magic.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Manifest, MirrorError> {
    let bad = |m: String| MirrorError::BadInput(format!("manifest {origin}: {m}"));
    let mut json = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("bad gzip data: {e}")))?;
        if json.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(bad(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
        }
    } else {
        json.extend_from_slice(bytes);
    }
    let m: Manifest = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("expected a JSON object of repo path -> info: {e}")))?;
    for path in m.keys() {
        if !valid_repo_path(path) {
            return Err(bad(format!(
                "bad repo path {path:?} (expected /name/….git, no '..')"
            )));
        }
    }
    Ok(m)
}

/// Reads a manifest file (gzip or plain).
pub fn read_file(path: &Path) -> Result<Manifest, MirrorError> {
    let bytes = std::fs::read(path).map_err(MirrorError::io("read manifest", path))?;
    parse(&bytes, &path.display().to_string())
}

/// `/a/b.git`: absolute, ends in `.git`, no empty/`.`/`..` components, safe characters.
pub fn valid_repo_path(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    p.ends_with(".git")
        && p.len() <= 1024
        && rest.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && !c.starts_with('.')
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-+~@".contains(ch))
        })
}

/// Serializes and gzips a manifest (compact JSON like grok-manifest without `-y`).
pub fn encode(m: &Manifest) -> Vec<u8> {
    let json = serde_json::to_vec(m).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(&json);
    gz.finish().unwrap_or_default()
}

struct Published {
    entries: Manifest,
    gz: bytes::Bytes,
    last_modified: SystemTime,
}

/// The manifest we publish at `<mirror root>/manifest.js.gz` and over HTTP.
pub struct Publisher {
    file: PathBuf,
    inner: Mutex<Published>,
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let s = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(s)
}

impl Publisher {
    /// Starts from the manifest already in `file` (keeping its mtime as Last-Modified, so a
    /// restart does not make replicas refetch), or writes an empty one.
    pub fn open(file: PathBuf) -> Result<Publisher, MirrorError> {
        let existing = read_file(&file).ok();
        let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        let bytes = std::fs::read(&file).ok();
        if let (Some(entries), Some(mtime), Some(bytes)) = (existing, mtime, bytes) {
            return Ok(Publisher {
                file,
                inner: Mutex::new(Published {
                    entries,
                    gz: bytes.into(),
                    last_modified: whole_seconds(mtime),
                }),
            });
        }
        let entries = Manifest::new();
        let p = Publisher {
            file,
            inner: Mutex::new(Published {
                gz: encode(&entries).into(),
                entries,
                last_modified: UNIX_EPOCH,
            }),
        };
        {
            let mut g = p.lock();
            p.write(&mut g)?;
        }
        Ok(p)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `(path, Some(entry))` inserts/updates and `(path, None)` removals; rewrites the
    /// file only when something differs. Returns whether it did.
    pub fn update(&self, changes: Vec<(String, Option<Entry>)>) -> Result<bool, MirrorError> {
        let mut g = self.lock();
        let mut changed = false;
        for (path, e) in changes {
            match e {
                Some(e) => {
                    if g.entries.get(&path) != Some(&e) {
                        g.entries.insert(path, e);
                        changed = true;
                    }
                }
                None => changed |= g.entries.remove(&path).is_some(),
            }
        }
        if changed {
            g.gz = encode(&g.entries).into();
            self.write(&mut g)?;
        }
        Ok(changed)
    }

    /// Writes the gz bytes atomically and stamps a new, strictly later Last-Modified.
    fn write(&self, g: &mut Published) -> Result<(), MirrorError> {
        let now = whole_seconds(SystemTime::now());
        let min = g.last_modified + Duration::from_secs(1);
        g.last_modified = if now >= min { now } else { min };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(MirrorError::io("create", dir))?;
        let tmp = dir.join(format!(".manifest.js.gz.{}.tmp", std::process::id()));
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&g.gz)?;
            f.set_modified(g.last_modified)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(MirrorError::Io {
                what: "write manifest",
                path: self.file.clone(),
                source: e,
            });
        }
        Ok(())
    }

    /// The gzipped manifest and its Last-Modified time.
    pub fn current(&self) -> (bytes::Bytes, SystemTime) {
        let g = self.lock();
        (g.gz.clone(), g.last_modified)
    }

    /// A copy of the entries.
    pub fn entries(&self) -> Manifest {
        self.lock().entries.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_grok_manifest_fixture() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/grokmirror");
        let m = read_file(&root.join("manifest.js.gz")).unwrap();
        let e = &m["/tasks/rpmlint.git"];
        assert_eq!(
            e.fingerprint.as_deref(),
            Some("c08d092ed78eee98a490f0d64696c54381b66d0f")
        );
        assert_eq!(e.head.as_deref(), Some("ref: refs/heads/main"));
        assert_eq!(
            e.symlinks.as_deref(),
            Some(&["/rpmlint-alias.git".to_string()][..])
        );
        assert_eq!(m["/tasks/abicheck.git"].modified, 1706933106);
        let pretty = read_file(&root.join("manifest.pretty.js")).unwrap();
        assert_eq!(pretty, m);
    }

    #[test]
    fn fingerprint_matches_fixture_show_ref() {
        let refs = vec![
            (
                "refs/heads/main".to_string(),
                git2::Oid::from_str("64de76fe264e16ed9e289b2248710f0bd48b7b9b").unwrap(),
            ),
            (
                "refs/tags/v1.0".to_string(),
                git2::Oid::from_str("c8b27a7570850e621be26906dada1b0ad0a36076").unwrap(),
            ),
        ];
        assert_eq!(
            super::super::repo::fingerprint(&refs).as_deref(),
            Some("c08d092ed78eee98a490f0d64696c54381b66d0f")
        );
    }

    #[test]
    fn rejects_bad_paths_and_json() {
        assert!(parse(br#"{"/../x.git": {}}"#, "t").is_err());
        assert!(parse(b"[1]", "t")
            .unwrap_err()
            .to_string()
            .contains("manifest t"));
        assert!(valid_repo_path("/fedoraqa/task-rpmlint.git"));
        assert!(!valid_repo_path("fedoraqa/x.git"));
        assert!(!valid_repo_path("/a//x.git"));
    }

    #[test]
    fn publisher_bumps_last_modified_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("manifest.js.gz");
        let p = Publisher::open(f.clone()).unwrap();
        let (_, t0) = p.current();
        let e = Entry {
            modified: 1,
            fingerprint: Some("a".repeat(40)),
            head: None,
            owner: None,
            description: None,
            reference: None,
            forkgroup: None,
            symlinks: None,
        };
        assert!(p
            .update(vec![("/a/b.git".into(), Some(e.clone()))])
            .unwrap());
        let (_, t1) = p.current();
        assert!(t1 > t0);
        assert!(!p.update(vec![("/a/b.git".into(), Some(e))]).unwrap());
        assert_eq!(p.current().1, t1);
        assert_eq!(read_file(&f).unwrap().len(), 1);
        assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), t1);
        // Reopening keeps the entries and the file's Last-Modified.
        let p2 = Publisher::open(f).unwrap();
        assert_eq!(p2.current().1, t1);
        assert_eq!(p2.entries(), p.entries());
    }
}
