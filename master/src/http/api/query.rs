//! Buildbot's REST query parameters applied to a list of JSON rows: `field=` (select),
//! `<field>[__eq|ne|lt|le|gt|ge|contains|in|notin]=v` (filter; repeated `eq` = any of),
//! `order=[-]f`, `limit=`, `offset=`. Reply `{"<plural>": [...], "meta": {"total": N}}`.
//! Every parameter is first checked against the resource's fields (`spec.rs`).

use std::cmp::Ordering;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::spec::{Shape, Spec};
use crate::db::catalog::Entity;

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

    /// Each key once, in order of first appearance (how Buildbot walks `request.args`).
    pub(super) fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in &self.pairs {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        keys
    }

    /// Every value of `key`, in query-string order.
    pub(super) fn values(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Filters, orders, pages and projects `rows` (all of them, in their natural order) as
    /// Buildbot does; `Err` is a 400 reply, also for any field `entity` does not have. The
    /// large collections do this in SQL instead (`sql.rs`), and the tests there check that both
    /// give the same reply.
    pub fn apply(
        &self,
        entity: &Entity,
        mut rows: Vec<Value>,
    ) -> Result<(Vec<Value>, usize), String> {
        let spec = Spec::parse(self, entity, Shape::Collection)?;
        for t in &spec.filters {
            rows.retain(|row| match row.get(t.field.name) {
                None => false,
                Some(x) => t.values.iter().any(|v| matches(x, t.op, v)),
            });
        }
        let total = rows.len();
        if !spec.orders.is_empty() {
            rows.sort_by(|a, b| {
                for (f, desc) in &spec.orders {
                    let c = cmp(a.get(f.name), b.get(f.name));
                    let c = if *desc { c.reverse() } else { c };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            });
        }
        let mut rows: Vec<Value> = rows.into_iter().skip(spec.offset).collect();
        if let Some(l) = spec.limit {
            rows.truncate(l);
        }
        Ok((self.project(rows), total))
    }

    /// `property=` and `field=` applied to the rows of a page.
    pub(super) fn project(&self, mut rows: Vec<Value>) -> Vec<Value> {
        // `property=<name>` (repeatable) keeps only those build properties; `*` keeps all.
        let props = self.values("property");
        if !props.is_empty() && !props.contains(&"*") {
            for r in rows.iter_mut() {
                if let Some(Value::Object(p)) = r.get_mut("properties") {
                    p.retain(|k, _| props.contains(&k.as_str()));
                }
            }
        }
        let fields = self.values("field");
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
pub fn collection(plural: &str, q: &Query, entity: &Entity, rows: Vec<Value>) -> Response {
    match q.apply(entity, rows) {
        Ok((rows, total)) => {
            Json(json!({ plural: rows, "meta": {"total": total} })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

/// A single-item reply (still a list, `meta` empty), or 404. Like Buildbot, only `field=` and
/// `property=` shape a single item (`limit`/`offset`/`order` are checked, then have nothing to
/// do); a filter is a 400.
pub fn single(plural: &str, q: &Query, entity: &Entity, rows: Vec<Value>) -> Response {
    if let Err(e) = Spec::parse(q, entity, Shape::Single) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    if rows.is_empty() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    Json(json!({ plural: q.project(rows), "meta": {} })).into_response()
}

/// A REST error as Buildbot's `_write_rest_error` writes it (`buildbot/www/rest.py`): the
/// status, `Content-Type: text/plain; charset=utf-8` and the body `json.dumps({"error": msg})`
/// (Python's spacing and its `\uXXXX` escapes for everything outside printable ASCII).
pub fn error(status: StatusCode, msg: &str) -> Response {
    let body = format!("{{\"error\": {}}}", python_json_string(msg));
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `msg` as Python's `json.dumps` quotes it (ASCII only).
fn python_json_string(msg: &str) -> String {
    let quoted = serde_json::to_string(msg).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(quoted.len());
    for c in quoted.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog;

    fn rows() -> Vec<Value> {
        vec![
            json!({"buildid": 1, "complete": true, "results": 0, "state_string": "build successful"}),
            json!({"buildid": 2, "complete": false, "results": null, "state_string": "runtask"}),
            json!({"buildid": 3, "complete": true, "results": 2, "state_string": "failed"}),
        ]
    }

    fn ids(q: &str) -> Vec<i64> {
        Query::parse(Some(q))
            .apply(&catalog::BUILDS, rows())
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
            .apply(&catalog::BUILDS, rows())
            .unwrap();
        assert_eq!((r, total), (vec![json!({"buildid": 1})], 3));
        assert!(Query::parse(Some("buildid__like=1"))
            .apply(&catalog::BUILDS, rows())
            .is_err());
        let with_props = vec![
            json!({"buildid": 1, "properties": {"uuid": ["u", "Change"], "item": ["i", "Change"]}}),
        ];
        let (r, _) = Query::parse(Some("property=uuid"))
            .apply(&catalog::BUILDS, with_props.clone())
            .unwrap();
        assert_eq!(r[0]["properties"], json!({"uuid": ["u", "Change"]}));
        let (r, _) = Query::parse(Some("property=*"))
            .apply(&catalog::BUILDS, with_props)
            .unwrap();
        assert_eq!(r[0]["properties"].as_object().unwrap().len(), 2);
        assert!(Query::parse(Some("limit=x"))
            .apply(&catalog::BUILDS, rows())
            .is_err());
        assert_eq!(ids("buildid__in=1&buildid__in=3&results__notin=2"), [1]);
    }

    /// What the in-memory path answers to fields the resource does not have (the checks are
    /// spec.rs's; here: they reach the reply, and before any row is looked at).
    #[test]
    fn unknown_fields_are_400s_even_with_no_rows() {
        for qs in [
            "nosuchfield=1",
            "nosuch__eq=1",
            "buildid__like=1",
            "order=nosuch",
            "order=-nosuch",
            "field=nosuch",
            "properties=x",
        ] {
            let e = Query::parse(Some(qs))
                .apply(&catalog::BUILDS, vec![])
                .unwrap_err();
            assert!(
                e.contains("nosuch") || e.contains("like") || e.contains("properties"),
                "{qs}: {e}"
            );
        }
        // Builders have no `buildid`.
        let e = Query::parse(Some("order=buildid"))
            .apply(&catalog::BUILDERS, vec![])
            .unwrap_err();
        assert_eq!(e, "no such field 'buildid'");
    }

    fn reply(r: Response) -> (u16, String, String) {
        let status = r.status().as_u16();
        let ct = r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = rt
            .block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Buildbot's `_write_rest_error`: text/plain, `json.dumps` spacing and ASCII escapes.
    #[test]
    fn errors_are_rendered_like_buildbot() {
        let q = Query::parse(Some("nosuchfield=1"));
        assert_eq!(
            reply(collection("builds", &q, &catalog::BUILDS, rows())),
            (
                400,
                "text/plain; charset=utf-8".into(),
                r#"{"error": "unrecognized query parameter 'nosuchfield'"}"#.into()
            )
        );
        // Python: json.dumps({"error": "no such field 'h\xe9\U0001f600\n\"\x7f'"})
        let q = Query::parse(Some("order=h%C3%A9%F0%9F%98%80%0A%22%7F"));
        let (status, _, body) = reply(single("builds", &q, &catalog::BUILDS, rows()));
        assert_eq!(status, 400);
        assert_eq!(
            body,
            r#"{"error": "no such field 'h\u00e9\ud83d\ude00\n\"\u007f'"}"#
        );
        let (status, ct, body) = reply(single(
            "builds",
            &Query::parse(None),
            &catalog::BUILDS,
            vec![],
        ));
        assert_eq!((status, ct.as_str()), (404, "text/plain; charset=utf-8"));
        assert_eq!(body, r#"{"error": "not found"}"#);
        // A single item: filters are a 400 before the lookup, `limit` does not page it.
        let q = Query::parse(Some("complete=1"));
        assert_eq!(
            reply(single("builds", &q, &catalog::BUILDS, vec![])).2,
            r#"{"error": "this is not a collection"}"#
        );
        let q = Query::parse(Some("limit=0&field=buildid"));
        let (status, _, body) = reply(single("builds", &q, &catalog::BUILDS, rows()[..1].to_vec()));
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"builds":[{"buildid":1}],"meta":{}}"#)
        );
    }
}
