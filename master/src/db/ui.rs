//! Read queries for the operators' view (web UI, `/api/ops`, metrics): job listings with their
//! latest build, one job's detail, log lines from a position. Every listing is paginated and
//! served by an index (migration 2 in `schema.rs`), so pages stay fast with 100,000 builds.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{Db, DbError};

/// A job (build request) with its latest build, as listed by the UI and `jobs list`.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub brid: i64,
    pub uuid: String,
    pub taskname: String,
    pub item: String,
    pub item_type: String,
    pub arch: String,
    pub builder: String,
    pub priority: i64,
    pub submitted_at: i64,
    pub attempts: i64,
    /// `pending`, `running` or `finished`.
    pub state: &'static str,
    /// Result of the request (Buildbot code) once finished.
    pub results: Option<i64>,
    pub complete_at: Option<i64>,
    pub buildid: Option<i64>,
    pub build_number: Option<i64>,
    pub started_at: Option<i64>,
    pub state_string: Option<String>,
    pub worker: Option<String>,
}

/// Which jobs a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Finished,
    All,
}

impl JobState {
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "pending" | "queued" => JobState::Pending,
            "running" => JobState::Running,
            "finished" | "complete" | "done" => JobState::Finished,
            "all" | "" => JobState::All,
            _ => return None,
        })
    }
}

/// A page request: newest first, `before` a build request id (keyset pagination), optional
/// search by exact task name or item prefix.
#[derive(Debug, Clone)]
pub struct JobQuery {
    pub state: JobState,
    pub search: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

const JOB_COLUMNS: &str =
    "r.buildrequestid, r.uuid, r.taskname, r.item, r.item_type, r.arch, bl.name,
    r.priority, r.submitted_at, r.attempts, r.complete, r.claimed_at, r.results, r.complete_at,
    b.buildid, b.number, b.started_at, b.state_string, w.name";

const JOB_JOINS: &str = "FROM buildrequests r
    JOIN builders bl ON bl.builderid = r.builderid
    LEFT JOIN builds b ON b.buildid = (SELECT MAX(buildid) FROM builds WHERE buildrequestid = r.buildrequestid)
    LEFT JOIN workers w ON w.workerid = b.workerid";

fn job_row(r: &Row) -> rusqlite::Result<JobRow> {
    let complete: i64 = r.get(10)?;
    let claimed: Option<i64> = r.get(11)?;
    Ok(JobRow {
        brid: r.get(0)?,
        uuid: r.get(1)?,
        taskname: r.get(2)?,
        item: r.get(3)?,
        item_type: r.get(4)?,
        arch: r.get(5)?,
        builder: r.get(6)?,
        priority: r.get(7)?,
        submitted_at: r.get(8)?,
        attempts: r.get(9)?,
        state: match (complete != 0, claimed.is_some()) {
            (true, _) => "finished",
            (false, true) => "running",
            (false, false) => "pending",
        },
        results: r.get(12)?,
        complete_at: r.get(13)?,
        buildid: r.get(14)?,
        build_number: r.get(15)?,
        started_at: r.get(16)?,
        state_string: r.get(17)?,
        worker: r.get(18)?,
    })
}

/// `GLOB` pattern matching strings that start with `s` (GLOB's metacharacters escaped), so
/// SQLite can answer it from the `item` index.
fn glob_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out.push('*');
    out
}

/// One step of a build with its logs, for the job page.
#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    pub stepid: i64,
    pub number: i64,
    pub name: String,
    pub started_at: Option<i64>,
    pub complete_at: Option<i64>,
    pub results: Option<i64>,
    pub state_string: String,
    pub logs: Vec<LogInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogInfo {
    pub logid: i64,
    pub name: String,
    pub slug: String,
    pub num_lines: i64,
    pub complete: bool,
}

/// One attempt at running a job.
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub buildid: i64,
    pub number: i64,
    pub worker: String,
    pub started_at: i64,
    pub complete_at: Option<i64>,
    pub results: Option<i64>,
    pub state_string: String,
    pub steps: Vec<StepInfo>,
}

/// A log with where it belongs, for the log page.
#[derive(Debug, Clone, Serialize)]
pub struct LogContext {
    pub log: LogInfo,
    pub step: String,
    pub buildid: i64,
    pub brid: i64,
    pub uuid: String,
}

