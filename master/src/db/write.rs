//! State changes: submitting requests, claiming them for a build, recording steps and logs,
//! finishing builds, and turning interrupted builds into RETRY.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use super::{now, results, Db, DbError};

/// A change as the change hook received it (Buildbot's base dialect fields).
#[derive(Debug, Clone, Default)]
pub struct ChangeFields {
    pub author: String,
    pub committer: Option<String>,
    pub branch: String,
    pub category: Option<String>,
    pub comments: String,
    pub files: Value,
    pub project: String,
    /// Raw change properties `{name: value}`.
    pub properties: Map<String, Value>,
    pub repository: String,
    pub revision: Option<String>,
    pub revlink: Option<String>,
    pub codebase: String,
    pub when_timestamp: i64,
}

/// One Taskotron job to queue.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub builder: String,
    pub priority: i64,
    pub reason: String,
    pub change: Option<ChangeFields>,
    /// Build properties in Buildbot's shape `{name: [value, source]}`.
    pub properties: Map<String, Value>,
    pub uuid: String,
    pub taskname: String,
    pub item: String,
    pub item_type: String,
    pub arch: String,
    pub task_key: String,
    pub sha: String,
    pub collapse: bool,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub changeid: Option<i64>,
    pub bsid: i64,
    pub brid: i64,
    pub builderid: i64,
    /// True when an identical pending request absorbed this one (`queue.collapse`).
    pub collapsed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("a job with uuid {0:?} already exists")]
    DuplicateUuid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for SubmitError {
    fn from(e: rusqlite::Error) -> Self {
        SubmitError::Db(DbError::Sql(e))
    }
}

#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub brid: i64,
    pub builderid: i64,
    pub buildername: String,
    pub priority: i64,
    pub uuid: String,
    pub taskname: String,
    pub item: String,
    pub item_type: String,
    pub arch: String,
    pub task_key: String,
    pub sha: String,
    pub properties: Map<String, Value>,
    pub attempts: i64,
}

#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // builderid: for status pages
pub struct BuildRef {
    pub buildid: i64,
    pub number: i64,
    pub builderid: i64,
    pub brid: i64,
}

