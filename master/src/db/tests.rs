//! Queue semantics on a real SQLite file: priority then FIFO, duplicate uuid refused,
//! collapse, claim once, retry up to max_attempts then EXCEPTION, recovery after a restart,
//! cancel, and Buildbot's reply shapes.

use serde_json::{json, Map};

use super::*;

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("m.sqlite")).unwrap();
    (dir, db)
}

fn req(uuid: &str, item: &str, priority: i64, collapse: bool) -> NewRequest {
    NewRequest {
        builder: "x86_64".into(),
        priority,
        reason: "test".into(),
        change: Some(ChangeFields {
            project: "rpmcheck".into(),
            when_timestamp: 1,
            ..Default::default()
        }),
        properties: Map::new(),
        uuid: uuid.into(),
        taskname: "rpmlint".into(),
        item: item.into(),
        item_type: "koji_build".into(),
        arch: "x86_64".into(),
        task_key: "rpmlint".into(),
        sha: "0".repeat(40),
        collapse,
    }
}

#[test]
fn priority_then_fifo_and_duplicate_uuid() {
    let (_d, db) = db();
    db.submit(&req("a", "i1", 0, false)).unwrap();
    db.submit(&req("b", "i2", 5, false)).unwrap();
    db.submit(&req("c", "i3", 0, false)).unwrap();
    let order: Vec<String> = db
        .pending_requests()
        .unwrap()
        .into_iter()
        .map(|r| r.uuid)
        .collect();
    assert_eq!(order, ["b", "a", "c"]);
    assert!(matches!(
        db.submit(&req("a", "other", 0, false)),
        Err(SubmitError::DuplicateUuid(_))
    ));
    // Each submission got its own sourcestamp (one change, one build).
    let sets = db.buildsets_json(&Filter::default()).unwrap();
    let ssids: std::collections::HashSet<i64> = sets
        .iter()
        .map(|s| s["sourcestamps"][0]["ssid"].as_i64().unwrap())
        .collect();
    assert_eq!(ssids.len(), 3);
}

#[test]
fn collapse_merges_identical_pending_requests() {
    let (_d, db) = db();
    let a = db.submit(&req("a", "same", 0, true)).unwrap();
    let b = db.submit(&req("b", "same", 0, true)).unwrap();
    assert!(b.collapsed);
    assert_eq!(a.brid, b.brid);
    let c = db.submit(&req("c", "different", 0, true)).unwrap();
    assert!(!c.collapsed);
    assert_eq!(db.pending_requests().unwrap().len(), 2);
}

#[test]
fn claim_once_retry_then_exception() {
    let (_d, db) = db();
    let s = db.submit(&req("a", "i", 0, false)).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    let b1 = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    assert!(
        db.start_build(s.brid, w, &Map::new()).unwrap().is_none(),
        "claimed only once"
    );
    assert!(db.pending_requests().unwrap().is_empty());
    assert_eq!(
        db.interrupt_build(b1, "lost", 2).unwrap(),
        Interrupted::Requeued
    );
    assert_eq!(db.pending_requests().unwrap().len(), 1, "back in the queue");
    let b2 = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    assert_eq!(b2.number, 2);
    assert_eq!(
        db.interrupt_build(b2, "lost", 2).unwrap(),
        Interrupted::GaveUp
    );
    let br = db
        .buildrequests_json(&Filter::by("buildrequestid", s.brid))
        .unwrap();
    assert_eq!(br[0]["results"], results::EXCEPTION);
    assert_eq!(br[0]["complete"], true);
    let builds = db.builds_json(&Filter::default(), false).unwrap();
    assert!(builds.iter().all(|b| b["results"] == results::RETRY));
}

