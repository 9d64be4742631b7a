//! REST query parameters translated to SQL for the large collections (builds, buildrequests,
//! buildsets, changes, steps, logs), so a page costs what the page holds, not the whole table.
//!
//! The reply must be exactly what [`Query::apply`] gives over every row in memory (the tests in
//! `sql_tests.rs` check that on random queries), so each filter is translated with the same
//! rules `query::matches` applies to one JSON value: a value that does not parse as the
//! field's type, `null`, booleans as on/off/true/false/yes/no/1/0, `contains` on strings only.
//! Field names go through the whitelist in `db/catalog.rs` (a query naming any other field is
//! the same 400 as in memory: both execute the [`Spec`] checked in `spec.rs`); values are
//! bound parameters.
//!
//! What stays in memory: queries that filter or order on a field SQL cannot compare the way
//! the API does (filters on `files`/`parent_changeids`, orders on `properties`, `urls`,
//! sourcestamps: stored JSON or other tables; filters on JSON fields are 400s), and
//! pathological query strings with more terms than SQLite's expression-depth and parameter
//! limits allow. For those [`plan`] answers [`Plan::Memory`] and the caller loads every row.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Value};

use super::query::{error, matches, Query};
use super::spec::{Shape, Spec};
use crate::db::catalog::{Col, Entity, Kind};
use crate::db::{DbError, Listing, Page};

/// More filters than this (each an AND term) are answered in memory: SQLite limits the depth
/// of an expression tree (1000) and a long AND chain is that deep.
const MAX_CONDS: usize = 100;
/// More bound values than this are answered in memory (SQLite allows 32766 per statement).
const MAX_ARGS: usize = 10_000;

#[derive(Debug)]
pub enum Plan {
    /// Filter, order and window in SQL; `property=`/`field=` are applied to the page after.
    Sql(Page),
    /// Load every row and use [`Query::apply`].
    Memory,
}

/// A condition on one row: constant, or SQL with its bound values.
enum Cond {
    Const(bool),
    Sql(String, Vec<SqlValue>),
}

impl Cond {
    /// Any of `conds` (an empty list is false).
    fn any(conds: Vec<Cond>) -> Cond {
        let mut sql = Vec::new();
        let mut args = Vec::new();
        for c in conds {
            match c {
                Cond::Const(true) => return Cond::Const(true),
                Cond::Const(false) => {}
                Cond::Sql(s, a) => {
                    sql.push(s);
                    args.extend(a);
                }
            }
        }
        match sql.len() {
            0 => Cond::Const(false),
            1 => Cond::Sql(sql.remove(0), args),
            _ => Cond::Sql(format!("({})", sql.join(" OR ")), args),
        }
    }
}

/// The SQL plan for `q` on `entity`, or the same 400 message [`Query::apply`] would give.
pub fn plan(q: &Query, entity: &Entity) -> Result<Plan, String> {
    let spec = Spec::parse(q, entity, Shape::Collection)?;
    let mut page = Page::default();
    let mut never = false;
    // One term per key for `eq` (all its values in one IN list), so a long query string
    // repeating one key does not grow the plan.
    for t in &spec.filters {
        if page.conds.len() > MAX_CONDS || page.args.len() > MAX_ARGS {
            return Ok(Plan::Memory);
        }
        let (op, values) = (t.op, &t.values);
        let cond = match t.field.col {
            Col::Computed | Col::Json => return Ok(Plan::Memory),
            Col::Const(c) => {
                let c = c.value();
                Cond::Const(values.iter().any(|v| matches(&c, op, v)))
            }
            Col::Bool {
                when_true,
                when_false,
            } => bool_cond(op, values, when_true, when_false),
            Col::Value {
                sql,
                kind,
                nullable,
            } if op == "eq" => eq_any(sql, kind, nullable, values),
            Col::Value {
                sql,
                kind,
                nullable,
            } => Cond::any(
                values
                    .iter()
                    .map(|v| value_cond(sql, kind, nullable, op, v))
                    .collect(),
            ),
        };
        match cond {
            Cond::Const(true) => {}
            Cond::Const(false) => never = true,
            Cond::Sql(s, a) => {
                page.conds.push(s);
                page.args.extend(a);
            }
        }
    }
    if never {
        page.conds = vec!["0".into()];
        page.args.clear();
    }
    if page.conds.len() > MAX_CONDS || page.args.len() > MAX_ARGS {
        return Ok(Plan::Memory);
    }
    for (field, desc) in &spec.orders {
        let expr = match field.col {
            // Every row compares equal on these, so they do not change the order.
            Col::Const(_) => continue,
            Col::Computed | Col::Json => return Ok(Plan::Memory),
            // false < true, as in memory.
            Col::Bool { when_true, .. } => when_true,
            // NULL sorts first ascending and last descending in SQLite, as JSON null does in
            // memory; text compares bytewise (BINARY), as Rust's str does.
            Col::Value { sql, .. } => sql,
        };
        // A repeated key was already decided by its first occurrence.
        if !page.order.iter().any(|(e, _)| *e == expr) {
            page.order.push((expr, *desc));
        }
    }
    page.offset = i64::try_from(spec.offset).unwrap_or(i64::MAX);
    page.limit = spec.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    Ok(Plan::Sql(page))
}