/// What happened to the request of a build that could not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    Requeued,
    GaveUp,
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Db {
    /// Returns the id of the builder named `name`, creating it if needed.
    pub fn ensure_builder(&self, name: &str) -> Result<i64, DbError> {
        let c = self.lock();
        ensure_builder(&c, name)
    }

    pub fn ensure_worker(&self, name: &str) -> Result<i64, DbError> {
        let c = self.lock();
        c.prepare_cached("INSERT OR IGNORE INTO workers(name) VALUES (?1)")?
            .execute([name])?;
        Ok(c.query_row(
            "SELECT workerid FROM workers WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    pub fn set_worker_connected(
        &self,
        workerid: i64,
        connected: bool,
        info: Option<&Value>,
    ) -> Result<(), DbError> {
        let c = self.lock();
        match info {
            // A (re)connecting worker starts a fresh session: a drain requested for its
            // previous session (`graceful`) is over, as its in-memory slot is new too.
            Some(info) => c.prepare_cached("UPDATE workers SET connected = ?2, info = ?3, graceful = 0 WHERE workerid = ?1")?.execute(
                params![workerid, connected, json(info)],
            )?,
            None => c.prepare_cached("UPDATE workers SET connected = ?2 WHERE workerid = ?1")?.execute(
                params![workerid, connected],
            )?,
        };
        Ok(())
    }

    pub fn set_worker_paused(
        &self,
        workerid: i64,
        paused: bool,
        reason: Option<&str>,
    ) -> Result<(), DbError> {
        self.lock().execute(
            "UPDATE workers SET paused = ?2, pause_reason = ?3 WHERE workerid = ?1",
            params![workerid, paused, reason],
        )?;
        Ok(())
    }

    pub fn set_worker_graceful(&self, workerid: i64, graceful: bool) -> Result<(), DbError> {
        self.lock().execute(
            "UPDATE workers SET graceful = ?2 WHERE workerid = ?1",
            params![workerid, graceful],
        )?;
        Ok(())
    }

    /// Marks every worker disconnected (at startup: no connection survives a restart).
    pub fn reset_workers(&self) -> Result<(), DbError> {
        self.lock()
            .execute("UPDATE workers SET connected = 0, graceful = 0", [])?;
        Ok(())
    }

    /// Stores the change (if any), its sourcestamp, a buildset and one build request, atomically.
    pub fn submit(&self, req: &NewRequest) -> Result<Submitted, SubmitError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT buildrequestid FROM buildrequests WHERE uuid = ?1",
                [&req.uuid],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(SubmitError::DuplicateUuid(req.uuid.clone()));
        }
        let builderid = ensure_builder(&tx, &req.builder)?;
        let t = now();
        let (branch, project, repository, revision, codebase) = match &req.change {
            Some(ch) => (
                ch.branch.clone(),
                ch.project.clone(),
                ch.repository.clone(),
                ch.revision.clone().unwrap_or_default(),
                ch.codebase.clone(),
            ),
            None => Default::default(),
        };
        // Every change gets its own sourcestamp: this is what keeps each build's properties
        // its own (Buildbot shares one between revision-less changes; DESIGN §5).
        tx.prepare_cached(
            "INSERT INTO sourcestamps(branch, codebase, project, repository, revision, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![branch, codebase, project, repository, revision, t])?;
        let ssid = tx.last_insert_rowid();
        let changeid = match &req.change {
            Some(ch) => Some(insert_change(&tx, ch, ssid)?),
            None => None,
        };
        if req.collapse {
            let same: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT buildrequestid, buildsetid FROM buildrequests
                     WHERE complete = 0 AND claimed_at IS NULL AND builderid = ?1 AND taskname = ?2
                       AND item = ?3 AND item_type = ?4 AND arch = ?5
                     ORDER BY buildrequestid LIMIT 1",
                    params![builderid, req.taskname, req.item, req.item_type, req.arch],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((brid, bsid)) = same {
                tx.commit()?;
                return Ok(Submitted {
                    changeid,
                    bsid,
                    brid,
                    builderid,
                    collapsed: true,
                });
            }
        }
        tx.prepare_cached(
            "INSERT INTO buildsets(reason, submitted_at, ssid, changeid) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![req.reason, t, ssid, changeid])?;
        let bsid = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO buildrequests(buildsetid, builderid, priority, submitted_at, properties, uuid,
                taskname, item, item_type, arch, task_key, sha)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")?.execute(
            params![
                bsid, builderid, req.priority, t, json(&req.properties), req.uuid, req.taskname,
                req.item, req.item_type, req.arch, req.task_key, req.sha
            ],
        )?;
        let brid = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Submitted {
            changeid,
            bsid,
            brid,
            builderid,
            collapsed: false,
        })
    }

    /// Stores a change that starts no build (its project is not one the queue takes).
    pub fn add_change(&self, ch: &ChangeFields) -> Result<i64, DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        tx.prepare_cached(
            "INSERT INTO sourcestamps(branch, codebase, project, repository, revision, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            ch.branch,
            ch.codebase,
            ch.project,
            ch.repository,
            ch.revision.clone().unwrap_or_default(),
            now()
        ])?;
        let ssid = tx.last_insert_rowid();
        let id = insert_change(&tx, ch, ssid)?;
        tx.commit()?;
        Ok(id)
    }

    /// Unclaimed, incomplete requests: highest priority first, then oldest first.
    pub fn pending_requests(&self) -> Result<Vec<PendingRequest>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM buildrequests r
             JOIN builders b ON b.builderid = r.builderid
             WHERE r.complete = 0 AND r.claimed_at IS NULL
             ORDER BY r.priority DESC, r.buildrequestid ASC"
        ))?;
        let rows = st.query_map([], pending_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first `limit` pending requests of every builder, merged in dispatch order (priority,
    /// then FIFO). The scheduler can start at most `limit` builds (its free worker slots), and
    /// within one builder it starts a prefix of that builder's queue, so this holds every
    /// request a full scan would dispatch, without reading the whole queue on every wake-up.
    pub fn pending_requests_head(&self, limit: usize) -> Result<Vec<PendingRequest>, DbError> {
        let c = self.lock();
        let builders: Vec<i64> = c
            .prepare_cached("SELECT builderid FROM builders")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM buildrequests r INDEXED BY buildrequests_queue
             JOIN builders b ON b.builderid = r.builderid
             WHERE r.builderid = ?1 AND r.complete = 0 AND r.claimed_at IS NULL
             ORDER BY r.priority DESC, r.buildrequestid ASC LIMIT ?2"
        ))?;
        let mut out = Vec::new();
        for builderid in builders {
            let rows = st.query_map(params![builderid, limit as i64], pending_from_row)?;
            for row in rows {
                out.push(row?);
            }
        }
        out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.brid.cmp(&b.brid)));
        Ok(out)
    }

    /// Claims a request and creates its build, atomically. None if someone else claimed it.
    pub fn start_build(
        &self,
        brid: i64,
        workerid: i64,
        properties: &Map<String, Value>,
    ) -> Result<Option<BuildRef>, DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let t = now();
        let n = tx
            .prepare_cached(
                "UPDATE buildrequests SET claimed_at = ?2, attempts = attempts + 1
             WHERE buildrequestid = ?1 AND claimed_at IS NULL AND complete = 0",
            )?
            .execute(params![brid, t])?;
        if n == 0 {
            return Ok(None);
        }
        let builderid: i64 = tx.query_row(
            "SELECT builderid FROM buildrequests WHERE buildrequestid = ?1",
            [brid],
            |r| r.get(0),
        )?;
        let number: i64 = tx.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE builderid = ?1",
            [builderid],
            |r| r.get(0),
        )?;
        let mut props = properties.clone();
        props.insert(
            "buildnumber".into(),
            Value::Array(vec![number.into(), "Build".into()]),
        );
        tx.prepare_cached("INSERT INTO builds(number, builderid, buildrequestid, workerid, started_at, state_string, properties)
             VALUES (?1, ?2, ?3, ?4, ?5, 'starting', ?6)")?.execute(
            params![number, builderid, brid, workerid, t, json(&props)],
        )?;
        let buildid = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Some(BuildRef {
            buildid,
            number,
            builderid,
            brid,
        }))
    }

    pub fn set_build_state(&self, buildid: i64, state: &str) -> Result<(), DbError> {
        self.lock().execute(
            "UPDATE builds SET state_string = ?2 WHERE buildid = ?1",
            params![buildid, state],
        )?;
        Ok(())
    }

    pub fn add_step(&self, buildid: i64, number: i64, name: &str) -> Result<i64, DbError> {
        let c = self.lock();
        c.prepare_cached("INSERT INTO steps(buildid, number, name, started_at, state_string) VALUES (?1, ?2, ?3, ?4, ?3)")?.execute(
            params![buildid, number, name, now()],
        )?;
        Ok(c.last_insert_rowid())
    }

    pub fn finish_step(&self, stepid: i64, result: i64, state: &str) -> Result<(), DbError> {
        self.lock().execute(
            "UPDATE steps SET complete_at = ?2, results = ?3, state_string = ?4 WHERE stepid = ?1",
            params![stepid, now(), result, state],
        )?;
        Ok(())
    }

    /// Ends a build and, unless it is to be retried, its request and buildset.
    pub fn finish_build(&self, b: BuildRef, result: i64, state: &str) -> Result<(), DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let t = now();
        tx.prepare_cached("UPDATE builds SET complete_at = ?2, results = ?3, state_string = ?4 WHERE buildid = ?1")?.execute(
            params![b.buildid, t, result, state],
        )?;
        complete_request(&tx, b.brid, result, t)?;
        tx.commit()?;
        Ok(())
    }

    /// A build that could not finish (worker lost, master restart): the build ends as RETRY and
    /// its request goes back to the queue, or ends as EXCEPTION after `max_attempts`.
    pub fn interrupt_build(
        &self,
        b: BuildRef,
        why: &str,
        max_attempts: u32,
    ) -> Result<Interrupted, DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let outcome = interrupt(&tx, b.buildid, b.brid, why, max_attempts)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// At startup: every build left running by a previous process becomes RETRY.
    pub fn recover(&self, max_attempts: u32) -> Result<Vec<(i64, Interrupted)>, DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let open: Vec<(i64, i64)> = {
            let mut st =
                tx.prepare("SELECT buildid, buildrequestid FROM builds WHERE complete_at IS NULL")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for (buildid, brid) in open {
            out.push((
                brid,
                interrupt(&tx, buildid, brid, "master restarted", max_attempts)?,
            ));
        }
        // Requests claimed without a build row (crash between claim and insert cannot happen in
        // one transaction, but be safe) go back to the queue.
        tx.prepare_cached("UPDATE buildrequests SET claimed_at = NULL WHERE complete = 0 AND claimed_at IS NOT NULL
             AND buildrequestid NOT IN (SELECT buildrequestid FROM builds WHERE complete_at IS NULL)")?.execute(
            [],
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Cancels a request that has not started. Returns false if it is running or finished.
    pub fn cancel_request(&self, brid: i64) -> Result<bool, DbError> {
        let mut c = self.lock();
        let tx = c.transaction()?;
        let n = tx
            .prepare_cached(
                "UPDATE buildrequests SET complete = 1, complete_at = ?2, results = ?3
             WHERE buildrequestid = ?1 AND complete = 0 AND claimed_at IS NULL",
            )?
            .execute(params![brid, now(), results::CANCELLED])?;
        if n > 0 {
            complete_buildset(&tx, brid, now())?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The running build of a request, if any.
    pub fn running_build_of_request(&self, brid: i64) -> Result<Option<i64>, DbError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT buildid FROM builds WHERE buildrequestid = ?1 AND complete_at IS NULL",
                [brid],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn request_uuid(&self, brid: i64) -> Result<Option<String>, DbError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT uuid FROM buildrequests WHERE buildrequestid = ?1",
                [brid],
                |r| r.get(0),
            )
            .optional()?)
    }
}