#[test]
fn recover_turns_running_builds_into_retry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let brid = {
        let db = Db::open(&path).unwrap();
        let s = db.submit(&req("a", "i", 0, false)).unwrap();
        let w = db.ensure_worker("w1").unwrap();
        db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
        db.submit(&req("b", "j", 0, false)).unwrap();
        s.brid
    };
    let db = Db::open(&path).unwrap();
    let out = db.recover(3).unwrap();
    assert_eq!(out, vec![(brid, Interrupted::Requeued)]);
    assert_eq!(
        db.pending_requests().unwrap().len(),
        2,
        "both requests queued again"
    );
    assert_eq!(
        db.builds_json(&Filter::default(), false).unwrap()[0]["results"],
        results::RETRY
    );
}

#[test]
fn cancel_only_queued_and_finish_completes_buildset() {
    let (_d, db) = db();
    let a = db.submit(&req("a", "i", 0, false)).unwrap();
    let b = db.submit(&req("b", "j", 0, false)).unwrap();
    assert!(db.cancel_request(a.brid).unwrap());
    let w = db.ensure_worker("w1").unwrap();
    let build = db.start_build(b.brid, w, &Map::new()).unwrap().unwrap();
    assert!(
        !db.cancel_request(b.brid).unwrap(),
        "running requests are stopped, not cancelled"
    );
    db.finish_build(build, results::SUCCESS, "build successful")
        .unwrap();
    let sets = db.buildsets_json(&Filter::default()).unwrap();
    assert_eq!(sets[0]["results"], results::CANCELLED);
    assert_eq!(sets[1]["results"], results::SUCCESS);
    assert_eq!(sets[1]["complete"], true);
}

#[test]
fn logs_keep_buildbot_prefixes_and_line_counts() {
    let (_d, db) = db();
    let s = db.submit(&req("a", "i", 0, false)).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    let b = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    let step = db.add_step(b.buildid, 0, "runtask").unwrap();
    let mut log = db.add_log(step, "taskotron.log").unwrap();
    let logid = log.logid;
    db.append_log(&mut log, "ohello\nebad\n").unwrap();
    db.append_log(&mut log, "hprogram finished with exit code 0\n")
        .unwrap();
    // Readable while the log is still being written.
    assert_eq!(
        db.log_lines(logid, 1, 10).unwrap(),
        (
            vec![
                "ebad".to_string(),
                "hprogram finished with exit code 0".into()
            ],
            false
        )
    );
    db.finish_log(log).unwrap();
    let logs = db.logs_json(&Filter::by("stepid", step)).unwrap();
    assert_eq!(logs[0]["slug"], "taskotron_log");
    assert_eq!(logs[0]["num_lines"], 3);
    assert_eq!(logs[0]["complete"], true);
    assert_eq!(
        db.log_content(logid).unwrap(),
        "ohello\nebad\nhprogram finished with exit code 0\n"
    );
    assert!(db.log_lines(logid, 2, 10).unwrap().1, "complete");
    // A small log stays inline: no file for it.
    assert!(!_d.path().join("logs").exists());
    let changes = db.changes_json(&Filter::default()).unwrap();
    assert_eq!(changes[0]["sourcestamp"]["project"], "rpmcheck");
    assert_eq!(changes[0]["properties"], json!({}));
}

#[test]
fn logs_left_open_by_a_crash_get_their_real_line_count() {
    let (_d, db) = db();
    let s = db.submit(&req("a", "i", 0, false)).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    let b = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    let step = db.add_step(b.buildid, 0, "runtask").unwrap();
    let mut log = db.add_log(step, "stdio").unwrap();
    let logid = log.logid;
    let text: String = (0..3000).map(|i| format!("oline {i}\n")).collect();
    db.append_log(&mut log, &text).unwrap();
    db.append_log(&mut log, &text).unwrap();
    db.append_log(&mut log, &text).unwrap();
    assert!(log.file().is_some(), "past SPILL_BYTES: a file");
    let mut small = db.add_log(step, "small").unwrap();
    db.append_log(&mut small, "ohi\n").unwrap();
    drop((log, small)); // the master died: no finish_log
    assert_eq!(db.close_abandoned_logs().unwrap(), 2);
    let logs = db.logs_json(&Filter::by("logid", logid)).unwrap();
    assert_eq!(logs[0]["num_lines"], 9000);
    assert_eq!(logs[0]["complete"], true);
    assert_eq!(db.close_abandoned_logs().unwrap(), 0);
}

