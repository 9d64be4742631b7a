//! One owner for `<data_dir>/mirror`: the running master, or else one offline
//! `taskotron-master mirror refresh`.
//!
//! The master serves `manifest.js.gz` from memory and decides what changed by comparing with
//! what it published; a second process writing the bare repos and the manifest behind its back
//! left replicas stale (grok-pull saw the old manifest). So whoever works on the mirror holds
//! an exclusive `flock` on `<data_dir>/mirror/owner.lock` (released by the kernel when the
//! process dies, so a crash never leaves it stuck), and writes its pid into the file for the
//! error messages. `mirror refresh` asks the running master instead when the lock is taken.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
}

/// The lock file of a data dir.
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("mirror").join("owner.lock")
}

/// Takes the lock if it is free. `Ok(None)`: another process holds it.
pub fn try_lock(data_dir: &Path, role: &str) -> std::io::Result<Option<OwnerLock>> {
    let path = lock_path(data_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // SAFETY: flock(2) on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(None),
            _ => Err(err),
        };
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{} {role}", std::process::id())?;
    file.flush()?;
    Ok(Some(OwnerLock { _file: file }))
}

/// Takes the lock, waiting up to `patience` for a short-lived holder (an offline refresh).
pub fn lock_waiting(data_dir: &Path, role: &str, patience: Duration) -> anyhow::Result<OwnerLock> {
    let deadline = Instant::now() + patience;
    let mut told = false;
    loop {
        if let Some(lock) = try_lock(data_dir, role)? {
            return Ok(lock);
        }
        let who = holder(data_dir);
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{}: held by {who}; another process owns this data_dir's mirror (two masters on one data_dir?)",
                lock_path(data_dir).display()
            );
        }
        if !told {
            tracing::warn!(holder = %who, "waiting for the mirror lock");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Who holds the lock, as written in it ("1234 master"), for messages.
pub fn holder(data_dir: &Path) -> String {
    let mut s = String::new();
    let _ = File::open(lock_path(data_dir)).and_then(|mut f| f.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() {
        "another process".into()
    } else {
        format!("pid {s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = try_lock(dir.path(), "master").unwrap().expect("free");
        // flock locks belong to the open file description: a second open is refused.
        assert!(try_lock(dir.path(), "mirror refresh").unwrap().is_none());
        assert_eq!(
            holder(dir.path()),
            format!("pid {} master", std::process::id())
        );
        let err = lock_waiting(dir.path(), "x", Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("two masters"), "{err}");
        drop(a);
        assert!(try_lock(dir.path(), "mirror refresh").unwrap().is_some());
    }
}
