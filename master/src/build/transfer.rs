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
            ..
        } = self
        else {
            return Err("not an upload".into());
        };
        let Some(f) = file.take() else {
            return Err("upload already unpacked".into());
        };
        drop(f);
        let (tmp, dest, gz) = (tmp.clone(), dest.clone(), *gz);
        tokio::task::spawn_blocking(move || unpack_tar(&tmp, &dest, gz))
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

fn unpack_tar(tmp: &Path, dest: &Path, gz: bool) -> Result<(), String> {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let staging = dest.with_file_name(format!(".{name}.{}.unpacking", rand_suffix()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let file = File::open(tmp).map_err(|e| format!("cannot reopen upload: {e}"))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    // tar's unpack() refuses entries that would land outside the target directory.
    let res = archive
        .unpack(&staging)
        .map_err(|e| format!("cannot unpack the uploaded directory: {e}"));
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&staging, dest)
        .map_err(|e| format!("cannot move artifacts into {}: {e}", dest.display()))
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
}
