//! Master ends of the file transfers: serving `download_file` reads from a local file, and
//! receiving an `upload_directory` tar stream into a temp file, then unpacking it safely
//! (no absolute paths, no `..`) into the destination directory.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest block we hand out for one `update_read_file`, whatever length the worker asks for.
const MAX_READ: u64 = 1 << 20;

pub enum Transfer {
    Download {
        file: File,
    },
    Upload {
        tmp: PathBuf,
        file: Option<File>,
        size: u64,
        max: u64,
        dest: PathBuf,
        gz: bool,
    },
}

impl Transfer {
    pub fn download(path: &Path) -> Result<Transfer, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Transfer::Download { file })
    }

    /// An upload into `dest` (replaced when the stream is complete), staged next to it.
    pub fn upload(dest: PathBuf, max: u64, gz: bool) -> Result<Transfer, String> {
        let parent = dest
            .parent()
            .ok_or("upload destination has no parent")?
            .to_path_buf();
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("upload");
        let tmp = parent.join(format!(".{name}.{}.tar.part", rand_suffix()));
        let file =
            File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        Ok(Transfer::Upload {
            tmp,
            file: Some(file),
            size: 0,
            max,
            dest,
            gz,
        })
    }

    /// Reads the next block of a download; an empty vector means end of file.
    pub fn read(&mut self, length: u64) -> Result<Vec<u8>, String> {
        match self {
            Transfer::Download { file } => {
                let mut buf = vec![0u8; length.min(MAX_READ) as usize];
                let mut n = 0;
                while n < buf.len() {
                    match file.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) => return Err(format!("read error: {e}")),
                    }
                }
                buf.truncate(n);
                Ok(buf)
            }
            Transfer::Upload { .. } => Err("not a download".into()),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            Transfer::Upload {
                file: Some(file),
                size,
                max,
                ..
            } => {
                *size += data.len() as u64;
                if *size > *max {
                    return Err(format!("upload exceeds the limit of {max} bytes"));
                }
                file.write_all(data)
                    .map_err(|e| format!("write error: {e}"))
            }
            _ => Err("not an upload in progress".into()),
        }
    }

    /// Unpacks the received tar stream into the destination (replacing what was there).
    pub async fn unpack(&mut self) -> Result<(), String> {
        let Transfer::Upload {
            tmp,
            file,
            dest,
            gz,
            max,
            ..
        } = self
        else {
            return Err("not an upload".into());
        };
        let Some(f) = file.take() else {
            return Err("upload already unpacked".into());
        };
        drop(f);
        let (tmp, dest, gz, max) = (tmp.clone(), dest.clone(), *gz, *max);
        tokio::task::spawn_blocking(move || unpack_tar(&tmp, &dest, gz, max))
            .await
            .map_err(|e| format!("unpack task failed: {e}"))?
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Transfer::Upload { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A random name suffix, so concurrent or leftover staging files never collide.
fn rand_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Unpacks an uploaded tar into a staging directory next to `dest`, then swaps it in.
///
/// The worker is not trusted: an entry whose path has `..` fails the upload (a leading `/` is
/// dropped, as tar does);
/// only regular files and directories are written (symlinks, hard links, devices and FIFOs
/// are skipped with a warning, so nothing can point or write outside the artifacts tree);
/// and the files may hold `max` bytes in all, however well the stream compressed.
fn unpack_tar(tmp: &Path, dest: &Path, gz: bool, max: u64) -> Result<(), String> {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let staging = dest.with_file_name(format!(".{name}.{}.unpacking", rand_suffix()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let res = unpack_entries(tmp, &staging, gz, max);
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&staging, dest)
        .map_err(|e| format!("cannot move artifacts into {}: {e}", dest.display()))
}

fn unpack_entries(tmp: &Path, staging: &Path, gz: bool, max: u64) -> Result<(), String> {
    use std::path::Component;
    use tar::EntryType;

    let bad = |e: std::io::Error| format!("cannot unpack the uploaded directory: {e}");
    let file = File::open(tmp).map_err(|e| format!("cannot reopen upload: {e}"))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let mut total: u64 = 0;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        // A leading `/` is dropped, as tar does (buildbot-worker's tar has a `/` entry for the
        // directory itself); `..` anywhere fails the upload.
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!(
                "uploaded directory: entry {:?} leaves the directory (..)",
                path.display().to_string()
            ));
        }
        if !path.components().any(|c| matches!(c, Component::Normal(_))) {
            continue; // the directory itself
        }
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            other => {
                tracing::warn!(entry = %path.display(), kind = ?other,
                    "uploaded directory: skipping an entry that is not a file or directory");
                continue;
            }
        }
        total = total.saturating_add(entry.size());
        if total > max {
            return Err(format!(
                "uploaded directory holds more than {max} bytes (build.max_artifacts_bytes)"
            ));
        }
        // unpack_in also refuses paths that would leave `staging` through a symlinked parent.
        if !entry.unpack_in(staging).map_err(bad)? {
            return Err(format!(
                "uploaded directory: entry {:?} would land outside it",
                path.display().to_string()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_roundtrip_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::fast());
            let mut b = tar::Builder::new(gz);
            let data = b"hello\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, "taskotron/taskotron.log", &data[..])
                .unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let dest = dir.path().join("artifacts/u1");
        let mut t = Transfer::upload(dest.clone(), 1 << 20, true).unwrap();
        t.write(&buf).unwrap();
        t.unpack().await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("taskotron/taskotron.log")).unwrap(),
            "hello\n"
        );

        let mut t = Transfer::upload(dir.path().join("artifacts/u2"), 4, true).unwrap();
        assert!(t.write(&buf).unwrap_err().contains("limit"));
    }

    /// A tar written byte by byte, so that names tar::Builder refuses (`..`, absolute) can be
    /// sent, as a malicious worker would.
    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_old();
            {
                let old = h.as_old_mut();
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    /// Uploads `tar` (not gzipped) into `<root>/artifacts/u`; returns the unpack result.
    async fn upload(root: &Path, tar: &[u8], max: u64) -> Result<(), String> {
        let mut t = Transfer::upload(root.join("artifacts/u"), max, false).unwrap();
        t.write(tar)?;
        t.unpack().await
    }

    /// Every file under `dir`, relative.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = vec![];
        for e in walk(dir) {
            out.push(e.strip_prefix(dir).unwrap().display().to_string());
        }
        out.sort();
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = vec![];
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&p));
            }
        }
        out
    }

    use tar::EntryType as K;

    #[tokio::test]
    async fn dot_dot_entries_fail_the_upload_and_write_nothing() {
        for name in ["../evil", "a/../../evil", "/../evil"] {
            let dir = tempfile::tempdir().unwrap();
            let tar = raw_tar(&[
                ("ok.txt", K::Regular, "", b"ok"),
                (name, K::Regular, "", b"x"),
            ]);
            let e = upload(dir.path(), &tar, 1 << 20).await.unwrap_err();
            assert!(e.contains("leaves the directory"), "{name}: {e}");
            assert_eq!(files(dir.path()), vec!["artifacts".to_string()], "{name}");
        }
    }

    #[tokio::test]
    async fn absolute_entries_land_inside() {
        let dir = tempfile::tempdir().unwrap();
        let abs = dir.path().join("abs-target");
        let name = format!("{}/x", abs.display());
        let tar = raw_tar(&[("/", K::Directory, "", b""), (&name, K::Regular, "", b"x")]);
        upload(dir.path(), &tar, 1 << 20).await.unwrap();
        assert!(!abs.exists(), "nothing written at the absolute path");
        let inside = dir
            .path()
            .join("artifacts/u")
            .join(name.trim_start_matches('/'));
        assert_eq!(std::fs::read_to_string(inside).unwrap(), "x");
    }

    #[tokio::test]
    async fn links_and_special_files_are_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let target = outside.display().to_string();
        let tar = raw_tar(&[
            ("sym", K::Symlink, &target, b""),
            // A file "through" the symlink: lands in a real directory inside, not outside.
            ("sym/planted", K::Regular, "", b"x"),
            ("hard", K::Link, "/etc/passwd", b""),
            ("fifo", K::Fifo, "", b""),
            ("dev", K::Char, "", b""),
            ("real.txt", K::Regular, "", b"ok"),
        ]);
        upload(dir.path(), &tar, 1 << 20).await.unwrap();
        let dest = dir.path().join("artifacts/u");
        assert_eq!(files(&dest), vec!["real.txt", "sym", "sym/planted"]);
        assert!(!std::fs::symlink_metadata(dest.join("sym"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            files(&outside),
            Vec::<String>::new(),
            "nothing written outside"
        );
    }

    #[tokio::test]
    async fn a_gzip_bomb_stops_at_the_artifacts_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::best());
            let mut b = tar::Builder::new(gz);
            let zeros = vec![0u8; 8 << 20];
            let mut h = tar::Header::new_gnu();
            h.set_size(zeros.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, "zeros", &zeros[..]).unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let max = 1 << 20;
        assert!((buf.len() as u64) < max, "the stream itself is small");
        let mut t = Transfer::upload(dir.path().join("artifacts/u"), max, true).unwrap();
        t.write(&buf).unwrap();
        let e = t.unpack().await.unwrap_err();
        assert!(e.contains("max_artifacts_bytes"), "{e}");
        drop(t);
        assert_eq!(files(&dir.path().join("artifacts")), Vec::<String>::new());
    }
}
