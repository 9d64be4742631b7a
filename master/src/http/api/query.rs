//! Buildbot's REST query parameters applied to a list of JSON rows: `field=` (select),
//! `<field>[__eq|ne|lt|le|gt|ge|contains]=v` (filter; repeated `eq` = any of), `order=[-]f`,
//! `limit=`, `offset=`. Reply `{"<plural>": [...], "meta": {"total": N}}`.

use std::cmp::Ordering;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Parameters that are not field filters.
pub(super) const RESERVED: &[&str] = &["field", "order", "limit", "offset", "property"];
/// Filter operators (`field__op=value`; plain `field=value` is `eq`).
pub(super) const OPS: &[&str] = &["eq", "ne", "lt", "le", "gt", "ge", "contains"];

pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Every `key=value` pair, in query-string order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// `field` and operator of a filter key; `Err` (a 400) for an unknown operator.
    pub(super) fn split_filter(k: &str) -> Result<(&str, &str), String> {
        let (field, op) = k.split_once("__").unwrap_or((k, "eq"));
        if !OPS.contains(&op) {
            return Err(format!("invalid filter operator {op:?} in {k:?}"));
        }
        Ok((field, op))
    }

    /// The values a filter pair tests: repeated `field=v` (same key) means "any of" (Buildbot's
    /// `in`); other operators test their own value.
    pub(super) fn filter_values<'a>(&'a self, k: &str, op: &str, v: &'a str) -> Vec<&'a str> {
        if op == "eq" {
            self.pairs
                .iter()
                .filter(|(k2, _)| k2 == k)
                .map(|(_, v)| v.as_str())
                .collect()
        } else {
            vec![v]
        }
    }

    /// The `order=` values, in order.
    pub(super) fn orders(&self) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == "order")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `(offset, limit)`; `Err` (a 400) when one is not a non-negative integer.
    pub(super) fn window(&self) -> Result<(usize, Option<usize>), String> {
        let num = |k: &str| -> Result<Option<usize>, String> {
            match self.get(k) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{k}: expected a non-negative integer, got {v:?}")),
            }
        };
        let offset = num("offset")?.unwrap_or(0);
        Ok((offset, num("limit")?))
    }

    /// Filters, orders, pages and projects `rows` (all of them, in their natural order) as
    /// Buildbot does; `Err` is a 400 reply. The large collections do this in SQL instead
    /// (`sql.rs`), and the tests there check that both give the same reply.
    pub fn apply(&self, mut rows: Vec<Value>) -> Result<(Vec<Value>, usize), String> {
        for (k, v) in &self.pairs {
            if RESERVED.contains(&k.as_str()) {
                continue;
            }
            let (field, op) = Query::split_filter(k)?;
            let values = self.filter_values(k, op, v);
            rows.retain(|row| match row.get(field) {
                None => false,
                Some(x) => values.iter().any(|v| matches(x, op, v)),
            });
        }
        let total = rows.len();
        let orders = self.orders();
        if !orders.is_empty() {
            rows.sort_by(|a, b| {
                for o in &orders {
                    let (desc, f) = match o.strip_prefix('-') {
                        Some(f) => (true, f),
                        None => (false, *o),
                    };
                    let c = cmp(a.get(f), b.get(f));
                    let c = if desc { c.reverse() } else { c };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            });
        }
        let (offset, limit) = self.window()?;
        let mut rows: Vec<Value> = rows.into_iter().skip(offset).collect();
        if let Some(l) = limit {
            rows.truncate(l);
        }
        Ok((self.project(rows), total))
    }

    /// `property=` and `field=` applied to the rows of a page.
    pub(super) fn project(&self, mut rows: Vec<Value>) -> Vec<Value> {
        // `property=<name>` (repeatable) keeps only those build properties; `*` keeps all.
        let props: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == "property")
            .map(|(_, v)| v.as_str())
            .collect();
        if !props.is_empty() && !props.contains(&"*") {
            for r in rows.iter_mut() {
                if let Some(Value::Object(p)) = r.get_mut("properties") {
                    p.retain(|k, _| props.contains(&k.as_str()));
                }
            }
        }
        let fields: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == "field")
            .map(|(_, v)| v.as_str())
            .collect();
        if !fields.is_empty() {
            rows = rows
                .into_iter()
                .map(|r| {
                    let mut o = Map::new();
                    for f in &fields {
                        if let Some(v) = r.get(*f) {
                            o.insert((*f).to_string(), v.clone());
                        }
                    }
                    Value::Object(o)
                })
                .collect();
        }
        rows
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Whether a row's value `x` passes `op v` (Buildbot's comparison of a query-string value with
/// a field of each JSON type).
pub(super) fn matches(x: &Value, op: &str, v: &str) -> bool {
    let ord = match x {
        Value::Bool(b) => parse_bool(v).map(|p| b.cmp(&p)),
        Value::Number(n) => v
            .parse::<f64>()
            .ok()
            .and_then(|p| n.as_f64()?.partial_cmp(&p)),
        Value::String(s) => {
            if op == "contains" {
                return s.contains(v);
            }
            Some(s.as_str().cmp(v))
        }
        Value::Null => {
            let is_null = matches!(v, "null" | "None" | "");
            return match op {
                "eq" => is_null,
                "ne" => !is_null,
                _ => false,
            };
        }
        Value::Array(a) if op == "contains" => {
            return a
                .iter()
                .any(|e| e.as_str() == Some(v) || e.as_f64().is_some_and(|n| v.parse() == Ok(n)))
        }
        _ => None,
    };
    let Some(o) = ord else { return op == "ne" };
    match op {
        "eq" => o == Ordering::Equal,
        "ne" => o != Ordering::Equal,
        "lt" => o == Ordering::Less,
        "le" => o != Ordering::Greater,
        "gt" => o == Ordering::Greater,
        "ge" => o != Ordering::Less,
        _ => false,
    }
}

