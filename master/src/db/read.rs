//! Read queries that return rows in the JSON shapes of Buildbot's data API v2
//! (reference/buildbot.md §3.2, tests/fixtures/buildbot/api_samples/). Shared by the REST API
//! and anything else that shows state (UI, metrics).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Row};
use serde_json::{json, Value};

use super::catalog::{self, Entity};
use super::{Db, DbError};

/// The master id every row reports (one master per database).
pub const MASTERID: i64 = 1;

/// An optional `WHERE` restriction on a listing: `(column, value)` pairs joined with AND.
#[derive(Default, Clone)]
pub struct Filter(pub Vec<(&'static str, i64)>);

impl Filter {
    pub fn by(col: &'static str, v: i64) -> Filter {
        Filter(vec![(col, v)])
    }
}

/// A listing's SQL restriction, order and window, made by `http/api/sql.rs` from a REST query.
/// `conds` (ANDed) and `order` hold only expressions from `catalog.rs` and `?` placeholders,
/// whose values are `args`, in order. The default is every row in the natural order.
#[derive(Default, Clone, Debug)]
pub struct Page {
    pub conds: Vec<String>,
    pub args: Vec<SqlValue>,
    /// `(expression, descending)`, before the entity's natural order.
    pub order: Vec<(&'static str, bool)>,
    pub limit: Option<i64>,
    pub offset: i64,
}

/// A page of rows and how many rows matched before the window (`meta.total`).
pub type Listing = (Vec<Value>, usize);

/// A listing's two statements: the rows (`LIMIT ? OFFSET ?` bound after `args`) and the count.
struct ListingSql {
    rows: String,
    count: String,
    args: Vec<SqlValue>,
}

impl ListingSql {
    fn new(entity: &Entity, select: &str, filter: &Filter, page: &Page) -> ListingSql {
        let mut conds: Vec<String> = filter.0.iter().map(|(c, _)| format!("{c} = ?")).collect();
        conds.extend(page.conds.iter().map(|c| format!("({c})")));
        let mut args: Vec<SqlValue> = filter.0.iter().map(|(_, v)| (*v).into()).collect();
        args.extend(page.args.iter().cloned());
        let cond = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let mut order: Vec<String> = page
            .order
            .iter()
            .map(|(e, desc)| format!("{e} {}", if *desc { "DESC" } else { "ASC" }))
            .collect();
        // Ties keep the natural order (the in-memory sort was stable over it).
        for e in entity.base_order {
            if !page.order.iter().any(|(o, _)| o == e) {
                order.push(e.to_string());
            }
        }
        let table = entity.table;
        ListingSql {
            rows: format!(
                "SELECT {select} FROM {table}{cond} ORDER BY {} LIMIT ? OFFSET ?",
                order.join(", ")
            ),
            count: format!("SELECT COUNT(*) FROM {table}{cond}"),
            args,
        }
    }
}

fn parse_json(s: Option<String>) -> Value {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// Builders and workers are a handful of rows: their REST listings stay in memory, so they
/// need no field whitelist in `catalog.rs`.
const BUILDERS: Entity = Entity {
    table: "builders",
    fields: &[],
    base_order: &["builderid"],
};
const WORKERS: Entity = Entity {
    table: "workers",
    fields: &[],
    base_order: &["workerid"],
};

fn opt_bool(v: Option<i64>) -> bool {
    v.unwrap_or(0) != 0
}

impl Db {
    /// Rows of `entity.table` (columns `select`) matching `filter` and `page`, in the page's
    /// order then the entity's natural order, and how many match before the window (the
    /// REST `meta.total`). The count is a second query only when there is a window.
    fn rows(
        &self,
        entity: &Entity,
        select: &str,
        filter: &Filter,
        page: &Page,
        f: impl Fn(&Row) -> rusqlite::Result<Value>,
    ) -> Result<(Vec<Value>, usize), DbError> {
        let sql = ListingSql::new(entity, select, filter, page);
        let c = self.lock();
        // Not prepare_cached: listing SQL varies with the query and would evict the writers'
        // hot statements from the cache.
        let mut st = c.prepare(&sql.rows)?;
        let mut args = sql.args.clone();
        args.push(page.limit.unwrap_or(-1).into());
        args.push(page.offset.into());
        let rows: Vec<Value> = st
            .query_map(params_from_iter(args), |r| f(r))?
            .collect::<Result<_, _>>()?;
        let total = if page.limit.is_some() || page.offset > 0 {
            let n: i64 = c
                .prepare(&sql.count)?
                .query_row(params_from_iter(sql.args), |r| r.get(0))?;
            n as usize
        } else {
            rows.len()
        };
        Ok((rows, total))
    }

    /// SQLite's `EXPLAIN QUERY PLAN` of a listing's row query and count query.
    #[cfg(test)]
    pub fn explain_listing(
        &self,
        entity: &Entity,
        filter: &Filter,
        page: &Page,
    ) -> Result<(String, String), DbError> {
        let sql = ListingSql::new(entity, "*", filter, page);
        let c = self.lock();
        let explain = |q: &str, args: Vec<SqlValue>| -> Result<String, DbError> {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {q}"))?;
            let lines = st
                .query_map(params_from_iter(args), |r| r.get::<_, String>(3))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(lines.join("\n"))
        };
        let mut args = sql.args.clone();
        args.extend([SqlValue::Integer(10), SqlValue::Integer(0)]);
        Ok((
            explain(&sql.rows, args)?,
            explain(&sql.count, sql.args.clone())?,
        ))
    }

    pub fn builders_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        let (rows, _) = self.rows(
            &BUILDERS,
            "builderid, name, description",
            filter,
            &Page::default(),
            |r| {
                Ok(json!({
                    "builderid": r.get::<_, i64>(0)?,
                    "description": r.get::<_, Option<String>>(2)?,
                    "description_format": null,
                    "description_html": null,
                    "masterids": [MASTERID],
                    "name": r.get::<_, String>(1)?,
                    "projectid": null,
                    "tags": [],
                }))
            },
        )?;
        Ok(rows)
    }

    /// Workers; `configured_on` lists the builders each one can take builds from
    /// (`builders_of` is called after the database lock is released, so it may query).
    pub fn workers_json(
        &self,
        filter: &Filter,
        builders_of: &dyn Fn(&str) -> Vec<i64>,
    ) -> Result<Vec<Value>, DbError> {
        let (mut rows, _) = self.rows(
            &WORKERS,
            "workerid, name, info, paused, pause_reason, graceful, connected",
            filter,
            &Page::default(),
            |r| {
                let name: String = r.get(1)?;
                let info = parse_json(r.get(2)?);
                let field = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
                let connected = opt_bool(r.get(6)?);
                Ok(json!({
                    "configured_on": [],
                    "connected_to": if connected { json!([{"masterid": MASTERID}]) } else { json!([]) },
                    "graceful": opt_bool(r.get(5)?),
                    "name": name,
                    "pause_reason": r.get::<_, Option<String>>(4)?,
                    "paused": opt_bool(r.get(3)?),
                    "workerid": r.get::<_, i64>(0)?,
                    "workerinfo": {
                        "access_uri": field("access_uri"),
                        "admin": field("admin"),
                        "host": field("host"),
                        "version": field("version"),
                    },
                }))
            },
        )?;
        for row in rows.iter_mut() {
            let name = row["name"].as_str().unwrap_or("").to_string();
            let configured: Vec<Value> = builders_of(&name)
                .into_iter()
                .map(|b| json!({"builderid": b, "masterid": MASTERID}))
                .collect();
            row["configured_on"] = Value::Array(configured);
        }
        Ok(rows)
    }

    pub fn builds_json(&self, filter: &Filter, with_props: bool) -> Result<Vec<Value>, DbError> {
        Ok(self.builds_page(filter, with_props, &Page::default())?.0)
    }

    /// Builds (`properties` only `with_props`, else `{}`).
    pub fn builds_page(
        &self,
        filter: &Filter,
        with_props: bool,
        page: &Page,
    ) -> Result<Listing, DbError> {
        self.rows(
            &catalog::BUILDS,
            "buildid, number, builderid, buildrequestid, workerid, started_at, complete_at, results,
             state_string, properties",
            filter,
            page,
            |r| {
                let complete_at: Option<i64> = r.get(6)?;
                let props = if with_props { parse_json(r.get(9)?) } else { json!({}) };
                Ok(json!({
                    "builderid": r.get::<_, i64>(2)?,
                    "buildid": r.get::<_, i64>(0)?,
                    "buildrequestid": r.get::<_, i64>(3)?,
                    "complete": complete_at.is_some(),
                    "complete_at": complete_at,
                    "locks_duration_s": 0,
                    "masterid": MASTERID,
                    "number": r.get::<_, i64>(1)?,
                    "properties": props,
                    "results": r.get::<_, Option<i64>>(7)?,
                    "started_at": r.get::<_, i64>(5)?,
                    "state_string": r.get::<_, String>(8)?,
                    "workerid": r.get::<_, i64>(4)?,
                }))
            },
        )
    }

    /// A build's properties `{name: [value, source]}`.
    pub fn build_properties(&self, buildid: i64) -> Result<Option<Value>, DbError> {
        let c = self.lock();
        let mut st = c.prepare("SELECT properties FROM builds WHERE buildid = ?1")?;
        let mut rows = st.query([buildid])?;
        Ok(match rows.next()? {
            Some(r) => Some(parse_json(r.get(0)?)),
            None => None,
        })
    }

    pub fn steps_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        Ok(self.steps_page(filter, &Page::default())?.0)
    }

    pub fn steps_page(&self, filter: &Filter, page: &Page) -> Result<Listing, DbError> {
        self.rows(
            &catalog::STEPS,
            "stepid, number, name, buildid, started_at, complete_at, results, state_string, urls,
             hidden",
            filter,
            page,
            |r| {
                let complete_at: Option<i64> = r.get(5)?;
                let started: Option<i64> = r.get(4)?;
                Ok(json!({
                    "buildid": r.get::<_, i64>(3)?,
                    "complete": complete_at.is_some(),
                    "complete_at": complete_at,
                    "hidden": opt_bool(r.get(9)?),
                    "locks_acquired_at": started,
                    "name": r.get::<_, String>(2)?,
                    "number": r.get::<_, i64>(1)?,
                    "results": r.get::<_, Option<i64>>(6)?,
                    "started_at": started,
                    "state_string": r.get::<_, String>(7)?,
                    "stepid": r.get::<_, i64>(0)?,
                    "urls": parse_json(r.get(8)?),
                }))
            },
        )
    }

    pub fn logs_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        Ok(self.logs_page(filter, &Page::default())?.0)
    }

    pub fn logs_page(&self, filter: &Filter, page: &Page) -> Result<Listing, DbError> {
        self.rows(
            &catalog::LOGS,
            "logid, name, slug, stepid, type, num_lines, complete",
            filter,
            page,
            |r| {
                Ok(json!({
                    "complete": opt_bool(r.get(6)?),
                    "logid": r.get::<_, i64>(0)?,
                    "name": r.get::<_, String>(1)?,
                    "num_lines": r.get::<_, i64>(5)?,
                    "slug": r.get::<_, String>(2)?,
                    "stepid": r.get::<_, i64>(3)?,
                    "type": r.get::<_, String>(4)?,
                }))
            },
        )
    }

    /// `(step id, build id, builder name, build number, worker name)` for a log's raw header.
    pub fn log_context(&self, logid: i64) -> Result<Option<(String, i64, String)>, DbError> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT bl.name, b.number, w.name FROM logs l JOIN steps s ON s.stepid = l.stepid
             JOIN builds b ON b.buildid = s.buildid JOIN builders bl ON bl.builderid = b.builderid
             JOIN workers w ON w.workerid = b.workerid WHERE l.logid = ?1",
        )?;
        let mut rows = st.query([logid])?;
        Ok(match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?)),
            None => None,
        })
    }

    pub fn buildrequests_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        Ok(self.buildrequests_page(filter, &Page::default())?.0)
    }

    pub fn buildrequests_page(&self, filter: &Filter, page: &Page) -> Result<Listing, DbError> {
        self.rows(
            &catalog::BUILDREQUESTS,
            "buildrequestid, buildsetid, builderid, priority, claimed_at, complete, complete_at,
             results, submitted_at",
            filter,
            page,
            |r| {
                let claimed_at: Option<i64> = r.get(4)?;
                Ok(json!({
                    "builderid": r.get::<_, i64>(2)?,
                    "buildrequestid": r.get::<_, i64>(0)?,
                    "buildsetid": r.get::<_, i64>(1)?,
                    "claimed": claimed_at.is_some(),
                    "claimed_at": claimed_at,
                    "claimed_by_masterid": claimed_at.map(|_| MASTERID),
                    "complete": opt_bool(r.get(5)?),
                    "complete_at": r.get::<_, Option<i64>>(6)?,
                    "priority": r.get::<_, i64>(3)?,
                    "properties": null,
                    "results": r.get::<_, Option<i64>>(7).map(|v| v.unwrap_or(-1))?,
                    "submitted_at": r.get::<_, i64>(8)?,
                    "waited_for": false,
                }))
            },
        )
    }

    fn sourcestamp(&self, ssid: i64) -> Result<Value, DbError> {
        let c = self.lock();
        Ok(c.query_row(
            "SELECT ssid, branch, codebase, created_at, project, repository, revision FROM sourcestamps
             WHERE ssid = ?1",
            [ssid],
            |r| {
                Ok(json!({
                    "branch": r.get::<_, String>(1)?,
                    "codebase": r.get::<_, String>(2)?,
                    "created_at": r.get::<_, i64>(3)?,
                    "patch": null,
                    "project": r.get::<_, String>(4)?,
                    "repository": r.get::<_, String>(5)?,
                    "revision": r.get::<_, String>(6)?,
                    "ssid": r.get::<_, i64>(0)?,
                }))
            },
        )?)
    }

    pub fn buildsets_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        Ok(self.buildsets_page(filter, &Page::default())?.0)
    }

    /// Buildsets; the sourcestamps are read for the rows of the page only.
    pub fn buildsets_page(&self, filter: &Filter, page: &Page) -> Result<Listing, DbError> {
        let (rows, total) = self.rows(
            &catalog::BUILDSETS,
            "bsid, reason, results, complete, complete_at, submitted_at, external_idstring, ssid",
            filter,
            page,
            |r| {
                Ok(json!({
                    "bsid": r.get::<_, i64>(0)?,
                    "complete": opt_bool(r.get(3)?),
                    "complete_at": r.get::<_, Option<i64>>(4)?,
                    "external_idstring": r.get::<_, Option<String>>(6)?,
                    "parent_buildid": null,
                    "parent_relationship": null,
                    "reason": r.get::<_, String>(1)?,
                    "rebuilt_buildid": null,
                    "results": r.get::<_, Option<i64>>(2)?,
                    "sourcestamps": r.get::<_, i64>(7)?,
                    "submitted_at": r.get::<_, i64>(5)?,
                }))
            },
        )?;
        Ok((self.expand_sourcestamps(rows, "sourcestamps", true)?, total))
    }

    pub fn changes_json(&self, filter: &Filter) -> Result<Vec<Value>, DbError> {
        Ok(self.changes_page(filter, &Page::default())?.0)
    }

    /// Changes; the sourcestamps are read for the rows of the page only.
    pub fn changes_page(&self, filter: &Filter, page: &Page) -> Result<Listing, DbError> {
        let (rows, total) = self.rows(
            &catalog::CHANGES,
            "changeid, author, committer, branch, category, comments, files, project, properties,
             repository, revision, revlink, codebase, when_timestamp, ssid",
            filter,
            page,
            |r| {
                Ok(json!({
                    "author": r.get::<_, String>(1)?,
                    "branch": r.get::<_, String>(3)?,
                    "category": r.get::<_, Option<String>>(4)?,
                    "changeid": r.get::<_, i64>(0)?,
                    "codebase": r.get::<_, String>(12)?,
                    "comments": r.get::<_, String>(5)?,
                    "committer": r.get::<_, Option<String>>(2)?,
                    "files": parse_json(r.get(6)?),
                    "parent_changeids": [],
                    "project": r.get::<_, String>(7)?,
                    "properties": parse_json(r.get(8)?),
                    "repository": r.get::<_, String>(9)?,
                    "revision": r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                    "revlink": r.get::<_, Option<String>>(11)?,
                    "sourcestamp": r.get::<_, i64>(14)?,
                    "when_timestamp": r.get::<_, i64>(13)?,
                }))
            },
        )?;
        Ok((self.expand_sourcestamps(rows, "sourcestamp", false)?, total))
    }

    fn expand_sourcestamps(
        &self,
        mut rows: Vec<Value>,
        key: &str,
        list: bool,
    ) -> Result<Vec<Value>, DbError> {
        for row in rows.iter_mut() {
            if let Some(obj) = row.as_object_mut() {
                let ssid = obj.get(key).and_then(Value::as_i64).unwrap_or(0);
                let ss = self.sourcestamp(ssid)?;
                obj.insert(key.into(), if list { Value::Array(vec![ss]) } else { ss });
            }
        }
        Ok(rows)
    }

    /// Counts for health and metrics: (pending requests, running builds).
    pub fn queue_counts(&self) -> Result<(i64, i64), DbError> {
        let c = self.lock();
        let pending = c.query_row(
            "SELECT COUNT(*) FROM buildrequests WHERE complete = 0 AND claimed_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        let running = c.query_row(
            "SELECT COUNT(*) FROM builds WHERE complete_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok((pending, running))
    }
}
