//! The trigger's durable state in one SQLite file (`<state_dir>/trigger.sqlite`, WAL):
//!
//! * `inbox`: messages received but not yet processed (see [`crate::inbox`]);
//! * `seen`: message ids already handled (bounded to `dedupe_capacity`, oldest dropped);
//! * `jobs`: the outbox, jobs not yet accepted by the master;
//! * `dead_letters`: jobs the master refused permanently, with its answer;
//! * `fuses`: debounced KojiTagChanged events waiting for their fuse to burn down.
//!
//! A message's jobs, its `seen` mark, its fuses and the removal of its inbox row are written in
//! one transaction ([`Outbox::commit`]), so a crash either loses nothing or redoes nothing.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::Job;

pub struct Outbox {
    conn: Mutex<Connection>,
    capacity: usize,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    topic BLOB NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (msg_id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    job TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    uuid TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fuses (
    tag TEXT PRIMARY KEY,
    fire_at REAL NOT NULL,
    data TEXT NOT NULL,
    msg_id TEXT NOT NULL
);
";

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A fuse that burnt down: the first message's data for a tag.
#[derive(Debug, Clone)]
pub struct Fuse {
    pub tag: String,
    pub data: String,
    pub msg_id: String,
}

/// A KojiTagChanged message data to debounce: lights the fuse for `tag` unless it burns.
#[derive(Debug, Clone)]
pub struct FuseLight {
    pub tag: String,
    pub data: String,
}

/// What [`Outbox::commit`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The message's inbox row was removed (false when it came from `replay`).
    pub from_inbox: bool,
    /// For each fuse: true if it was newly lit, false if it was already burning.
    pub lit: Vec<bool>,
}

pub(crate) type Result<T> = std::result::Result<T, rusqlite::Error>;

impl Outbox {
    pub fn open(path: &Path, capacity: usize) -> Result<Outbox> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox {
            conn: Mutex::new(conn),
            capacity: capacity.max(1),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_seen(&self, msg_id: &str) -> Result<bool> {
        self.conn()
            .query_row("SELECT 1 FROM seen WHERE msg_id = ?1", [msg_id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }

    /// Records a message as handled together with its jobs (possibly none).
    pub fn record(&self, msg_id: &str, jobs: &[Job]) -> Result<()> {
        self.commit(msg_id, jobs, &[], 0.0).map(|_| ())
    }

    /// Finishes a message in one transaction: its jobs go to the outbox, its fuses are lit
    /// (`delay_secs` from now), it is marked seen and removed from the inbox.
    pub fn commit(
        &self,
        msg_id: &str,
        jobs: &[Job],
        fuses: &[FuseLight],
        delay_secs: f64,
    ) -> Result<Committed> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let t = now();
        for job in jobs {
            let text = serde_json::to_string(job)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            tx.execute(
                "INSERT OR IGNORE INTO jobs (uuid, job, created_at) VALUES (?1, ?2, ?3)",
                params![job.uuid, text, t],
            )?;
        }
        let mut lit = vec![];
        for f in fuses {
            lit.push(
                tx.execute(
                    "INSERT OR IGNORE INTO fuses (tag, fire_at, data, msg_id) VALUES (?1, ?2, ?3, ?4)",
                    params![f.tag, t + delay_secs, f.data, msg_id],
                )? == 1,
            );
        }
        tx.execute(
            "INSERT OR IGNORE INTO seen (msg_id, seen_at) VALUES (?1, ?2)",
            params![msg_id, t],
        )?;
        tx.execute(
            "DELETE FROM seen WHERE rowid <= (SELECT MAX(rowid) FROM seen) - ?1",
            [self.capacity as i64],
        )?;
        let from_inbox = tx.execute("DELETE FROM inbox WHERE msg_id = ?1", [msg_id])? == 1;
        tx.commit()?;
        Ok(Committed { from_inbox, lit })
    }

    /// Oldest pending jobs first.
    pub fn next_batch(&self, limit: usize) -> Result<Vec<(i64, Job)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT id, job FROM jobs ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = vec![];
        for row in rows {
            let (id, text) = row?;
            match serde_json::from_str(&text) {
                Ok(job) => out.push((id, job)),
                Err(e) => tracing::error!(id, error = %e, "outbox: unreadable job row skipped"),
            }
        }
        Ok(out)
    }

    pub fn accepted(&self, id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM jobs WHERE id = ?1", [id])
            .map(|_| ())
    }

    pub fn retry(&self, id: i64, error: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .map(|_| ())
    }

    /// Moves a job to the dead-letter table.
    pub fn dead(&self, id: i64, status: u16, response: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO dead_letters (uuid, job, status, response, failed_at)
             SELECT uuid, job, ?2, ?3, ?4 FROM jobs WHERE id = ?1",
            params![id, status, response, now()],
        )?;
        tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
        tx.commit()
    }

