//! SQLite persistence (rusqlite, WAL). One connection behind a mutex: every statement here is
//! short, and SQLite serialises writers anyway.
//!
//! `write.rs` holds the state changes (submit, claim, finish, retry); `read.rs` turns rows into
//! the JSON shapes of Buildbot's data API so the REST API, a UI and metrics can share them.

pub mod catalog;
mod logfile;
mod logs;
mod read;
mod retention;
mod schema;
#[cfg(test)]
mod tests;
mod ui;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use logs::LogWriter;
pub use read::{Filter, Listing, Page};
pub use retention::ExpiredLog;
pub use ui::{BuildInfo, JobQuery, JobRow, JobState, LogContext, LogInfo, StepInfo};
pub use write::{
    BuildRef, ChangeFields, Interrupted, NewRequest, PendingRequest, SubmitError, Submitted,
};

/// Buildbot's result codes.
pub mod results {
    pub const SUCCESS: i64 = 0;
    pub const WARNINGS: i64 = 1;
    pub const FAILURE: i64 = 2;
    pub const SKIPPED: i64 = 3;
    pub const EXCEPTION: i64 = 4;
    pub const RETRY: i64 = 5;
    pub const CANCELLED: i64 = 6;

    /// The worse of two results, with Buildbot's ordering (worst last).
    pub fn worst(a: i64, b: i64) -> i64 {
        // Buildbot's order: SUCCESS < WARNINGS < FAILURE/SKIPPED ... < EXCEPTION < RETRY < CANCELLED
        fn rank(r: i64) -> i64 {
            match r {
                SKIPPED => 0,
                SUCCESS => 1,
                WARNINGS => 2,
                FAILURE => 3,
                EXCEPTION => 4,
                RETRY => 5,
                CANCELLED => 6,
                _ => 4,
            }
        }
        if rank(b) > rank(a) {
            b
        } else {
            a
        }
    }

    pub fn name(r: i64) -> &'static str {
        match r {
            SUCCESS => "success",
            WARNINGS => "warnings",
            FAILURE => "failure",
            SKIPPED => "skipped",
            EXCEPTION => "exception",
            RETRY => "retry",
            CANCELLED => "cancelled",
            _ => "unknown",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("log file {path}: {source}")]
    LogFile {
        path: String,
        source: std::io::Error,
    },
}

impl DbError {
    /// Wraps an I/O error on the log file at `path`.
    fn log_file(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
        move |source| DbError::LogFile {
            path: path.display().to_string(),
            source,
        }
    }
}

pub struct Db {
    conn: Mutex<Connection>,
    /// `logs/` next to the database file: step log content (see `logfile.rs`).
    logs_dir: PathBuf,
}

/// Seconds since the epoch (Buildbot's API uses integer timestamps).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Opens (creating if needed) the database and applies pending migrations. Step logs are
    /// kept in the `logs` directory beside the database file.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let err = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        schema::migrate(&mut conn).map_err(err)?;
        // Every hot statement is prepared once and cached (re-parsing SQL was ~28% of the
        // master's instructions per job under callgrind); the default cache holds only 16.
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Db {
            conn: Mutex::new(conn),
            logs_dir: path.parent().unwrap_or(Path::new(".")).join("logs"),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned mutex is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
