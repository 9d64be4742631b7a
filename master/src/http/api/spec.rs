//! A query string checked against the fields of the resource it asks for, before anything is
//! read, as Buildbot 4.3 does (`buildbot/data/connector.py`, `resultspec_from_jsonapi`); the
//! result ([`Spec`]) is what both the in-memory path (`Query::apply`) and the SQL path
//! (`sql::plan`) execute, so they reject and accept exactly the same queries.
//!
//! The 400s, with Buildbot's texts (keys are taken in query-string order, each with all its
//! values, so the first bad key decides the message as in Buildbot):
//! - `order=[-]x`, `field=x` with no field `x`: `no such field 'x'`;
//! - `x=v` where `x` is neither a field nor a reserved key: `unrecognized query parameter 'x'`;
//! - a filter on a JSON field (`properties`, `sourcestamps`, ...), whose type Buildbot cannot
//!   read a value for: `invalid filter value for <key>`;
//! - with `field=`, an order or filter on a field not selected:
//!   `cannot order on un-selected fields` / `cannot filter on un-selected fields`;
//! - any filter on a single item: `this is not a collection`.
//!
//! One deliberate difference: Buildbot silently ignores `x__op=v` when `x` is not a field or
//! `op` is not an operator (the filter is dropped and every row comes back). A dropped filter
//! is the silent wrong answer these checks exist to prevent, so here it is a 400 too
//! (`unrecognized query parameter 'x__op'`). Buildbot's real operators `in`/`notin` are
//! accepted (they are "any of"/"none of", the same as repeated `eq`/`ne`).

use super::query::Query;
use crate::db::catalog::{Col, Entity, Field};

/// Filter operators as written (`field__op=value`) and what they test; plain `field=value` is
/// `eq`. Repeated `eq` (or `in`) values mean "any of"; every other operator tests each value.
const OPS: &[(&str, &str)] = &[
    ("eq", "eq"),
    ("ne", "ne"),
    ("lt", "lt"),
    ("le", "le"),
    ("gt", "gt"),
    ("ge", "ge"),
    ("contains", "contains"),
    ("in", "eq"),
    ("notin", "ne"),
];

/// What the endpoint returns (Buildbot's `EndpointKind`): single items take no filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Collection,
    Single,
}

/// One filter test: a row passes when its value passes `op` with any of `values`.
#[derive(Debug)]
pub struct Term<'q> {
    pub field: &'static Field,
    /// `eq`, `ne`, `lt`, `le`, `gt`, `ge` or `contains`.
    pub op: &'static str,
    pub values: Vec<&'q str>,
}

/// A checked query: filters (all must pass), orders, and the page window.
#[derive(Debug)]
pub struct Spec<'q> {
    pub filters: Vec<Term<'q>>,
    /// Fields to sort by, each with "descending".
    pub orders: Vec<(&'static Field, bool)>,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl<'q> Spec<'q> {
    /// `q` checked against `entity`'s fields; `Err` is the 400 message.
    pub fn parse(q: &'q Query, entity: &Entity, shape: Shape) -> Result<Spec<'q>, String> {
        let known = |name: &str| -> Result<&'static Field, String> {
            entity
                .field(name)
                .ok_or_else(|| format!("no such field '{name}'"))
        };
        let mut spec = Spec {
            filters: Vec::new(),
            orders: Vec::new(),
            offset: 0,
            limit: None,
        };
        let mut selected: Vec<&str> = Vec::new();
        for key in q.keys() {
            let values = q.values(key);
            match key {
                "order" => {
                    for o in values {
                        let (desc, name) = match o.strip_prefix('-') {
                            Some(name) => (true, name),
                            None => (false, o),
                        };
                        spec.orders.push((known(name)?, desc));
                    }
                }
                "field" => {
                    for f in &values {
                        known(f)?;
                    }
                    selected = values;
                }
                "limit" => spec.limit = Some(count(key, values[0])?),
                "offset" => spec.offset = count(key, values[0])?,
                "property" => {}
                _ => spec.filter(entity, key, values)?,
            }
        }
        if !selected.is_empty() {
            if spec.orders.iter().any(|(f, _)| !selected.contains(&f.name)) {
                return Err("cannot order on un-selected fields".into());
            }
            if spec
                .filters
                .iter()
                .any(|t| !selected.contains(&t.field.name))
            {
                return Err("cannot filter on un-selected fields".into());
            }
        }
        if shape == Shape::Single && !spec.filters.is_empty() {
            return Err("this is not a collection".into());
        }
        Ok(spec)
    }

    /// The filter `key` (`field` or `field__op`) with its values.
    fn filter(&mut self, entity: &Entity, key: &str, values: Vec<&'q str>) -> Result<(), String> {
        // A field name first (as Buildbot does), then `field__op` split at the last `__`.
        let (field, op) = match entity.field(key) {
            Some(f) => (f, "eq"),
            None => {
                let unknown = || format!("unrecognized query parameter '{key}'");
                let (name, op) = key.rsplit_once("__").ok_or_else(unknown)?;
                let field = entity.field(name).ok_or_else(unknown)?;
                let Some((_, op)) = OPS.iter().find(|(o, _)| *o == op) else {
                    let ops: Vec<&str> = OPS.iter().map(|(o, _)| *o).collect();
                    return Err(format!(
                        "unrecognized query parameter '{key}' (no operator '{op}'; \
                         expected one of {})",
                        ops.join(", ")
                    ));
                };
                (field, *op)
            }
        };
        if matches!(field.col, Col::Json) {
            return Err(format!("invalid filter value for {key}"));
        }
        if op == "eq" {
            self.filters.push(Term { field, op, values });
        } else {
            for v in values {
                self.filters.push(Term {
                    field,
                    op,
                    values: vec![v],
                });
            }
        }
        Ok(())
    }
}