    pub fn pending(&self) -> Result<i64> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
    }

    pub fn dead_letters(&self) -> Result<Vec<(Job, u16, String)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT job, status, response FROM dead_letters ORDER BY failed_at")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u16>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = vec![];
        for row in rows {
            let (text, status, resp) = row?;
            if let Ok(job) = serde_json::from_str(&text) {
                out.push((job, status, resp));
            }
        }
        Ok(out)
    }

    /// Fuses whose time has come, and the seconds until the next one (if any).
    pub fn due_fuses(&self) -> Result<(Vec<Fuse>, Option<f64>)> {
        let conn = self.conn();
        let t = now();
        let mut stmt =
            conn.prepare_cached("SELECT tag, data, msg_id FROM fuses WHERE fire_at <= ?1")?;
        let due = stmt
            .query_map([t], |r| {
                Ok(Fuse {
                    tag: r.get(0)?,
                    data: r.get(1)?,
                    msg_id: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let next: Option<f64> = conn.query_row(
            "SELECT MIN(fire_at) FROM fuses WHERE fire_at > ?1",
            [t],
            |r| r.get(0),
        )?;
        Ok((due, next.map(|n| n - t)))
    }

    /// Turns a burnt fuse into jobs atomically.
    pub fn fire_fuse(&self, tag: &str, jobs: &[Job]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for job in jobs {
            let text = serde_json::to_string(job)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            tx.execute(
                "INSERT OR IGNORE INTO jobs (uuid, job, created_at) VALUES (?1, ?2, ?3)",
                params![job.uuid, text, now()],
            )?;
        }
        tx.execute("DELETE FROM fuses WHERE tag = ?1", [tag])?;
        tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(uuid: &str) -> Job {
        Job {
            uuid: uuid.into(),
            taskname: "rpmlint".into(),
            item: "foo-1-1.fc30".into(),
            item_type: "koji_build".into(),
            arch: "x86_64".into(),
            git_repo: None,
            git_branch: None,
            match_host_arch: false,
            message_type: "KojiBuildPackageCompleted".into(),
            msg_id: "m".into(),
        }
    }

    #[test]
    fn jobs_and_seen_survive_reopen_and_seen_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        {
            let o = Outbox::open(&path, 2).unwrap();
            o.record("m1", &[job("a"), job("b")]).unwrap();
            o.record("m2", &[]).unwrap();
            o.record("m3", &[]).unwrap();
        }
        let o = Outbox::open(&path, 2).unwrap();
        assert!(
            !o.is_seen("m1").unwrap(),
            "oldest id dropped beyond capacity"
        );
        assert!(o.is_seen("m3").unwrap());
        let batch = o.next_batch(10).unwrap();
        assert_eq!(
            batch
                .iter()
                .map(|(_, j)| j.uuid.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        o.accepted(batch[0].0).unwrap();
        o.dead(batch[1].0, 400, "bad").unwrap();
        assert_eq!(o.pending().unwrap(), 0);
        assert_eq!(o.dead_letters().unwrap()[0].1, 400);
    }

    #[test]
    fn fuse_absorbs_repeats_then_fires_once() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("t.sqlite"), 10).unwrap();
        let fuse = [FuseLight {
            tag: "f30-updates-pending".into(),
            data: "{}".into(),
        }];
        assert_eq!(o.commit("m1", &[], &fuse, 0.0).unwrap().lit, [true]);
        assert_eq!(o.commit("m2", &[], &fuse, 0.0).unwrap().lit, [false]);
        assert!(o.is_seen("m2").unwrap());
        let (due, _) = o.due_fuses().unwrap();
        assert_eq!(due.len(), 1);
        o.fire_fuse("f30-updates-pending", &[job("x")]).unwrap();
        assert!(o.due_fuses().unwrap().0.is_empty());
        assert_eq!(o.pending().unwrap(), 1);
    }
}
