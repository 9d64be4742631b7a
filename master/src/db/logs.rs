//! Step logs. Each has a `logs` row (name, slug, line count, complete, file path). Its content
//! starts inline in SQLite (`logchunks`, as Buildbot stores it) and moves to a file under
//! `<data_dir>/logs` (format in `logfile.rs`) once it passes [`SPILL_BYTES`].
//!
//! Why both: most step logs are a few lines, and a file each costs more than a row (creating a
//! file took 0.15–0.8 ms on this machine's ext4, against ~0.1 ms for the row); but a build
//! streaming megabytes must not write every chunk under the database lock the scheduler needs
//! (issue 5's log flood). Past the threshold an append is one `write(2)` and the database hears
//! about the log at most once a second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension};

use super::logfile::{self, LogFile};
use super::{Db, DbError};

/// A log larger than this moves from SQLite to a file.
pub const SPILL_BYTES: u64 = 64 * 1024;

/// How stale the `num_lines` of a running file-backed log may get.
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

/// The writing end of one step log.
pub struct LogWriter {
    pub logid: i64,
    /// Where its file goes (relative to the logs directory) once it is large.
    relative: PathBuf,
    lines: u64,
    /// Bytes stored inline so far (while `file` is None).
    inline_bytes: u64,
    file: Option<LogFile>,
    /// Line count last written to the database (file-backed logs publish it in batches).
    synced_lines: u64,
    synced_at: Instant,
    /// Set after a failed write (disk full): the rest of the output is dropped, reported once.
    failed: bool,
}

impl LogWriter {
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The log's file, once it has moved to one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(LogFile::path)
    }
}

impl Db {
    /// Creates a step's log (or finds it again, for a second command logging to the same name)
    /// and returns its writer.
    pub fn add_log(&self, stepid: i64, name: &str) -> Result<LogWriter, DbError> {
        let slug = slug(name);
        let (logid, path, uuid, brid, lines, inline_bytes) = {
            let c = self.lock();
            c.prepare_cached("INSERT OR IGNORE INTO logs(stepid, name, slug) VALUES (?1, ?2, ?3)")?
                .execute(params![stepid, name, slug])?;
            let row: (i64, Option<String>, String, i64, i64) = c
                .prepare_cached(
                    "SELECT l.logid, l.path, r.uuid, r.buildrequestid, l.num_lines FROM logs l
                     JOIN steps s ON s.stepid = l.stepid JOIN builds b ON b.buildid = s.buildid
                     JOIN buildrequests r ON r.buildrequestid = b.buildrequestid
                     WHERE l.stepid = ?1 AND l.slug = ?2",
                )?
                .query_row(params![stepid, slug], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
            let inline_bytes: i64 = c
                .prepare_cached(
                    "SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) FROM logchunks
                     WHERE logid = ?1",
                )?
                .query_row([row.0], |r| r.get(0))?;
            (row.0, row.1, row.2, row.3, row.4, inline_bytes)
        };
        let relative = match &path {
            Some(p) => PathBuf::from(p),
            None => logfile::relative_path(&uuid, brid, logid, &slug),
        };
        let file = match path {
            Some(_) => Some(self.log_file(&relative, LogFile::open)?),
            None => None,
        };
        let lines = file.as_ref().map_or(lines as u64, LogFile::lines);
        Ok(LogWriter {
            logid,
            relative,
            lines,
            inline_bytes: inline_bytes as u64,
            file,
            synced_lines: lines,
            synced_at: Instant::now(),
            failed: false,
        })
    }

    fn log_file(
        &self,
        relative: &std::path::Path,
        open: fn(&std::path::Path) -> std::io::Result<LogFile>,
    ) -> Result<LogFile, DbError> {
        let path = self.logs_dir.join(relative);
        open(&path).map_err(DbError::log_file(&path))
    }

    /// Appends whole lines, each already prefixed with `h`/`o`/`e` for stdio logs (a missing
    /// final newline is added). After a failed write (disk full) the log takes no more output:
    /// the error is returned once, not once per chunk of a flood.
    pub fn append_log(&self, w: &mut LogWriter, content: &str) -> Result<(), DbError> {
        if w.failed || content.is_empty() {
            return Ok(());
        }
        let owned;
        let content = if content.ends_with('\n') {
            content
        } else {
            owned = format!("{content}\n");
            &owned
        };
        let res = match w.file.is_some() {
            true => self.append_to_file(w, content),
            false if w.inline_bytes + content.len() as u64 <= SPILL_BYTES => {
                self.append_inline(w, content)
            }
            false => self.spill(w, content),
        };
        if res.is_err() {
            w.failed = true;
        }
        res
    }

    fn append_inline(&self, w: &mut LogWriter, content: &str) -> Result<(), DbError> {
        let n = content.matches('\n').count() as u64;
        let mut c = self.lock();
        let tx = c.transaction()?;
        tx.prepare_cached(
            "INSERT INTO logchunks(logid, first_line, last_line, content) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            w.logid,
            w.lines as i64,
            (w.lines + n) as i64 - 1,
            content
        ])?;
        tx.prepare_cached("UPDATE logs SET num_lines = ?2 WHERE logid = ?1")?
            .execute(params![w.logid, (w.lines + n) as i64])?;
        tx.commit()?;
        w.lines += n;
        w.inline_bytes += content.len() as u64;
        w.synced_lines = w.lines;
        Ok(())
    }

