//! Differential test of the rule matcher against the real mongoquery 1.4.3 (PyPI), the library
//! Taskotron's trigger matched `when:` with: thousands of generated queries and documents
//! (every operator we support, nested fields, dotted and numeric paths, lists, mixed types,
//! `$regex` flags), answered by both, compared case by case.
//!
//! The Python side runs in the test venv (scripts/test-deps installs mongoquery there; override
//! with TASKOTRON_TEST_VENV). The only accepted differences are the deliberate ones listed in
//! docs/trigger.md ("Differences from mongoquery 1.4.3"), each a named predicate below.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use taskotron_trigger::rules::Query;

const CASES: usize = 20_000;

fn python() -> PathBuf {
    let venv = std::env::var_os("TASKOTRON_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing; run scripts/test-deps (make test does this)",
        py.display()
    );
    py
}

/// Random values from a small alphabet, so that queries and documents meet often.
struct Gen(StdRng);

const KEYS: [&str; 3] = ["a", "b", "c"];
const PATHS: [&str; 9] = ["a", "b", "c", "a.b", "a.c", "a.0", "b.1", "a.b.c", "a.-1"];
const STRINGS: [&str; 6] = ["a", "b", "ab", "x", "A", "a b"];
const REGEXES: [&str; 10] = [
    "/^a/",
    "/^a/i",
    "b$",
    "/A.B/si",
    "/a b/x",
    "a|x",
    "/^(a|b)$/",
    "/.*(?<!b)$/",
    "/B/m",
    "^$",
];
const TYPES: [&str; 9] = [
    "string", "number", "double", "int", "bool", "null", "array", "object", "long",
];

