//! Property tests: the envelope parser never panics, the canonical JSON writer matches
//! Python's `json.dumps(sort_keys=True, separators=(',', ':'))` on generated documents, and the
//! query matcher's logical operators agree with each other on generated data.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use taskotron_common::json_canon;
use taskotron_trigger::fedmsg::Envelope;
use taskotron_trigger::rules::Query;

/// A generated JSON document, written in a deliberately non-canonical way.
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    Int(String),
    Float(String),
    Str(Vec<u32>),
    Arr(Vec<Doc>),
    Obj(Vec<(Vec<u32>, Doc)>),
}

fn code_point() -> impl Strategy<Value = u32> {
    prop_oneof![
        0x20u32..0x7f,
        0u32..0x20,
        Just(0x7f),
        0x80u32..0x800,
        0x800u32..0xd800,
        0xd800u32..0xe000, // lone surrogates, legal in Python strings
        0xe000u32..0x10000,
        0x10000u32..0x110000,
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        any::<i64>().prop_map(|i| Doc::Int(i.to_string())),
        "[1-9][0-9]{18,30}".prop_map(Doc::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Doc::Float(format!("{f:e}"))),
        (-1000i32..1000, 0u32..1000).prop_map(|(a, b)| Doc::Float(format!("{a}.{b}"))),
        (1u32..10, -400i32..400).prop_map(|(m, e)| Doc::Float(format!("{m}E{e}"))),
        proptest::collection::vec(code_point(), 0..12).prop_map(Doc::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Doc::Arr),
            proptest::collection::vec((proptest::collection::vec(code_point(), 0..6), inner), 0..6)
                .prop_map(Doc::Obj),
        ]
    })
}

fn write_str(out: &mut String, s: &[u32], raw_unicode: bool) {
    out.push('"');
    for &c in s {
        match c {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from_u32(c).unwrap()),
            _ if raw_unicode && c > 0x7f && !(0xd800..0xe000).contains(&c) => {
                out.push(char::from_u32(c).unwrap())
            }
            0x10000.. => {
                let v = c - 0x10000;
                let _ = write!(
                    out,
                    "\\u{:04X}\\u{:04x}",
                    0xd800 | (v >> 10),
                    0xdc00 | (v & 0x3ff)
                );
            }
            _ => {
                let _ = write!(out, "\\u{c:04X}");
            }
        }
    }
    out.push('"');
}

/// Loose JSON: spaces after separators, keys in generated order, raw UTF-8 sometimes.
fn write_doc(out: &mut String, d: &Doc, raw: bool) {
    match d {
        Doc::Null => out.push_str("null"),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(s) | Doc::Float(s) => out.push_str(s),
        Doc::Str(s) => write_str(out, s, raw),
        Doc::Arr(a) => {
            out.push_str("[ ");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                write_doc(out, x, raw);
            }
            out.push_str(" ]");
        }
        Doc::Obj(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k, raw);
                out.push_str(": ");
                write_doc(out, v, raw);
            }
            out.push('}');
        }
    }
}

fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        venv.to_string()
    } else {
        "python3".to_string()
    }
}