/// `limit`/`offset`: a non-negative integer.
fn count(key: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("invalid {key}: expected a non-negative integer, got '{v}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog;

    fn err(qs: &str, entity: &Entity, shape: Shape) -> String {
        let q = Query::parse(Some(qs));
        match Spec::parse(&q, entity, shape) {
            Ok(s) => panic!("{qs}: accepted as {s:?}"),
            Err(e) => e,
        }
    }

    fn ok(qs: &str, entity: &Entity, shape: Shape) {
        let q = Query::parse(Some(qs));
        if let Err(e) = Spec::parse(&q, entity, shape) {
            panic!("{qs}: {e}");
        }
    }

    use Shape::{Collection as C, Single as S};

    #[test]
    fn unknown_filter_fields_are_rejected_with_buildbots_text() {
        let b = &catalog::BUILDS;
        assert_eq!(
            err("nosuchfield=1", b, C),
            "unrecognized query parameter 'nosuchfield'"
        );
        assert_eq!(
            err("nosuch=1", &catalog::BUILDERS, S),
            "unrecognized query parameter 'nosuch'"
        );
        // A field of another resource is unknown here.
        assert_eq!(
            err("slug=stdio", &catalog::STEPS, C),
            "unrecognized query parameter 'slug'"
        );
        assert_eq!(
            err("x=1", &catalog::BUILD_PROPERTIES, S),
            "unrecognized query parameter 'x'"
        );
        // Buildbot drops these silently; here they are 400s (see the module comment).
        assert_eq!(
            err("nosuch__eq=1", b, C),
            "unrecognized query parameter 'nosuch__eq'"
        );
        assert_eq!(err("=1", b, C), "unrecognized query parameter ''");
    }

    #[test]
    fn unknown_operators_are_rejected_and_buildbots_in_notin_accepted() {
        let b = &catalog::BUILDS;
        let e = err("buildid__like=1", b, C);
        assert!(
            e.starts_with("unrecognized query parameter 'buildid__like' (no operator 'like'"),
            "{e}"
        );
        assert!(err("complete__=1", b, C).contains("no operator ''"));
        ok("buildid__in=1&buildid__in=2&results__notin=2", b, C);
        let q = Query::parse(Some("buildid__in=1&buildid__in=2&results__notin=2"));
        let s = Spec::parse(&q, b, C).unwrap();
        let terms: Vec<(&str, &str, Vec<&str>)> = s
            .filters
            .iter()
            .map(|t| (t.field.name, t.op, t.values.clone()))
            .collect();
        assert_eq!(
            terms,
            [
                ("buildid", "eq", vec!["1", "2"]),
                ("results", "ne", vec!["2"])
            ]
        );
    }

    #[test]
    fn unknown_order_and_field_names_are_rejected() {
        let b = &catalog::BUILDS;
        assert_eq!(err("order=nosuch", b, C), "no such field 'nosuch'");
        assert_eq!(err("order=-nosuch", b, C), "no such field 'nosuch'");
        assert_eq!(err("order=--buildid", b, C), "no such field '-buildid'");
        assert_eq!(err("order=", b, C), "no such field ''");
        assert_eq!(
            err("order=buildid&order=-nosuch", b, C),
            "no such field 'nosuch'"
        );
        assert_eq!(err("field=nosuch", b, C), "no such field 'nosuch'");
        assert_eq!(
            err("field=buildid&field=bogus", b, S),
            "no such field 'bogus'"
        );
        ok(
            "order=-name&field=name&field=workerid",
            &catalog::WORKERS,
            C,
        );
        ok(
            "order=-buildid&order=number&field=number&field=buildid",
            b,
            C,
        );
    }

    #[test]
    fn json_fields_exist_but_cannot_be_filtered() {
        for (qs, e) in [
            ("properties=1", "properties"),
            ("properties__ne=x", "properties__ne"),
        ] {
            assert_eq!(
                err(qs, &catalog::BUILDS, C),
                format!("invalid filter value for {e}")
            );
        }
        for (entity, name) in [
            (&catalog::BUILDREQUESTS, "properties"),
            (&catalog::BUILDSETS, "sourcestamps"),
            (&catalog::CHANGES, "sourcestamp"),
            (&catalog::STEPS, "urls"),
            (&catalog::WORKERS, "workerinfo"),
            (&catalog::FORCESCHEDULERS, "all_fields"),
        ] {
            assert_eq!(
                err(&format!("{name}=1"), entity, C),
                format!("invalid filter value for {name}")
            );
            // Ordering and selecting them is fine.
            ok(&format!("order=-{name}&field={name}"), entity, C);
        }
        // Lists of plain values can be filtered.
        ok(
            "files__contains=a.spec&parent_changeids=1",
            &catalog::CHANGES,
            C,
        );
        ok("tags__contains=x&masterids=1", &catalog::BUILDERS, C);
    }

    #[test]
    fn selected_fields_bound_orders_and_filters() {
        let b = &catalog::BUILDS;
        assert_eq!(
            err("field=buildid&order=number", b, C),
            "cannot order on un-selected fields"
        );
        assert_eq!(
            err("field=buildid&complete=1", b, C),
            "cannot filter on un-selected fields"
        );
        assert_eq!(
            err("field=buildid&number__gt=1", b, C),
            "cannot filter on un-selected fields"
        );
        ok(
            "field=buildid&field=number&number__gt=1&order=-buildid",
            b,
            C,
        );
    }

    #[test]
    fn single_items_take_no_filters_but_take_the_rest() {
        let b = &catalog::BUILDS;
        assert_eq!(err("complete=1", b, S), "this is not a collection");
        assert_eq!(err("buildid__in=1", b, S), "this is not a collection");
        ok(
            "field=buildid&order=-buildid&property=*&limit=1&offset=2",
            b,
            S,
        );
        ok("field=content&offset=3&limit=2", &catalog::LOGCHUNKS, S);
    }

    #[test]
    fn window_and_the_first_bad_key_decides() {
        let b = &catalog::BUILDS;
        assert!(err("limit=x", b, C).starts_with("invalid limit"));
        assert!(err("offset=-1", b, C).starts_with("invalid offset"));
        // Keys in order of their first appearance, each with all its values (Buildbot's
        // request.args): `order` comes first here although its bad value is last.
        assert_eq!(
            err("order=buildid&nosuch=1&order=bogus", b, C),
            "no such field 'bogus'"
        );
        assert_eq!(
            err("nosuch=1&order=bogus", b, C),
            "unrecognized query parameter 'nosuch'"
        );
        assert!(err("limit=x&nosuch=1", b, C).starts_with("invalid limit"));
        // `property` is accepted on every resource, as in Buildbot.
        ok("property=uuid", &catalog::BUILDERS, C);
    }
}