impl Gen {
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        *xs.choose(&mut self.0).unwrap()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p)
    }

    fn scalar(&mut self) -> Value {
        match self.0.random_range(0..10) {
            0..=2 => json!(self.0.random_range(-1..4)),
            3 => json!(self.pick(&[0.5, 1.0, 2.5])),
            4..=7 => json!(self.pick(&STRINGS)),
            8 => json!(self.chance(0.5)),
            _ => Value::Null,
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        if depth == 0 {
            return self.scalar();
        }
        match self.0.random_range(0..10) {
            0..=4 => self.scalar(),
            5..=7 => {
                let n = self.0.random_range(0..4);
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            _ => self.object(depth - 1),
        }
    }

    fn object(&mut self, depth: u32) -> Value {
        let mut m = Map::new();
        for k in KEYS {
            if self.chance(0.8) {
                m.insert(k.into(), self.value(depth));
            }
        }
        Value::Object(m)
    }

    /// A condition on one field: a literal or a mapping of operators.
    fn condition(&mut self, depth: u32) -> Value {
        if self.chance(0.25) {
            return self.value(1);
        }
        let mut m = Map::new();
        let n = if self.chance(0.8) { 1 } else { 2 };
        for _ in 0..n {
            let (op, operand) = self.operator(depth);
            m.insert(op.into(), operand);
        }
        Value::Object(m)
    }

    fn scalars(&mut self) -> Value {
        let n = self.0.random_range(0..4);
        Value::Array((0..n).map(|_| self.scalar()).collect())
    }

    fn operator(&mut self, depth: u32) -> (&'static str, Value) {
        let deep = depth > 0;
        match self.0.random_range(0..if deep { 19 } else { 14 }) {
            0 => ("$eq", self.value(1)),
            1 => ("$ne", self.value(1)),
            2 => ("$gt", self.scalar()),
            3 => ("$gte", self.scalar()),
            4 => (
                "$lt",
                if self.chance(0.8) {
                    self.scalar()
                } else {
                    self.value(1)
                },
            ),
            5 => ("$lte", self.scalar()),
            6 => ("$in", self.scalars()),
            7 => ("$nin", self.scalars()),
            8 => ("$exists", json!(self.chance(0.5))),
            9 => ("$regex", json!(self.pick(&REGEXES))),
            10 if self.chance(0.2) => ("$size", json!({"$gt": self.0.random_range(0..3)})),
            10 => ("$size", json!(self.0.random_range(0..4))),
            11 => ("$type", json!(self.pick(&TYPES))),
            12 => (
                "$mod",
                json!([self.pick(&[2, 3, -2]), self.0.random_range(-1..2)]),
            ),
            13 => ("$all", self.scalars()),
            14 => ("$not", self.condition(depth - 1)),
            15 => ("$elemMatch", self.query(depth - 1)),
            16 => ("$and", self.conditions(depth - 1)),
            17 => ("$or", self.conditions(depth - 1)),
            _ => ("$nor", self.conditions(depth - 1)),
        }
    }

    fn conditions(&mut self, depth: u32) -> Value {
        let n = self.0.random_range(1..3);
        Value::Array((0..n).map(|_| self.condition(depth)).collect())
    }

    /// A query: field conditions and now and then a top-level logical operator.
    fn query(&mut self, depth: u32) -> Value {
        let mut m = Map::new();
        let n = if self.chance(0.75) { 1 } else { 2 };
        for _ in 0..n {
            if depth > 0 && self.chance(0.15) {
                let op = self.pick(&["$and", "$or", "$nor"]);
                let n = self.0.random_range(1..3);
                let subs: Vec<Value> = (0..n).map(|_| self.query(depth - 1)).collect();
                m.insert(op.into(), Value::Array(subs));
            } else {
                let path = self.pick(&PATHS);
                m.insert(path.into(), self.condition(depth));
            }
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    True,
    False,
    /// Ours: the query did not compile.
    Rejected(String),
    /// Python raised.
    Raised(String),
}

fn ours(q: &Value, d: &Value) -> Answer {
    match Query::compile_value(q, "when") {
        Ok(query) => {
            if query.matches(d) {
                Answer::True
            } else {
                Answer::False
            }
        }
        Err(e) => Answer::Rejected(e.to_string()),
    }
}

fn theirs(cases: &[(Value, Value)]) -> Vec<Answer> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mongoquery_oracle.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the mongoquery oracle");
    let mut input = String::new();
    for (q, d) in cases {
        input.push_str(&json!({"q": q, "d": d}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "oracle failed (is mongoquery 1.4.3 in the venv? run scripts/test-deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Answer> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l {
            "true" => Answer::True,
            "false" => Answer::False,
            other => Answer::Raised(other.trim_start_matches("error:").to_string()),
        })
        .collect();
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    answers
}

/// Deliberate difference 1: where Python raises while matching (TypeError from comparing or
/// combining unlike types, `$mod` on a string, `in` on None, ...), the condition is false and
/// the rule simply does not fire; a trigger must not crash on an odd message.
fn raised_means_false(ours: &Answer, theirs: &Answer) -> bool {
    matches!(theirs, Answer::Raised(_)) && *ours == Answer::False
}

/// Deliberate difference 2: an operand that can never work (`$in` without a list, `$size`
/// without an integer, an unknown `$type`, a bad regex, ...) rejects the rules file when it is
/// loaded, with the path of the bad operand; mongoquery only raises when evaluation reaches it.
fn rejected_at_load(ours: &Answer) -> bool {
    matches!(ours, Answer::Rejected(_))
}

#[test]
fn answers_equal_mongoquery_1_4_3() {
    let mut g = Gen(StdRng::seed_from_u64(20261206));
    let cases: Vec<(Value, Value)> = (0..CASES).map(|_| (g.query(2), g.object(2))).collect();
    let python = theirs(&cases);
    let (mut t, mut f, mut raised, mut rejected) = (0, 0, 0, 0);
    let mut disagreements = vec![];
    for ((q, d), them) in cases.iter().zip(&python) {
        let us = ours(q, d);
        match them {
            Answer::True => t += 1,
            Answer::False => f += 1,
            _ => raised += 1,
        }
        if rejected_at_load(&us) {
            rejected += 1;
        }
        if us == *them || raised_means_false(&us, them) || rejected_at_load(&us) {
            continue;
        }
        disagreements.push(format!(
            "query {q}\n  doc {d}\n  ours {us:?}, mongoquery {them:?}"
        ));
    }
    eprintln!(
        "{CASES} cases: mongoquery says true {t}, false {f}, raised {raised}; we rejected {rejected} at compile time"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements; the first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Not vacuous: both answers are common, and compile-time rejections stay rare.
    assert!(t > CASES / 10 && f > CASES / 10, "true {t}, false {f}");
    assert!(rejected < CASES / 20, "{rejected} rejected queries");
}

#[test]
fn the_oracle_is_the_real_library() {
    // A case where mongoquery 1.4.3 differs from a naive reading: `$in` against a list field
    // is an intersection, a plain scalar condition against a list is membership.
    let cases = vec![
        (json!({"a": {"$in": ["x", "y"]}}), json!({"a": ["y", "z"]})),
        (json!({"a": "y"}), json!({"a": ["y", "z"]})),
        (json!({"a": {"$in": "y"}}), json!({"a": "y"})),
    ];
    assert_eq!(
        theirs(&cases),
        [
            Answer::True,
            Answer::True,
            Answer::Raised("TypeError".into())
        ]
    );
}