/// A boolean field: which of true/false pass is decided here with `matches` itself.
fn bool_cond(op: &str, values: &[&str], when_true: &str, when_false: &str) -> Cond {
    let passes = |b: bool| values.iter().any(|v| matches(&Value::Bool(b), op, v));
    match (passes(true), passes(false)) {
        (true, true) => Cond::Const(true),
        (false, false) => Cond::Const(false),
        (true, false) => Cond::Sql(when_true.into(), vec![]),
        (false, true) => Cond::Sql(when_false.into(), vec![]),
    }
}

/// A number or string field equal to any of `values`: one `IN` list (a chain of ORs would hit
/// SQLite's expression-depth limit on a long query string).
fn eq_any(sql: &str, kind: Kind, nullable: bool, values: &[&str]) -> Cond {
    let args: Vec<SqlValue> = values
        .iter()
        .filter_map(|v| match kind {
            // A value that is not a number equals no number.
            Kind::Int => v.parse::<f64>().ok().filter(|p| !p.is_nan()).map(number),
            Kind::Text => Some(v.to_string().into()),
        })
        .collect();
    let typed = match args.len() {
        0 => Cond::Const(false),
        1 => Cond::Sql(format!("{sql} = ?"), args),
        n => Cond::Sql(format!("{sql} IN ({})", vec!["?"; n].join(", ")), args),
    };
    let null_passes = values.iter().any(|v| matches(&Value::Null, "eq", v));
    with_nulls(sql, nullable, typed, null_passes)
}

/// A number or string field tested with one value.
fn value_cond(sql: &str, kind: Kind, nullable: bool, op: &str, v: &str) -> Cond {
    // What a non-null value gives.
    let typed = match kind {
        Kind::Int => match v.parse::<f64>() {
            // `contains` is false on numbers.
            _ if op == "contains" => Cond::Const(false),
            // Not comparable (NaN, or not a number): only `ne` passes.
            Err(_) => Cond::Const(op == "ne"),
            Ok(p) if p.is_nan() => Cond::Const(op == "ne"),
            Ok(p) => Cond::Sql(format!("{sql} {} ?", sql_op(op)), vec![number(p)]),
        },
        Kind::Text if op == "contains" => {
            Cond::Sql(format!("instr({sql}, ?) > 0"), vec![v.to_string().into()])
        }
        Kind::Text => Cond::Sql(
            format!("{sql} {} ?", sql_op(op)),
            vec![v.to_string().into()],
        ),
    };
    with_nulls(sql, nullable, typed, matches(&Value::Null, op, v))
}

/// `typed` (the condition for non-null values) extended to a nullable field, where NULL rows
/// pass when `null_passes`. A comparison with NULL is NULL (false) in SQL, so NULL rows pass
/// only where added here.
fn with_nulls(sql: &str, nullable: bool, typed: Cond, null_passes: bool) -> Cond {
    if !nullable {
        return typed;
    }
    match (typed, null_passes) {
        (Cond::Const(t), false) if t => Cond::Sql(format!("{sql} IS NOT NULL"), vec![]),
        (Cond::Const(_), false) => Cond::Const(false),
        (Cond::Const(t), true) if t => Cond::Const(true),
        (Cond::Const(_), true) => Cond::Sql(format!("{sql} IS NULL"), vec![]),
        (Cond::Sql(s, a), false) => Cond::Sql(s, a),
        (Cond::Sql(s, a), true) => Cond::Sql(format!("({sql} IS NULL OR {s})"), a),
    }
}

fn sql_op(op: &str) -> &'static str {
    match op {
        "ne" => "!=",
        "lt" => "<",
        "le" => "<=",
        "gt" => ">",
        "ge" => ">=",
        _ => "=",
    }
}

/// A number to compare a column with: an integer when it is one (so SQLite compares integers
/// and can search an index), else a float (SQLite compares integer and real numerically).
fn number(p: f64) -> SqlValue {
    if p.fract() == 0.0 && p.abs() < 9.0e15 {
        SqlValue::Integer(p as i64)
    } else {
        SqlValue::Real(p)
    }
}

/// A collection reply's rows and `meta.total`, or the 400 message.
pub type Reply = Result<(Vec<Value>, usize), String>;

/// The reply to `q` on a large table: filtered, ordered and paged by SQLite where the query
/// allows it, else every row through [`Query::apply`]. `fetch` reads the rows of a page (the
/// endpoint's own restriction, such as a builder id, is inside it).
pub fn list(
    q: &Query,
    entity: &Entity,
    fetch: impl Fn(&Page) -> Result<Listing, DbError>,
) -> Result<Reply, DbError> {
    Ok(match plan(q, entity) {
        Err(e) => Err(e),
        Ok(Plan::Memory) => q.apply(entity, fetch(&Page::default())?.0),
        Ok(Plan::Sql(page)) => {
            let (rows, total) = fetch(&page)?;
            Ok((q.project(rows), total))
        }
    })
}

/// [`list`] as an HTTP response.
pub fn listing(
    plural: &str,
    q: &Query,
    entity: &Entity,
    fetch: impl Fn(&Page) -> Result<Listing, DbError>,
) -> Response {
    match list(q, entity, fetch) {
        Ok(Ok((rows, total))) => {
            Json(json!({ plural: rows, "meta": {"total": total} })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e),
        Err(e) => {
            tracing::error!("REST API: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