fn cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Less,
        (_, Some(Value::Null) | None) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// A collection reply.
pub fn collection(plural: &str, q: &Query, rows: Vec<Value>) -> Response {
    match q.apply(rows) {
        Ok((rows, total)) => {
            Json(json!({ plural: rows, "meta": {"total": total} })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

/// A single-item reply (still a list, `meta` empty), or 404.
pub fn single(plural: &str, q: &Query, rows: Vec<Value>) -> Response {
    if rows.is_empty() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    match q.apply(rows) {
        Ok((rows, _)) => Json(json!({ plural: rows, "meta": {} })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

pub fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Value> {
        vec![
            json!({"buildid": 1, "complete": true, "results": 0, "state_string": "build successful"}),
            json!({"buildid": 2, "complete": false, "results": null, "state_string": "runtask"}),
            json!({"buildid": 3, "complete": true, "results": 2, "state_string": "failed"}),
        ]
    }

    fn ids(q: &str) -> Vec<i64> {
        Query::parse(Some(q))
            .apply(rows())
            .unwrap()
            .0
            .iter()
            .map(|r| r["buildid"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn filters_order_limit_like_buildbot() {
        assert_eq!(ids("complete=true"), [1, 3]);
        assert_eq!(ids("complete=off"), [2]);
        assert_eq!(ids("results__gt=0"), [3]);
        assert_eq!(ids("results=null"), [2]);
        assert_eq!(ids("buildid=1&buildid=3"), [1, 3]);
        assert_eq!(ids("state_string__contains=fail"), [3]);
        assert_eq!(ids("order=-buildid&limit=2"), [3, 2]);
        assert_eq!(ids("order=buildid&offset=1"), [2, 3]);
        let (r, total) = Query::parse(Some("field=buildid&limit=1"))
            .apply(rows())
            .unwrap();
        assert_eq!((r, total), (vec![json!({"buildid": 1})], 3));
        assert!(Query::parse(Some("buildid__like=1")).apply(rows()).is_err());
        let with_props = vec![
            json!({"buildid": 1, "properties": {"uuid": ["u", "Change"], "item": ["i", "Change"]}}),
        ];
        let (r, _) = Query::parse(Some("property=uuid"))
            .apply(with_props.clone())
            .unwrap();
        assert_eq!(r[0]["properties"], json!({"uuid": ["u", "Change"]}));
        let (r, _) = Query::parse(Some("property=*")).apply(with_props).unwrap();
        assert_eq!(r[0]["properties"].as_object().unwrap().len(), 2);
        assert!(Query::parse(Some("limit=x")).apply(rows()).is_err());
    }
}
