//! Table tests for every mongoquery operator the rules may use (semantics of mongoquery 1.4.3,
//! checked case by case against the real library in mongoquery_differential.rs).

use serde_json::{json, Value};
use taskotron_trigger::rules::Query;

fn m(q: Value, doc: Value) -> bool {
    Query::compile_value(&q, "when").unwrap().matches(&doc)
}

#[test]
fn operator_table() {
    let doc = json!({
        "name": "docker", "n": 5, "f": 2.5, "t": true, "none": null,
        "tags": ["a", "b"], "nested": {"x": {"y": 1}}, "builds": [{"nvr": "a-1-1"}, {"nvr": "b-1-1"}],
        "tag": "f32-updates-testing-pending"
    });
    let cases: Vec<(Value, bool)> = vec![
        // plain equality, dotted paths, list membership, missing fields
        (json!({"name": "docker"}), true),
        (json!({"name": "Docker"}), false),
        (json!({"nested.x.y": 1}), true),
        (json!({"nested.x.y": 1.0}), true),
        (json!({"tags": "a"}), true),
        (json!({"tags": ["a", "b"]}), true), // the whole list equal, before membership
        (json!({"tags": ["a"]}), false),
        (json!({"builds.nvr": "b-1-1"}), true),
        (json!({"builds.0.nvr": "a-1-1"}), true),
        (json!({"builds.-1.nvr": "b-1-1"}), true),
        (json!({"builds.5.nvr": "a-1-1"}), false),
        (json!({"missing": null}), false),
        (json!({"none.deeper": null}), true),
        (json!({"t": 1}), true),
        // comparisons
        (json!({"n": {"$gt": 4}}), true),
        (json!({"n": {"$gt": 5}}), false),
        (json!({"n": {"$gte": 5}}), true),
        (json!({"n": {"$lt": 5.5}}), true),
        (json!({"n": {"$lte": 4}}), false),
        (json!({"name": {"$gt": "a"}}), true),
        (json!({"name": {"$gt": 1}}), false), // TypeError in Python 3: no match
        (json!({"missing": {"$lt": 1}}), false),
        (json!({"n": {"$ne": 4}}), true),
        (json!({"n": {"$ne": 5}}), false),
        (json!({"missing": {"$ne": 5}}), true),
        (json!({"n": {"$eq": 5}}), true),
        // $in / $nin (any listed value; against a list field, any shared element)
        (json!({"name": {"$in": ["docker", "bash"]}}), true),
        (json!({"name": {"$in": []}}), false),
        (json!({"tags": {"$in": ["b", "z"]}}), true),
        (json!({"tags": {"$nin": ["z"]}}), true),
        (json!({"name": {"$in": "dockerfile"}}), false), // TypeError escapes mongoquery: no match
        (json!({"name": {"$nin": ["kernel", "firefox"]}}), true),
        (json!({"name": {"$nin": ["docker"]}}), false),
        (json!({"missing": {"$nin": ["docker"]}}), true),
        (json!({"missing": {"$in": ["docker"]}}), false),
        // logical
        (json!({"$and": [{"name": "docker"}, {"n": 5}]}), true),
        (json!({"$and": [{"name": "docker"}, {"n": 6}]}), false),
        (json!({"$or": [{"name": "x"}, {"n": 5}]}), true),
        (json!({"$or": [{"name": "x"}, {"n": 6}]}), false),
        (json!({"$nor": [{"name": "x"}, {"n": 6}]}), true),
        (json!({"$nor": [{"name": "docker"}]}), false),
        (json!({"n": {"$not": {"$gt": 6}}}), true),
        (json!({"n": {"$not": {"$gt": 4}}}), false),
        (
            json!({"tag": {"$and": [{"$regex": "/^f[0-9]{2}-updates(-testing)?-pending$/"}, {"$not": {"$regex": "/^f33-.*/"}}]}}),
            true,
        ),
        // element
        (json!({"name": {"$exists": true}}), true),
        (json!({"missing": {"$exists": true}}), false),
        (json!({"missing": {"$exists": false}}), true),
        (json!({"name": {"$exists": false}}), false),
        (json!({"n": {"$exists": true, "$gt": 4}}), true),
        (json!({"n": {"$exists": true, "$gt": 5}}), false),
        (json!({"n": {"$type": "int"}}), true),
        (json!({"n": {"$type": "number"}}), true),
        (json!({"f": {"$type": 1}}), true),
        (json!({"f": {"$type": "int"}}), false),
        (json!({"name": {"$type": "string"}}), true),
        (json!({"tags": {"$type": "array"}}), true),
        (json!({"nested": {"$type": "object"}}), true),
        (json!({"none": {"$type": "null"}}), true),
        (json!({"t": {"$type": "bool"}}), true),
        // evaluation
        (json!({"n": {"$mod": [2, 1]}}), true),
        (json!({"n": {"$mod": [5, 0]}}), true),
        (json!({"n": {"$mod": [-3, -1]}}), true), // Python: 5 % -3 == -1
        (json!({"n": {"$mod": [2, 0]}}), false),
        (json!({"tag": {"$regex": "testing"}}), true),
        (json!({"tag": {"$regex": "/^testing/"}}), false),
        (
            json!({"tag": {"$regex": "/.*(?<!testing-pending)$/"}}),
            false,
        ),
        (json!({"n": {"$regex": "5"}}), false), // non-string never matches
        (json!({"name": {"$regex": "/DOCK/i"}}), true),
        // array
        (json!({"tags": {"$all": ["a", "b"]}}), true),
        (json!({"tags": {"$all": ["a", "c"]}}), false),
        (json!({"builds": {"$elemMatch": {"nvr": "b-1-1"}}}), true),
        (json!({"builds": {"$elemMatch": {"nvr": "c-1-1"}}}), false),
        (json!({"tags": {"$size": 2}}), true),
        (json!({"tags": {"$size": 1}}), false),
        (json!({"name": {"$size": 6}}), false),
        // comment is a no-op
        (json!({"$comment": "anything", "name": "docker"}), true),
    ];
    for (q, want) in cases {
        assert_eq!(m(q.clone(), doc.clone()), want, "query {q}");
    }
}

#[test]
fn bad_queries_are_rejected_with_their_path() {
    for (q, needle) in [
        (json!({"a": {"$bogus": 1}}), "when.a.$bogus"),
        (json!({"a": {"$where": "x"}}), "not implemented"),
        (json!({"a": {"$regex": "/(unclosed/"}}), "$regex"),
        (json!({"a": {"$regex": 5}}), "expects a string"),
        (json!({"$and": {"a": 1}}), "expects a list"),
        (json!({"a": {"$size": "x"}}), "$size"),
        (json!({"a": {"$type": "nope"}}), "$type"),
        (json!({"a": {"$mod": [1]}}), "$mod"),
    ] {
        let e = Query::compile_value(&q, "when").unwrap_err().to_string();
        assert!(e.contains(needle), "{q}: {e}");
    }
}
