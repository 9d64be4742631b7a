//! Rows for the janitor (`janitor.rs`): which finished jobs' logs and artifacts are past the
//! retention horizon, and marking them deleted. The janitor deletes the files; the rows stay
//! (builds, steps and log names keep their history, like Buildbot's janitor), with
//! `logs.pruned_at` / `buildrequests.artifacts_pruned_at` set.

use std::path::PathBuf;

use rusqlite::params;

use super::{logfile, now, Db, DbError};

/// A log whose content may go: its files, content and line index (none for a log kept in
/// `logchunks` by an old master).
pub struct ExpiredLog {
    pub logid: i64,
    pub files: Vec<PathBuf>,
}

impl Db {
    /// Up to `limit` logs after `after_logid` whose build ended before `horizon` and whose
    /// content is still kept, oldest first.
    pub fn expired_logs(
        &self,
        horizon: i64,
        after_logid: i64,
        limit: usize,
    ) -> Result<Vec<ExpiredLog>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT l.logid, l.path FROM logs l JOIN steps s ON s.stepid = l.stepid
             JOIN builds b ON b.buildid = s.buildid
             WHERE l.pruned_at IS NULL AND l.logid > ?2 AND b.complete_at < ?1
             ORDER BY l.logid LIMIT ?3",
        )?;
        let rows = st.query_map(params![horizon, after_logid, limit as i64], |r| {
            let files = match r.get::<_, Option<String>>(1)? {
                Some(p) => {
                    let log = self.logs_dir.join(p);
                    vec![logfile::index_path(&log), log]
                }
                None => vec![],
            };
            Ok(ExpiredLog {
                logid: r.get(0)?,
                files,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that these logs' content is gone (and drops old-style `logchunks` rows).
    pub fn mark_logs_pruned(&self, logids: &[i64]) -> Result<(), DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let t = now();
        for id in logids {
            tx.prepare_cached("UPDATE logs SET pruned_at = ?2 WHERE logid = ?1")?
                .execute(params![id, t])?;
            tx.prepare_cached("DELETE FROM logchunks WHERE logid = ?1")?
                .execute([id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// When the janitor deleted a log's content, if it did.
    pub fn log_pruned_at(&self, logid: i64) -> Result<Option<i64>, DbError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .lock()
            .prepare_cached("SELECT pruned_at FROM logs WHERE logid = ?1")?
            .query_row([logid], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten())
    }

    /// Up to `limit` finished requests after `after_brid` that ended before `horizon` and still
    /// have their artifacts: `(request id, uuid)`, oldest first.
    pub fn expired_artifacts(
        &self,
        horizon: i64,
        after_brid: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT buildrequestid, uuid FROM buildrequests
             WHERE artifacts_pruned_at IS NULL AND complete = 1 AND buildrequestid > ?2
                   AND complete_at < ?1
             ORDER BY buildrequestid LIMIT ?3",
        )?;
        let rows = st.query_map(params![horizon, after_brid, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mark_artifacts_pruned(&self, brids: &[i64]) -> Result<(), DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let t = now();
        for id in brids {
            tx.prepare_cached(
                "UPDATE buildrequests SET artifacts_pruned_at = ?2 WHERE buildrequestid = ?1",
            )?
            .execute(params![id, t])?;
        }
        tx.commit()?;
        Ok(())
    }
}