#[test]
fn logs_from_before_the_file_store_are_still_readable() {
    let (_d, db) = db();
    let s = db.submit(&req("a", "i", 0, false)).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    let b = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    let step = db.add_step(b.buildid, 0, "runtask").unwrap();
    let logid = {
        let c = db.lock();
        c.execute(
            "INSERT INTO logs(stepid, name, slug, num_lines, complete) VALUES (?1, 'stdio', 'stdio', 3, 1)",
            [step],
        )
        .unwrap();
        let logid = c.last_insert_rowid();
        c.execute(
            "INSERT INTO logchunks(logid, first_line, last_line, content) VALUES (?1, 0, 1, 'oa\nob\n'), (?1, 2, 2, 'hc\n')",
            [logid],
        )
        .unwrap();
        logid
    };
    assert_eq!(db.log_content(logid).unwrap(), "oa\nob\nhc\n");
    assert_eq!(
        db.log_lines(logid, 1, 10).unwrap(),
        (vec!["ob".to_string(), "hc".into()], true)
    );
}

/// The janitor (retention): only finished jobs past the horizon lose their log content and
/// artifacts; a dry run deletes nothing; rows stay, marked; a second pass finds nothing.
#[test]
fn janitor_prunes_only_finished_jobs_past_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("master.yaml");
    let cfg = crate::config::Config::parse(
        &cfg_path,
        &format!(
            "data_dir: {}\nretention: {{logs_days: 30, artifacts_days: 60}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let db = Db::open(&cfg.db_path()).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    // Jobs "old" (ended 90 days ago), "mid" (45 days), "new" (now), "running" (no end).
    let mut logs = std::collections::HashMap::new();
    for (uuid, ended_days_ago) in [
        ("old", Some(90)),
        ("mid", Some(45)),
        ("new", Some(0)),
        ("running", None),
    ] {
        let s = db.submit(&req(uuid, uuid, 0, false)).unwrap();
        let b = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
        let step = db.add_step(b.buildid, 0, "runtask").unwrap();
        // "old" and "new" grow into files, "mid" and "running" stay inline.
        let mut log = db.add_log(step, "stdio").unwrap();
        let big = matches!(uuid, "old" | "new");
        let line = if big {
            "o".repeat(70_000)
        } else {
            "oline".into()
        };
        db.append_log(&mut log, &format!("{line}\n")).unwrap();
        assert_eq!(log.file().is_some(), big);
        logs.insert(uuid, (log.logid, log.file().map(|p| p.to_path_buf())));
        db.finish_log(log).unwrap();
        std::fs::create_dir_all(cfg.artifacts_dir().join(uuid).join("taskotron")).unwrap();
        std::fs::write(
            cfg.artifacts_dir().join(uuid).join("taskotron/results.yml"),
            "x",
        )
        .unwrap();
        if let Some(days) = ended_days_ago {
            db.finish_build(b, results::SUCCESS, "ok").unwrap();
            let t = now() - days * 86_400;
            let c = db.lock();
            c.execute(
                "UPDATE builds SET complete_at = ?1 WHERE buildid = ?2",
                rusqlite::params![t, b.buildid],
            )
            .unwrap();
            c.execute(
                "UPDATE buildrequests SET complete_at = ?1 WHERE buildrequestid = ?2",
                rusqlite::params![t, b.brid],
            )
            .unwrap();
        }
    }
    let dry = crate::janitor::prune(&db, &cfg, now(), true).unwrap();
    assert_eq!(
        (dry.logs, dry.artifacts),
        (2, 1),
        "logs of old+mid, artifacts of old"
    );
    assert!(dry.log_bytes > 0 && dry.artifact_bytes == 1);
    assert!(
        logs["old"].1.as_ref().unwrap().exists(),
        "a dry run deletes nothing"
    );

    let done = crate::janitor::prune(&db, &cfg, now(), false).unwrap();
    assert_eq!(done, dry, "the real pass does what the dry run said");
    for (uuid, gone) in [
        ("old", true),
        ("mid", true),
        ("new", false),
        ("running", false),
    ] {
        let (logid, path) = &logs[uuid];
        if let Some(path) = path {
            assert_eq!(!path.exists(), gone, "{uuid} log file");
        }
        assert_eq!(
            db.log_pruned_at(*logid).unwrap().is_some(),
            gone,
            "{uuid} marked"
        );
        let content = db.log_content(*logid).unwrap();
        assert_eq!(content.is_empty(), gone, "{uuid} content");
        let row = db.logs_json(&Filter::by("logid", *logid)).unwrap();
        assert_eq!(
            row[0]["num_lines"], 1,
            "{uuid}: the row and its history stay"
        );
    }
    assert!(
        !logs["old"].1.as_ref().unwrap().parent().unwrap().exists(),
        "empty job log dir removed"
    );
    for (uuid, gone) in [
        ("old", true),
        ("mid", false),
        ("new", false),
        ("running", false),
    ] {
        assert_eq!(
            !cfg.artifacts_dir().join(uuid).exists(),
            gone,
            "{uuid} artifacts"
        );
    }
    assert_eq!(
        crate::janitor::prune(&db, &cfg, now(), false).unwrap(),
        crate::janitor::Report::default(),
        "nothing left to do"
    );
}

/// Finishing a build reads its buildset's requests through an index, not the whole table
/// (that scan cost 4 ms per finished job at 100,000 requests).
#[test]
fn finishing_a_build_does_not_scan_the_requests() {
    let (_d, db) = db();
    let c = db.lock();
    let plan: Vec<String> = c
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            super::write::BUILDSET_STATE
        ))
        .unwrap()
        .query_map([1], |r| r.get::<_, String>(3))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("buildrequests_buildset")),
        "{plan:?}"
    );
}