impl Db {
    /// Pending requests by arch (the queue depth metric).
    pub fn queue_depth_by_arch(&self) -> Result<Vec<(String, i64)>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT arch, COUNT(*) FROM buildrequests WHERE complete = 0 AND claimed_at IS NULL
             GROUP BY arch ORDER BY arch",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending requests in dispatch order (priority, then oldest first), at most `limit`.
    pub fn queued_jobs(&self, limit: i64) -> Result<Vec<JobRow>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} {JOB_JOINS}
             WHERE r.complete = 0 AND r.claimed_at IS NULL
             ORDER BY r.priority DESC, r.buildrequestid ASC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A page of jobs, newest first.
    ///
    /// Written so SQLite walks an index in `buildrequestid` order and stops after `limit`
    /// rows: finished/all pages scan the table backwards by rowid (`+r.complete` keeps the
    /// planner off the pending index, which would mean sorting every finished job), and a
    /// search takes the newest `limit` matches from the task-name index and from the item
    /// index separately, then merges them.
    pub fn jobs(&self, q: &JobQuery) -> Result<Vec<JobRow>, DbError> {
        let state = match q.state {
            JobState::Pending => "r.complete = 0 AND r.claimed_at IS NULL",
            JobState::Running => "r.complete = 0 AND r.claimed_at IS NOT NULL",
            JobState::Finished => "+r.complete = 1",
            JobState::All => "1",
        };
        let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let sql = match search {
            None => format!(
                "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid < ?1 AND {state}
                 ORDER BY r.buildrequestid DESC LIMIT ?2"
            ),
            Some(_) => format!(
                "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid IN (
                    SELECT buildrequestid FROM (SELECT r.buildrequestid FROM buildrequests r
                        WHERE r.taskname = ?3 AND r.buildrequestid < ?1 AND {state}
                        ORDER BY r.buildrequestid DESC LIMIT ?2)
                    UNION
                    SELECT buildrequestid FROM (SELECT r.buildrequestid FROM buildrequests r
                        WHERE r.item GLOB ?4 AND r.buildrequestid < ?1 AND {state}
                        ORDER BY r.buildrequestid DESC LIMIT ?2))
                 ORDER BY r.buildrequestid DESC LIMIT ?2"
            ),
        };
        let before = q.before.unwrap_or(i64::MAX);
        let limit = q.limit.clamp(1, 500);
        let c = self.lock();
        let mut st = c.prepare_cached(&sql)?;
        let rows = match search {
            Some(s) => st.query_map(params![before, limit, s, glob_prefix(s)], job_row)?,
            None => st.query_map(params![before, limit], job_row)?,
        };
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts for the queue page header: (pending, running).
    pub fn job_counts(&self) -> Result<(i64, i64), DbError> {
        let c = self.lock();
        Ok(c.query_row(
            "SELECT SUM(claimed_at IS NULL), SUM(claimed_at IS NOT NULL) FROM buildrequests
             WHERE complete = 0",
            [],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                    r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                ))
            },
        )?)
    }

    pub fn job(&self, brid: i64) -> Result<Option<JobRow>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid = ?1"
        ))?;
        Ok(st.query_row([brid], job_row).optional()?)
    }

    pub fn job_by_uuid(&self, uuid: &str) -> Result<Option<i64>, DbError> {
        let c = self.lock();
        Ok(c.query_row(
            "SELECT buildrequestid FROM buildrequests WHERE uuid = ?1",
            [uuid],
            |r| r.get(0),
        )
        .optional()?)
    }

    /// The request's properties `{name: [value, source]}`.
    pub fn job_properties(&self, brid: i64) -> Result<Value, DbError> {
        let c = self.lock();
        let s: Option<String> = c
            .query_row(
                "SELECT properties FROM buildrequests WHERE buildrequestid = ?1",
                [brid],
                |r| r.get(0),
            )
            .optional()?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null))
    }

    /// Every build of a request (oldest first) with steps and logs.
    pub fn job_builds(&self, brid: i64) -> Result<Vec<BuildInfo>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT b.buildid, b.number, w.name, b.started_at, b.complete_at, b.results, b.state_string
             FROM builds b JOIN workers w ON w.workerid = b.workerid
             WHERE b.buildrequestid = ?1 ORDER BY b.buildid",
        )?;
        let mut builds: Vec<BuildInfo> = st
            .query_map([brid], |r| {
                Ok(BuildInfo {
                    buildid: r.get(0)?,
                    number: r.get(1)?,
                    worker: r.get(2)?,
                    started_at: r.get(3)?,
                    complete_at: r.get(4)?,
                    results: r.get(5)?,
                    state_string: r.get(6)?,
                    steps: vec![],
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut steps = c.prepare_cached(
            "SELECT stepid, number, name, started_at, complete_at, results, state_string FROM steps
             WHERE buildid = ?1 ORDER BY number",
        )?;
        let mut logs = c.prepare_cached(
            "SELECT logid, name, slug, num_lines, complete FROM logs WHERE stepid = ?1 ORDER BY logid",
        )?;
        for b in builds.iter_mut() {
            b.steps = steps
                .query_map([b.buildid], |r| {
                    Ok(StepInfo {
                        stepid: r.get(0)?,
                        number: r.get(1)?,
                        name: r.get(2)?,
                        started_at: r.get(3)?,
                        complete_at: r.get(4)?,
                        results: r.get(5)?,
                        state_string: r.get(6)?,
                        logs: vec![],
                    })
                })?
                .collect::<Result<_, _>>()?;
            for s in b.steps.iter_mut() {
                s.logs = logs
                    .query_map([s.stepid], log_info)?
                    .collect::<Result<_, _>>()?;
            }
        }
        Ok(builds)
    }

    pub fn log_info(&self, logid: i64) -> Result<Option<LogContext>, DbError> {
        let c = self.lock();
        let mut st = c.prepare_cached(
            "SELECT l.logid, l.name, l.slug, l.num_lines, l.complete, s.name, b.buildid,
                    b.buildrequestid, r.uuid
             FROM logs l JOIN steps s ON s.stepid = l.stepid JOIN builds b ON b.buildid = s.buildid
             JOIN buildrequests r ON r.buildrequestid = b.buildrequestid WHERE l.logid = ?1",
        )?;
        Ok(st
            .query_row([logid], |r| {
                Ok(LogContext {
                    log: log_info(r)?,
                    step: r.get(5)?,
                    buildid: r.get(6)?,
                    brid: r.get(7)?,
                    uuid: r.get(8)?,
                })
            })
            .optional()?)
    }
}

fn log_info(r: &Row) -> rusqlite::Result<LogInfo> {
    Ok(LogInfo {
        logid: r.get(0)?,
        name: r.get(1)?,
        slug: r.get(2)?,
        num_lines: r.get(3)?,
        complete: r.get::<_, i64>(4)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_prefix_escapes_metacharacters() {
        assert_eq!(glob_prefix("bash-5.0"), "bash-5.0*");
        assert_eq!(glob_prefix("a*b?[c"), "a[*]b[?][[]c*");
    }

    /// The listing queries must be answered from indexes, not by scanning every request.
    #[test]
    fn listing_queries_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite")).unwrap();
        let c = db.lock();
        let plan = |sql: &str| -> String {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect::<Vec<_>>();
            rows.join("\n")
        };
        let search = plan(&format!(
            "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid IN (
                SELECT buildrequestid FROM (SELECT r.buildrequestid FROM buildrequests r
                    WHERE r.taskname = 'x' AND r.buildrequestid < 10 ORDER BY r.buildrequestid DESC LIMIT 50)
                UNION
                SELECT buildrequestid FROM (SELECT r.buildrequestid FROM buildrequests r
                    WHERE r.item GLOB 'x*' AND r.buildrequestid < 10 ORDER BY r.buildrequestid DESC LIMIT 50))
             ORDER BY r.buildrequestid DESC LIMIT 50"
        ));
        assert!(search.contains("buildrequests_taskname"), "{search}");
        assert!(search.contains("buildrequests_item"), "{search}");
        let finished = plan(&format!(
            "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid < 10 AND +r.complete = 1
             ORDER BY r.buildrequestid DESC LIMIT 50"
        ));
        assert!(!finished.contains("USE TEMP B-TREE"), "{finished}");
        let latest = plan(&format!(
            "SELECT {JOB_COLUMNS} {JOB_JOINS} WHERE r.buildrequestid < 10
             ORDER BY r.buildrequestid DESC LIMIT 50"
        ));
        assert!(latest.contains("builds_request"), "{latest}");
        assert!(!latest.contains("USE TEMP B-TREE"), "{latest}");
        let running = plan("SELECT COUNT(*) FROM builds WHERE complete_at IS NULL");
        assert!(running.contains("builds_running"), "{running}");
    }
}