fn insert_change(tx: &Transaction, ch: &ChangeFields, ssid: i64) -> Result<i64, DbError> {
    let props: Map<String, Value> = ch
        .properties
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::Array(vec![v.clone(), Value::from("Change")]),
            )
        })
        .collect();
    tx.prepare_cached(
        "INSERT INTO changes(author, committer, branch, category, comments, files, project,
            properties, repository, revision, revlink, codebase, when_timestamp, ssid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        ch.author,
        ch.committer,
        ch.branch,
        ch.category,
        ch.comments,
        json(&ch.files),
        ch.project,
        json(&props),
        ch.repository,
        ch.revision,
        ch.revlink,
        ch.codebase,
        ch.when_timestamp,
        ssid
    ])?;
    Ok(tx.last_insert_rowid())
}

fn ensure_builder(c: &rusqlite::Connection, name: &str) -> Result<i64, DbError> {
    c.prepare_cached("INSERT OR IGNORE INTO builders(name) VALUES (?1)")?
        .execute([name])?;
    Ok(c.query_row(
        "SELECT builderid FROM builders WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

fn interrupt(
    tx: &Transaction,
    buildid: i64,
    brid: i64,
    why: &str,
    max_attempts: u32,
) -> Result<Interrupted, DbError> {
    let t = now();
    tx.prepare_cached(
        "UPDATE builds SET complete_at = ?2, results = ?3, state_string = ?4 WHERE buildid = ?1",
    )?
    .execute(params![
        buildid,
        t,
        results::RETRY,
        format!("retry ({why})")
    ])?;
    tx.prepare_cached("UPDATE steps SET complete_at = ?2, results = ?3 WHERE buildid = ?1 AND complete_at IS NULL")?.execute(
        params![buildid, t, results::RETRY],
    )?;
    let attempts: i64 = tx.query_row(
        "SELECT attempts FROM buildrequests WHERE buildrequestid = ?1",
        [brid],
        |r| r.get(0),
    )?;
    if attempts >= max_attempts as i64 {
        complete_request(tx, brid, results::EXCEPTION, t)?;
        Ok(Interrupted::GaveUp)
    } else {
        tx.prepare_cached("UPDATE buildrequests SET claimed_at = NULL WHERE buildrequestid = ?1")?
            .execute([brid])?;
        Ok(Interrupted::Requeued)
    }
}

fn complete_request(tx: &Transaction, brid: i64, result: i64, t: i64) -> Result<(), DbError> {
    tx.prepare_cached("UPDATE buildrequests SET complete = 1, complete_at = ?2, results = ?3 WHERE buildrequestid = ?1")?.execute(
        params![brid, t, result],
    )?;
    complete_buildset(tx, brid, t)
}

const BUILDSET_OF_REQUEST: &str = "SELECT buildsetid FROM buildrequests WHERE buildrequestid = ?1";
/// Open requests and worst result of a buildset (index `buildrequests_buildset`).
pub(super) const BUILDSET_STATE: &str =
    "SELECT SUM(complete = 0), MAX(results) FROM buildrequests WHERE buildsetid = ?1";

/// A buildset is complete when all its requests are; its result is the worst of theirs.
fn complete_buildset(tx: &Transaction, brid: i64, t: i64) -> Result<(), DbError> {
    let bsid: i64 = tx
        .prepare_cached(BUILDSET_OF_REQUEST)?
        .query_row([brid], |r| r.get(0))?;
    let (open, worst): (i64, Option<i64>) = tx
        .prepare_cached(BUILDSET_STATE)?
        .query_row([bsid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if open == 0 {
        tx.prepare_cached(
            "UPDATE buildsets SET complete = 1, complete_at = ?2, results = ?3 WHERE bsid = ?1",
        )?
        .execute(params![bsid, t, worst.unwrap_or(0)])?;
    }
    Ok(())
}

/// The columns `pending_from_row` reads, in its order (`r` = buildrequests, `b` = builders).
const PENDING_COLUMNS: &str = "r.buildrequestid, r.builderid, b.name, r.priority, r.uuid, \
     r.taskname, r.item, r.item_type, r.arch, r.task_key, r.sha, r.properties, r.attempts";

/// One queue row selected with `PENDING_COLUMNS`.
fn pending_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingRequest> {
    let props: String = r.get(11)?;
    Ok(PendingRequest {
        brid: r.get(0)?,
        builderid: r.get(1)?,
        buildername: r.get(2)?,
        priority: r.get(3)?,
        uuid: r.get(4)?,
        taskname: r.get(5)?,
        item: r.get(6)?,
        item_type: r.get(7)?,
        arch: r.get(8)?,
        task_key: r.get(9)?,
        sha: r.get(10)?,
        properties: serde_json::from_str(&props).unwrap_or_default(),
        attempts: r.get(12)?,
    })
}
