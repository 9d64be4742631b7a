//! Step logs: the `logs` rows (name, slug, line count, complete, file path) live in SQLite, the
//! content in files under `<data_dir>/logs` (format in `logfile.rs`).
//!
//! Appending touches the database at most once a second per log (to publish the line count),
//! so builds streaming output do not hold the lock the scheduler needs. Logs written before
//! migration 4 have no path; their content is still read from the old `logchunks` table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension};

use super::logfile::{self, LogWriter};
use super::{Db, DbError};

/// How stale the `num_lines` of a running log may get.
const LINE_COUNT_EVERY: Duration = Duration::from_secs(1);

/// Buildbot's slug: the name with everything but `[A-Za-z0-9_-]` replaced by `_`.
fn slug(name: &str) -> String {
    name.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' {
                ch
            } else {
                '_'
            }
        })
        .collect()
}

impl Db {
    /// Creates a step's log (or finds it again, for a second command logging to the same name)
    /// and opens its file for appending.
    pub fn add_log(&self, stepid: i64, name: &str) -> Result<LogWriter, DbError> {
        let slug = slug(name);
        let (logid, relative) = {
            let c = self.lock();
            c.prepare_cached("INSERT OR IGNORE INTO logs(stepid, name, slug) VALUES (?1, ?2, ?3)")?
                .execute(params![stepid, name, slug])?;
            let (logid, path, uuid, brid): (i64, Option<String>, String, i64) = c
                .prepare_cached(
                    "SELECT l.logid, l.path, r.uuid, r.buildrequestid FROM logs l
                     JOIN steps s ON s.stepid = l.stepid JOIN builds b ON b.buildid = s.buildid
                     JOIN buildrequests r ON r.buildrequestid = b.buildrequestid
                     WHERE l.stepid = ?1 AND l.slug = ?2",
                )?
                .query_row(params![stepid, slug], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let relative = match path {
                Some(p) => PathBuf::from(p),
                None => {
                    let p = logfile::relative_path(&uuid, brid, logid, &slug);
                    c.prepare_cached("UPDATE logs SET path = ?2 WHERE logid = ?1")?
                        .execute(params![logid, p.to_string_lossy()])?;
                    p
                }
            };
            (logid, relative)
        };
        let path = self.logs_dir.join(relative);
        LogWriter::open(logid, &path).map_err(|source| DbError::LogFile {
            path: path.display().to_string(),
            source,
        })
    }

    /// Appends whole lines, each already prefixed with `h`/`o`/`e` for stdio logs. After a
    /// failed write (disk full) the log takes no more output: the error is returned once, not
    /// once per chunk of a flood.
    pub fn append_log(&self, w: &mut LogWriter, content: &str) -> Result<(), DbError> {
        if w.failed {
            return Ok(());
        }
        let lines = w.append(content).map_err(|source| {
            w.failed = true;
            DbError::LogFile {
                path: w.path().display().to_string(),
                source,
            }
        })?;
        if lines != w.synced_lines && w.synced_at.elapsed() >= LINE_COUNT_EVERY {
            self.lock()
                .prepare_cached("UPDATE logs SET num_lines = ?2 WHERE logid = ?1")?
                .execute(params![w.logid, lines as i64])?;
            w.synced_lines = lines;
            w.synced_at = Instant::now();
        }
        Ok(())
    }

    /// Publishes the final line count and marks the log complete.
    pub fn finish_log(&self, w: LogWriter) -> Result<(), DbError> {
        self.lock()
            .prepare_cached("UPDATE logs SET num_lines = ?2, complete = 1 WHERE logid = ?1")?
            .execute(params![w.logid, w.lines() as i64])?;
        Ok(())
    }

    /// At startup, after a crash: logs the previous process never finished get their real line
    /// count (the database may lag the file by up to a second) and are marked complete.
    pub fn close_abandoned_logs(&self) -> Result<usize, DbError> {
        let open: Vec<(i64, String)> = {
            let c = self.lock();
            let mut st =
                c.prepare("SELECT logid, path FROM logs WHERE complete = 0 AND path IS NOT NULL")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (logid, path) in &open {
            // Reopening truncates a torn last line and counts what is there.
            let full = self.logs_dir.join(path);
            let lines = match full.exists() {
                true => LogWriter::open(*logid, &full)
                    .map_err(|source| DbError::LogFile {
                        path: full.display().to_string(),
                        source,
                    })?
                    .lines(),
                false => 0,
            };
            self.lock()
                .prepare_cached("UPDATE logs SET num_lines = ?2, complete = 1 WHERE logid = ?1")?
                .execute(params![logid, lines as i64])?;
        }
        Ok(open.len())
    }

    /// Where a log's content is: `None` if there is no such log, `Some(None)` for a log stored
    /// in `logchunks` by an older master.
    fn log_path(&self, logid: i64) -> Result<Option<Option<PathBuf>>, DbError> {
        let path: Option<Option<String>> = self
            .lock()
            .prepare_cached("SELECT path FROM logs WHERE logid = ?1")?
            .query_row([logid], |r| r.get(0))
            .optional()?;
        Ok(path.map(|p| p.map(|p| self.logs_dir.join(p))))
    }

    /// The whole log content, lines prefixed with `h`/`o`/`e` (Buildbot's logchunks format).
    pub fn log_content(&self, logid: i64) -> Result<String, DbError> {
        match self.log_path(logid)? {
            None => Ok(String::new()),
            Some(Some(path)) => logfile::read_all(&path).map_err(|source| DbError::LogFile {
                path: path.display().to_string(),
                source,
            }),
            Some(None) => {
                let c = self.lock();
                let mut st = c.prepare(
                    "SELECT content FROM logchunks WHERE logid = ?1 ORDER BY first_line",
                )?;
                let rows = st.query_map([logid], |r| r.get::<_, String>(0))?;
                let mut out = String::new();
                for r in rows {
                    out.push_str(&r?);
                }
                Ok(out)
            }
        }
    }

    /// Lines `from..` of a log (0-based), at most `max` of them, each still carrying its
    /// `h`/`o`/`e` stream prefix; plus whether the log is complete (only when this page reaches
    /// its end, so a caller paging through knows when to stop).
    pub fn log_lines(
        &self,
        logid: i64,
        from: i64,
        max: usize,
    ) -> Result<(Vec<String>, bool), DbError> {
        // Completion is read before the content: a log seen complete has all its lines written.
        let complete: bool = self
            .lock()
            .prepare_cached(
                // A step that ended without closing its log (worker lost) is complete too.
                "SELECT l.complete OR s.complete_at IS NOT NULL FROM logs l
                 JOIN steps s ON s.stepid = l.stepid WHERE l.logid = ?1",
            )?
            .query_row([logid], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some_and(|v| v != 0);
        let from = from.max(0);
        let out = match self.log_path(logid)? {
            None => Vec::new(),
            Some(Some(path)) => {
                logfile::read_lines(&path, from as u64, max).map_err(|source| DbError::LogFile {
                    path: path.display().to_string(),
                    source,
                })?
            }
            Some(None) => self.legacy_log_lines(logid, from, max)?,
        };
        let page_full = out.len() >= max;
        Ok((out, complete && !page_full))
    }

    fn legacy_log_lines(&self, logid: i64, from: i64, max: usize) -> Result<Vec<String>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT first_line, content FROM logchunks WHERE logid = ?1 AND last_line >= ?2
             ORDER BY first_line",
        )?;
        let mut rows = st.query(params![logid, from])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let first: i64 = r.get(0)?;
            let content: String = r.get(1)?;
            for (i, line) in content.split_inclusive('\n').enumerate() {
                if first + i as i64 >= from && out.len() < max {
                    out.push(line.trim_end_matches('\n').to_string());
                }
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }
}