/// A log starts inline and moves to its file past SPILL_BYTES; readers see every line at every
/// stage, the chunks are gone after the move, and appends continue in the file.
#[test]
fn a_growing_log_moves_from_sqlite_to_a_file_without_losing_a_line() {
    let (_d, db) = db();
    let s = db.submit(&req("grow", "i", 0, false)).unwrap();
    let w = db.ensure_worker("w1").unwrap();
    let b = db.start_build(s.brid, w, &Map::new()).unwrap().unwrap();
    let step = db.add_step(b.buildid, 0, "runtask").unwrap();
    let mut log = db.add_log(step, "stdio").unwrap();
    let mut all = Vec::new();
    let mut i = 0;
    while all.len() < 5000 {
        let chunk: Vec<String> = (0..100)
            .map(|k| format!("oline {} {}", i * 100 + k, "x".repeat(20)))
            .collect();
        db.append_log(&mut log, &(chunk.join("\n") + "\n")).unwrap();
        all.extend(chunk);
        i += 1;
        let (lines, _) = db.log_lines(log.logid, 0, usize::MAX).unwrap();
        assert_eq!(
            lines,
            all,
            "after {} lines (file: {:?})",
            all.len(),
            log.file()
        );
    }
    let file = log.file().expect("moved to a file").to_path_buf();
    let chunks: i64 = db
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM logchunks WHERE logid = ?1",
            [log.logid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(chunks, 0, "inline chunks dropped after the move");
    let logid = log.logid;
    db.finish_log(log).unwrap();
    assert_eq!(
        db.logs_json(&Filter::by("logid", logid)).unwrap()[0]["num_lines"],
        5000
    );
    let text: String = all.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    assert_eq!(db.log_content(logid).unwrap(), text);
    // A second command logging to the same name continues the same file.
    let mut again = db.add_log(step, "stdio").unwrap();
    assert_eq!(again.lines(), 5000);
    db.append_log(&mut again, "onext").unwrap();
    assert_eq!(db.log_lines(logid, 5000, 10).unwrap().0, ["onext"]);
}