    /// The log outgrew SQLite: write what it has plus `content` to its file, then switch the row
    /// to the file and drop its chunks in one transaction (a crash before that leaves the inline
    /// log as it was, and an unused file).
    fn spill(&self, w: &mut LogWriter, content: &str) -> Result<(), DbError> {
        let inline = inline_content(&self.lock(), w.logid)?;
        let mut file = self.log_file(&w.relative, LogFile::create)?;
        let appended = file.append(&inline).and_then(|_| file.append(content));
        let lines = appended.map_err(DbError::log_file(file.path()))?;
        {
            let mut c = self.lock();
            let tx = c.transaction()?;
            tx.prepare_cached("UPDATE logs SET path = ?2, num_lines = ?3 WHERE logid = ?1")?
                .execute(params![w.logid, w.relative.to_string_lossy(), lines as i64])?;
            tx.prepare_cached("DELETE FROM logchunks WHERE logid = ?1")?
                .execute([w.logid])?;
            tx.commit()?;
        }
        w.lines = lines;
        w.synced_lines = lines;
        w.synced_at = Instant::now();
        w.file = Some(file);
        Ok(())
    }

    fn append_to_file(&self, w: &mut LogWriter, content: &str) -> Result<(), DbError> {
        let Some(file) = w.file.as_mut() else {
            return Ok(());
        };
        let appended = file.append(content);
        let lines = appended.map_err(DbError::log_file(file.path()))?;
        w.lines = lines;
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
            .execute(params![w.logid, w.lines as i64])?;
        Ok(())
    }

    /// At startup, after a crash: logs the previous process never finished are marked complete;
    /// file-backed ones first get their real line count (the database may lag the file by up to
    /// a second) and lose a torn last line.
    pub fn close_abandoned_logs(&self) -> Result<usize, DbError> {
        let open: Vec<(i64, Option<String>)> = {
            let c = self.lock();
            let mut st = c.prepare("SELECT logid, path FROM logs WHERE complete = 0")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (logid, path) in &open {
            let lines = match path {
                Some(p) => Some(
                    self.log_file(std::path::Path::new(p), LogFile::open)?
                        .lines(),
                ),
                None => None,
            };
            self.lock()
                .prepare_cached(
                    "UPDATE logs SET num_lines = COALESCE(?2, num_lines), complete = 1
                     WHERE logid = ?1",
                )?
                .execute(params![logid, lines.map(|l| l as i64)])?;
        }
        Ok(open.len())
    }

    /// Reads a log's content from wherever it is: `inline` runs on its `logchunks` under the
    /// same lock that found it has no file (a move to a file is one transaction, so the two
    /// cannot disagree); `from_file` reads its file. `None` if there is no such log.
    fn read_log<T>(
        &self,
        logid: i64,
        inline: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError>,
        from_file: impl FnOnce(&std::path::Path) -> std::io::Result<T>,
    ) -> Result<Option<T>, DbError> {
        let c = self.lock();
        let path: Option<Option<String>> = c
            .prepare_cached("SELECT path FROM logs WHERE logid = ?1")?
            .query_row([logid], |r| r.get(0))
            .optional()?;
        match path {
            None => Ok(None),
            Some(None) => inline(&c).map(Some),
            Some(Some(p)) => {
                drop(c);
                let path = self.logs_dir.join(p);
                from_file(&path).map(Some).map_err(DbError::log_file(&path))
            }
        }
    }

    /// The whole log content, lines prefixed with `h`/`o`/`e` (Buildbot's logchunks format).
    pub fn log_content(&self, logid: i64) -> Result<String, DbError> {
        Ok(self
            .read_log(logid, |c| inline_content(c, logid), logfile::read_all)?
            .unwrap_or_default())
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
        let out = self
            .read_log(
                logid,
                |c| inline_lines(c, logid, from, max),
                |path| logfile::read_lines(path, from as u64, max),
            )?
            .unwrap_or_default();
        let page_full = out.len() >= max;
        Ok((out, complete && !page_full))
    }
}

/// Inline lines `from..` of a log, at most `max`, without their newlines.
fn inline_lines(
    c: &rusqlite::Connection,
    logid: i64,
    from: i64,
    max: usize,
) -> Result<Vec<String>, DbError> {
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

/// A log's inline content (its `logchunks` rows in order).
fn inline_content(c: &rusqlite::Connection, logid: i64) -> Result<String, DbError> {
    let mut st =
        c.prepare_cached("SELECT content FROM logchunks WHERE logid = ?1 ORDER BY first_line")?;
    let rows = st.query_map([logid], |r| r.get::<_, String>(0))?;
    let mut out = String::new();
    for r in rows {
        out.push_str(&r?);
    }
    Ok(out)
}
