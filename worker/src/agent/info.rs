//! The `get_worker_info` answer, with the same keys as buildbot-worker 4.3: every file in
//! `BASEDIR/info/` (`admin`, `host`, `arch`, ...), `os_*` from `/etc/os-release`, `environ`,
//! `system`, `basedir`, `numcpus`, `version`, `worker_commands`, `delete_leftover_dirs`.

use std::collections::BTreeMap;
use std::path::Path;

use taskotron_common::protocol::{Value, WorkerInfo, COMMAND_VERSION, WORKER_COMMANDS};

use super::config::WorkerConfig;

/// Parses `/etc/os-release` lines `KEY=VALUE` (quotes removed) into `os_<key>` entries.
pub fn os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            if k.is_empty() || k.starts_with('#') {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((format!("os_{}", k.to_lowercase()), v.to_string()))
        })
        .collect()
}

pub fn collect(basedir: &Path, cfg: &WorkerConfig) -> WorkerInfo {
    let mut extra = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(basedir.join("info")) {
        for entry in rd.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                extra.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    Value::from(text),
                );
            }
        }
    }
    let osr = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    for (k, v) in os_release(&osr) {
        extra.entry(k).or_insert(Value::from(v));
    }
    WorkerInfo {
        basedir: basedir.display().to_string(),
        system: "posix".into(),
        numcpus: cfg
            .numcpus
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64)),
        version: env!("CARGO_PKG_VERSION").into(),
        worker_commands: WORKER_COMMANDS
            .iter()
            .map(|c| (c.to_string(), COMMAND_VERSION.to_string()))
            .collect(),
        delete_leftover_dirs: cfg.delete_leftover_dirs,
        environ: std::env::vars().collect(),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_keys() {
        let m = os_release("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n# c\n\n");
        assert_eq!(m["os_name"], "Debian GNU/Linux");
        assert_eq!(m["os_version_id"], "12");
        assert_eq!(m["os_id"], "debian");
        assert_eq!(m.len(), 3);
    }
}
