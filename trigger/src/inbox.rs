//! The inbox: bus messages persisted on receipt, before anything slow happens.
//!
//! The intake ([`crate::intake`]) writes every valid message here (table `inbox` in
//! `trigger.sqlite`, next to the outbox) and goes straight back to reading the bus; the processor
//! ([`crate::process`]) turns inbox rows into jobs at its own pace. A row is removed in the same
//! transaction that records the message's jobs ([`Outbox::commit`]), so a crash between
//! receipt and job creation leaves the message in the inbox and it is processed after the
//! restart.
//!
//! De-duplication happens here, by fedmsg `msg_id`: a message already in the inbox or already
//! handled (`seen`) is not stored again, in one statement, so two copies arriving through two
//! endpoints are processed at most once. The inbox is bounded (`inbox_capacity`): beyond it a
//! message is dropped at our end, visibly (an error line and a metric), instead of letting the
//! publisher drop messages silently because we stopped reading the socket.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::submit::outbox::{Committed, FuseLight, Result};
use crate::submit::{Job, Outbox};

/// A received message, ready to be stored.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub msg_id: String,
    pub topic: Vec<u8>,
    pub body: Vec<u8>,
}

/// What happened to one [`Incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Stored; the processor will handle it.
    Added,
    /// Already in the inbox or already handled.
    Duplicate,
    /// The inbox holds `inbox_capacity` messages: dropped.
    Full,
}

/// A stored message, oldest first by `id`.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub msg_id: String,
    pub topic: Vec<u8>,
    pub body: Vec<u8>,
}

pub struct Inbox {
    store: Arc<Outbox>,
    capacity: i64,
    /// Rows in the table, kept in memory so the bound check costs nothing.
    depth: AtomicI64,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Inbox {
    /// Uses the outbox's database (its schema has the `inbox` table).
    pub fn open(store: Arc<Outbox>, capacity: usize) -> Result<Inbox> {
        let depth: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0))?;
        let inbox = Inbox {
            store,
            capacity: capacity.max(1) as i64,
            depth: AtomicI64::new(depth),
        };
        inbox.publish_depth();
        Ok(inbox)
    }

    /// Messages waiting to be processed.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::SeqCst)
    }

    fn publish_depth(&self) {
        crate::metrics::global().set_inbox_depth(self.depth());
    }

    /// Stores a batch of messages in one transaction (one disk sync for the lot).
    pub fn put(&self, batch: &[Incoming]) -> Result<Vec<Put>> {
        let mut conn = self.store.conn();
        let tx = conn.transaction()?;
        let t = now();
        let mut depth = self.depth();
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO inbox (msg_id, topic, body, received_at)
                 SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM seen WHERE msg_id = ?1)",
            )?;
            let mut known = tx.prepare_cached(
                "SELECT 1 FROM inbox WHERE msg_id = ?1 UNION ALL SELECT 1 FROM seen WHERE msg_id = ?1",
            )?;
            for m in batch {
                if depth >= self.capacity {
                    let dup = known
                        .query_row([&m.msg_id], |_| Ok(()))
                        .optional()?
                        .is_some();
                    out.push(if dup { Put::Duplicate } else { Put::Full });
                    continue;
                }
                if insert.execute(params![m.msg_id, m.topic, m.body, t])? == 1 {
                    depth += 1;
                    out.push(Put::Added);
                } else {
                    out.push(Put::Duplicate);
                }
            }
        }
        tx.commit()?;
        let added = out.iter().filter(|p| **p == Put::Added).count() as i64;
        self.depth.fetch_add(added, Ordering::SeqCst);
        self.publish_depth();
        Ok(out)
    }

    /// Up to `limit` rows with `id > after`, oldest first.
    pub fn after(&self, after: i64, limit: usize) -> Result<Vec<Row>> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, msg_id, topic, body FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(Row {
                id: r.get(0)?,
                msg_id: r.get(1)?,
                topic: r.get(2)?,
                body: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// Finishes a message: jobs and fuses recorded, marked seen, removed from the inbox, in
    /// one transaction.
    pub fn finish(
        &self,
        msg_id: &str,
        jobs: &[Job],
        fuses: &[FuseLight],
        fuse_delay: f64,
    ) -> Result<Committed> {
        let done = self.store.commit(msg_id, jobs, fuses, fuse_delay)?;
        if done.from_inbox {
            self.depth.fetch_sub(1, Ordering::SeqCst);
            self.publish_depth();
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Incoming {
        Incoming {
            msg_id: id.into(),
            topic: b"t".to_vec(),
            body: format!("{{\"msg_id\":\"{id}\"}}").into_bytes(),
        }
    }

    fn open(dir: &std::path::Path, capacity: usize) -> Inbox {
        let store = Arc::new(Outbox::open(&dir.join("t.sqlite"), 100).unwrap());
        Inbox::open(store, capacity).unwrap()
    }

    #[test]
    fn a_msg_id_is_stored_once_and_not_again_after_it_was_handled() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = open(dir.path(), 10);
        // The same message through two endpoints, in one batch and in a later one.
        assert_eq!(
            inbox.put(&[msg("a"), msg("b"), msg("a")]).unwrap(),
            [Put::Added, Put::Added, Put::Duplicate]
        );
        assert_eq!(inbox.put(&[msg("b")]).unwrap(), [Put::Duplicate]);
        assert_eq!(inbox.depth(), 2);
        let rows = inbox.after(0, 10).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.msg_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(inbox.after(rows[0].id, 10).unwrap().len(), 1);

        let done = inbox.finish("a", &[], &[], 0.0).unwrap();
        assert!(done.from_inbox);
        assert_eq!(inbox.depth(), 1);
        // Handled: a late copy is a duplicate, not a second run.
        assert_eq!(inbox.put(&[msg("a")]).unwrap(), [Put::Duplicate]);
        assert_eq!(inbox.depth(), 1);
        // Finishing a message twice (replay, or a crash after commit) changes nothing.
        assert!(!inbox.finish("a", &[], &[], 0.0).unwrap().from_inbox);
        assert_eq!(inbox.depth(), 1);
    }

    #[test]
    fn the_inbox_is_bounded_and_its_rows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let inbox = open(dir.path(), 3);
            let got = inbox
                .put(&[msg("1"), msg("2"), msg("3"), msg("4"), msg("2")])
                .unwrap();
            assert_eq!(
                got,
                [
                    Put::Added,
                    Put::Added,
                    Put::Added,
                    Put::Full,
                    Put::Duplicate
                ]
            );
            assert_eq!(inbox.put(&[msg("5")]).unwrap(), [Put::Full]);
            inbox.finish("1", &[], &[], 0.0).unwrap();
            assert_eq!(inbox.put(&[msg("5")]).unwrap(), [Put::Added]);
        }
        // After a restart the unprocessed messages are still there, oldest first, and the
        // bound still holds.
        let inbox = open(dir.path(), 3);
        assert_eq!(inbox.depth(), 3);
        assert_eq!(
            inbox
                .after(0, 10)
                .unwrap()
                .iter()
                .map(|r| r.msg_id.as_str())
                .collect::<Vec<_>>(),
            ["2", "3", "5"]
        );
        assert_eq!(inbox.put(&[msg("6")]).unwrap(), [Put::Full]);
    }
}