#[test]
fn canonical_json_matches_python_json_dumps() {
    let mut runner = TestRunner::new(Config::with_cases(400));
    let mut inputs = vec![];
    for i in 0..400 {
        let d = doc().new_tree(&mut runner).unwrap().current();
        let mut s = String::new();
        write_doc(&mut s, &d, i % 2 == 0);
        inputs.push(s);
    }
    // One Python process for the whole batch; input and output are JSON-escaped lines so lone
    // surrogates and raw newlines survive the pipe.
    let script = "import json,sys\nfor line in sys.stdin:\n    doc = json.loads(json.loads(line))\n    print(json.dumps(json.dumps(doc, sort_keys=True, separators=(',', ':'))))\n";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let payload: String = inputs
        .iter()
        .map(|s| format!("{}\n", serde_json::to_string(s).unwrap()))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(payload.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let expected: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect();
    assert_eq!(expected.len(), inputs.len());
    for (input, want) in inputs.iter().zip(&expected) {
        let got =
            json_canon::canonicalize(input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&got, want, "input: {input}");
        // Canonical output is a fixed point.
        assert_eq!(json_canon::canonicalize(got.as_bytes()).unwrap(), got);
    }
}

proptest! {
    #[test]
    fn envelope_parser_never_panics_on_bytes(topic in proptest::collection::vec(any::<u8>(), 0..40),
                                             body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Envelope::from_frames(&topic, &body, 1 << 20);
        let _ = json_canon::parse(&body);
    }

    #[test]
    fn envelope_parser_never_panics_on_json(topic in prop_oneof![Just(json!("a.b")), Just(json!(1)), Just(json!(null))],
                                            msg in prop_oneof![Just(json!({})), Just(json!([1])), Just(json!("x"))],
                                            msg_id in prop_oneof![Just(json!("2017-x")), Just(json!(3)), Just(json!(null))],
                                            drop in 0usize..4) {
        let mut env = json!({"topic": topic, "msg": msg, "msg_id": msg_id, "timestamp": 1});
        let keys = ["topic", "msg", "msg_id", "timestamp"];
        env.as_object_mut().unwrap().remove(keys[drop]);
        let body = env.to_string();
        if let Ok(e) = Envelope::from_frames(b"a.b", body.as_bytes(), 1 << 20) {
            prop_assert_eq!(e.topic, "a.b");
        }
    }

    #[test]
    fn query_logic_is_consistent(doc in doc_value(), cond in condition(), cond2 in condition()) {
        // mongoquery's `$exists` pre-check looks for the *operator* key (`"$not" in value`):
        // documents with `$` keys break the laws below in the real library too.
        if doc.to_string().contains("\"$") {
            return Ok(());
        }
        // None: mongoquery would raise, which ends the whole query (no logic law applies).
        let q = |v: Value| Query::compile_value(&v, "when").map(|q| q.evaluate(&doc));
        let (Ok(Some(a)), Ok(Some(b))) = (q(json!({"f": cond.clone()})), q(json!({"f": cond2.clone()}))) else {
            return Ok(());
        };
        // `$not: {$exists: ...}` asks Python for `"$not" in value`, which raises for a
        // number or None: such a combination may raise where its parts do not.
        let q = |v: Value| q(v).unwrap();
        for (combined, want) in [
            (q(json!({"f": {"$not": cond.clone()}})), !a),
            (q(json!({"$nor": [{"f": cond.clone()}]})), !a),
            (q(json!({"$or": [{"f": cond.clone()}, {"f": cond2.clone()}]})), a || b),
            (q(json!({"$and": [{"f": cond.clone()}, {"f": cond2.clone()}]})), a && b),
            (q(json!({"f": cond.clone(), "$comment": "x"})), a),
        ] {
            if let Some(got) = combined {
                prop_assert_eq!(got, want);
            }
        }
        prop_assert!(q(json!({"$nor": [{"f": cond.clone()}]})).is_some(), "$nor of a clean query is clean");
    }

    #[test]
    fn arbitrary_queries_never_panic(doc in doc_value(), query in json_value()) {
        if let Ok(q) = Query::compile_value(&json!({"f": query}), "when") {
            let _ = q.matches(&doc);
        }
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        (-5.0f64..5.0).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just("$gt"),
        Just("$gte"),
        Just("$lt"),
        Just("$lte"),
        Just("$ne"),
        Just("$in"),
        Just("$nin"),
        Just("$and"),
        Just("$or"),
        Just("$nor"),
        Just("$not"),
        Just("$all"),
        Just("$elemMatch"),
        Just("$size"),
        Just("$type"),
        Just("$mod"),
        Just("$regex"),
        Just("$exists"),
        Just("f"),
        Just("f.0"),
    ];
    scalar().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((op.clone(), inner), 0..3).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn doc_value() -> impl Strategy<Value = Value> {
    (json_value(), json_value()).prop_map(|(f, g)| json!({"f": f, "g": g}))
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        scalar().prop_map(|v| json!({"$gt": v})),
        scalar().prop_map(|v| json!({"$lte": v})),
        scalar().prop_map(|v| json!({"$ne": v})),
        proptest::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$in": v})),
        proptest::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$nin": v})),
        "[a-c.^$]{1,4}".prop_map(|r| json!({"$regex": r})),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (0i64..3).prop_map(|n| json!({"$size": n})),
        Just(json!({"$type": "string"})),
        Just(json!({"$mod": [2, 1]})),
    ]
}
