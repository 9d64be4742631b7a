//! Schema migrations, applied in order at open time; `PRAGMA user_version` records the last one.
//!
//! The tables follow Buildbot's entity model (changes → buildsets → buildrequests → builds →
//! steps → logs → logchunks; workers; builders), with a few columns of our own on
//! `buildrequests` (the Taskotron job fields, the pinned task commit, attempts).

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
CREATE TABLE builders (
    builderid   INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT
);
CREATE TABLE workers (
    workerid     INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    info         TEXT NOT NULL DEFAULT '{}',
    paused       INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT,
    graceful     INTEGER NOT NULL DEFAULT 0,
    connected    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sourcestamps (
    ssid       INTEGER PRIMARY KEY,
    branch     TEXT NOT NULL DEFAULT '',
    codebase   TEXT NOT NULL DEFAULT '',
    project    TEXT NOT NULL DEFAULT '',
    repository TEXT NOT NULL DEFAULT '',
    revision   TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE TABLE changes (
    changeid       INTEGER PRIMARY KEY,
    author         TEXT NOT NULL DEFAULT '',
    committer      TEXT,
    branch         TEXT NOT NULL DEFAULT '',
    category       TEXT,
    comments       TEXT NOT NULL DEFAULT '',
    files          TEXT NOT NULL DEFAULT '[]',
    project        TEXT NOT NULL DEFAULT '',
    properties     TEXT NOT NULL DEFAULT '{}',
    repository     TEXT NOT NULL DEFAULT '',
    revision       TEXT,
    revlink        TEXT,
    codebase       TEXT NOT NULL DEFAULT '',
    when_timestamp INTEGER NOT NULL,
    ssid           INTEGER NOT NULL REFERENCES sourcestamps(ssid)
);
CREATE TABLE buildsets (
    bsid         INTEGER PRIMARY KEY,
    reason       TEXT NOT NULL DEFAULT '',
    results      INTEGER,
    complete     INTEGER NOT NULL DEFAULT 0,
    complete_at  INTEGER,
    submitted_at INTEGER NOT NULL,
    external_idstring TEXT,
    ssid         INTEGER NOT NULL REFERENCES sourcestamps(ssid),
    changeid     INTEGER REFERENCES changes(changeid)
);
CREATE TABLE buildrequests (
    buildrequestid INTEGER PRIMARY KEY,
    buildsetid   INTEGER NOT NULL REFERENCES buildsets(bsid),
    builderid    INTEGER NOT NULL REFERENCES builders(builderid),
    priority     INTEGER NOT NULL DEFAULT 0,
    claimed_at   INTEGER,
    complete     INTEGER NOT NULL DEFAULT 0,
    complete_at  INTEGER,
    results      INTEGER,
    submitted_at INTEGER NOT NULL,
    properties   TEXT NOT NULL DEFAULT '{}',
    uuid         TEXT NOT NULL UNIQUE,
    taskname     TEXT NOT NULL,
    item         TEXT NOT NULL,
    item_type    TEXT NOT NULL,
    arch         TEXT NOT NULL,
    task_key     TEXT NOT NULL,
    sha          TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX buildrequests_pending ON buildrequests(complete, claimed_at, priority, buildrequestid);
CREATE TABLE builds (
    buildid        INTEGER PRIMARY KEY,
    number         INTEGER NOT NULL,
    builderid      INTEGER NOT NULL REFERENCES builders(builderid),
    buildrequestid INTEGER NOT NULL REFERENCES buildrequests(buildrequestid),
    workerid       INTEGER NOT NULL REFERENCES workers(workerid),
    started_at     INTEGER NOT NULL,
    complete_at    INTEGER,
    results        INTEGER,
    state_string   TEXT NOT NULL DEFAULT '',
    properties     TEXT NOT NULL DEFAULT '{}',
    UNIQUE(builderid, number)
);
CREATE INDEX builds_request ON builds(buildrequestid);
CREATE TABLE steps (
    stepid       INTEGER PRIMARY KEY,
    buildid      INTEGER NOT NULL REFERENCES builds(buildid),
    number       INTEGER NOT NULL,
    name         TEXT NOT NULL,
    started_at   INTEGER,
    complete_at  INTEGER,
    results      INTEGER,
    state_string TEXT NOT NULL DEFAULT '',
    urls         TEXT NOT NULL DEFAULT '[]',
    hidden       INTEGER NOT NULL DEFAULT 0,
    UNIQUE(buildid, number)
);
CREATE TABLE logs (
    logid     INTEGER PRIMARY KEY,
    stepid    INTEGER NOT NULL REFERENCES steps(stepid),
    name      TEXT NOT NULL,
    slug      TEXT NOT NULL,
    type      TEXT NOT NULL DEFAULT 's',
    num_lines INTEGER NOT NULL DEFAULT 0,
    complete  INTEGER NOT NULL DEFAULT 0,
    UNIQUE(stepid, slug)
);
CREATE TABLE logchunks (
    logid      INTEGER NOT NULL REFERENCES logs(logid),
    first_line INTEGER NOT NULL,
    last_line  INTEGER NOT NULL,
    content    TEXT NOT NULL
);
CREATE INDEX logchunks_log ON logchunks(logid, first_line);
"#,
    // 2: indexes for the operators' view (UI listings and search, running builds)
    r#"
CREATE INDEX buildrequests_taskname ON buildrequests(taskname, buildrequestid);
CREATE INDEX buildrequests_item ON buildrequests(item, buildrequestid);
CREATE INDEX builds_running ON builds(workerid) WHERE complete_at IS NULL;
"#,
    // 3: the scheduler's queue head per builder, in dispatch order (priority desc, FIFO), only
    // over pending rows: reading the next few requests stays cheap with 50,000 queued.
    r#"
CREATE INDEX buildrequests_queue ON buildrequests(builderid, priority DESC, buildrequestid)
    WHERE complete = 0 AND claimed_at IS NULL;
"#,
    // 4: log content moves to files under <data_dir>/logs (relative path here); rows without a
    // path are older logs whose content stays in logchunks.
    r#"
ALTER TABLE logs ADD COLUMN path TEXT;
"#,
    // 5: REST listings filtered on these columns (http/api/sql.rs). An index ends in the rowid,
    // so `WHERE col = ? ORDER BY id [DESC] LIMIT n` reads just the page, and the count reads
    // the index. `builds_running_by_id` holds only running builds (`complete=false`).
    r#"
CREATE INDEX builds_builder ON builds(builderid);
CREATE INDEX builds_worker ON builds(workerid);
CREATE INDEX builds_results ON builds(results);
CREATE INDEX builds_running_by_id ON builds(buildid) WHERE complete_at IS NULL;
CREATE INDEX buildrequests_builder ON buildrequests(builderid);
CREATE INDEX buildrequests_complete ON buildrequests(complete);
"#,
    // 6: retention (janitor.rs): when a log's content / a job's artifacts were deleted. The
    // partial indexes list what is still kept, oldest first.
    r#"
ALTER TABLE logs ADD COLUMN pruned_at INTEGER;
ALTER TABLE buildrequests ADD COLUMN artifacts_pruned_at INTEGER;
CREATE INDEX logs_kept ON logs(logid) WHERE pruned_at IS NULL;
CREATE INDEX buildrequests_artifacts_kept ON buildrequests(buildrequestid)
    WHERE artifacts_pruned_at IS NULL AND complete = 1;
"#,
    // 7: finishing a build checks the other requests of its buildset; without this index that
    // read the whole table under the lock (4 ms per finished job at 100,000 requests).
    r#"
CREATE INDEX buildrequests_buildset ON buildrequests(buildsetid);
"#,
];

/// Applies the migrations this database has not seen yet.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
