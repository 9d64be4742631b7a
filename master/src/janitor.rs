//! The janitor: deletes the step log content and the artifacts of jobs that finished longer ago
//! than `retention.logs_days` / `retention.artifacts_days` (off by default, like Buildbot's
//! `JanitorConfigurator`). It runs in the master every `retention.interval_hours`, and once on
//! demand with `taskotron-master prune [--dry-run]`.
//!
//! Work goes in batches: the database lock is held only to list a batch and to mark it done,
//! never while files are deleted, so dispatch is not held up by a large first pass. Running
//! builds are never touched (only builds with an end time are past a horizon). A file that is
//! already gone counts as deleted; any other deletion error stops the pass with the file named,
//! leaving that batch unmarked so the next pass retries it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::db::{now, Db};
use crate::state::Master;

/// Rows listed (and files deleted) per database round trip.
const BATCH: usize = 500;

/// What one pass deleted (or, with `dry_run`, would delete).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub logs: usize,
    pub log_bytes: u64,
    pub artifacts: usize,
    pub artifact_bytes: u64,
}

/// One janitor pass at time `now` (seconds since the epoch).
pub fn prune(db: &Db, cfg: &Config, now: i64, dry_run: bool) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let horizon = |days: f64| now - (days * 86_400.0) as i64;
    if cfg.retention.logs_days > 0.0 {
        prune_logs(db, horizon(cfg.retention.logs_days), dry_run, &mut report)?;
    }
    if cfg.retention.artifacts_days > 0.0 {
        let root = cfg.artifacts_dir();
        prune_artifacts(
            db,
            &root,
            horizon(cfg.retention.artifacts_days),
            dry_run,
            &mut report,
        )?;
    }
    Ok(report)
}

fn prune_logs(db: &Db, horizon: i64, dry_run: bool, report: &mut Report) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let batch = db.expired_logs(horizon, after, BATCH)?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.logid;
        for file in batch.iter().flat_map(|l| &l.files) {
            report.log_bytes += size(file);
            if !dry_run {
                remove_file(file)?;
                // The job's log directory goes once its last log is gone.
                if let Some(dir) = file.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        report.logs += batch.len();
        if !dry_run {
            let ids: Vec<i64> = batch.iter().map(|l| l.logid).collect();
            db.mark_logs_pruned(&ids)?;
        }
    }
}

fn prune_artifacts(
    db: &Db,
    root: &Path,
    horizon: i64,
    dry_run: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let batch = db.expired_artifacts(horizon, after, BATCH)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        after = *last;
        for (_, uuid) in &batch {
            // Uuids were validated at submission; still never follow one out of the root.
            if uuid.is_empty() || uuid.starts_with('.') || uuid.contains('/') {
                continue;
            }
            let dir = root.join(uuid);
            report.artifact_bytes += dir_size(&dir);
            if !dry_run {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("delete {}", dir.display())),
                }
            }
        }
        report.artifacts += batch.len();
        if !dry_run {
            let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
            db.mark_artifacts_pruned(&ids)?;
        }
    }
}

fn remove_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("delete {}", path.display())),
    }
}

fn size(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Bytes of the files under `dir` (symlinks are not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => size(&e.path()),
        })
        .sum()
}

/// Runs a pass every `retention.interval_hours` (the first a minute after start) while the
/// master runs; does nothing when no retention is configured.
pub fn spawn(master: Arc<Master>) {
    if !master.cfg.retention.enabled() {
        return;
    }
    let every = Duration::from_secs_f64(master.cfg.retention.interval_hours * 3600.0);
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + Duration::from_secs(60).min(every);
        loop {
            tokio::time::sleep_until(next).await;
            next += every;
            let m = master.clone();
            let pass =
                tokio::task::spawn_blocking(move || prune(&m.db, &m.cfg, now(), false)).await;
            match pass {
                Ok(Ok(r)) => {
                    master.metrics.pruned(&r);
                    tracing::info!(
                        logs = r.logs,
                        log_bytes = r.log_bytes,
                        artifacts = r.artifacts,
                        artifact_bytes = r.artifact_bytes,
                        "janitor pass done"
                    );
                }
                Ok(Err(e)) => tracing::error!("janitor pass failed (retried next pass): {e:#}"),
                Err(e) => tracing::error!("janitor pass panicked: {e}"),
            }
        }
    });
}
