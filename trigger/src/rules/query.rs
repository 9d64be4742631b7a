//! `when:` matching with the semantics of Python's `mongoquery` 1.4.3 (the library Taskotron's
//! trigger used; reference: taskotron.md §5.3), checked case by case against the real library
//! (trigger/tests/mongoquery_differential.rs).
//!
//! A query is compiled once (operators checked, regexes built) and then matched against message
//! data. The quirks are mongoquery's, kept on purpose: a scalar condition against a list field
//! means equality or membership; a dotted path over a list maps over its elements; `$in` is
//! true when a listed value equals the field or one of its elements; `$regex` is an unanchored
//! `re.search`; `$exists` tests the key in the *current* value, and with a dotted key walks the
//! path alone. Where mongoquery catches a Python `TypeError` (ordering a string against a
//! number) the condition is false; where it lets an exception escape (`$mod` on a string,
//! `$exists` on a number, ...) the whole query does not match ([`Raised`]). Operands that can
//! never work are rejected when the rules are loaded (mongoquery raises only when it gets there).

use std::cmp::Ordering;

use serde_json::Value;

use super::regex::PyRegex;

/// Why a query does not compile; `path` names where in the `when` it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct QueryError {
    pub path: String,
    pub reason: String,
}

/// A compiled mapping condition: all clauses must hold.
#[derive(Debug, Clone)]
pub struct Query {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
struct Clause {
    /// The key as written (mongoquery's `operator in entry` for `$exists` uses it).
    name: String,
    key: Key,
    cond: Cond,
    /// mongoquery's `$exists` pre-check: (wanted, only `$exists` in the mapping).
    exists: Option<(Value, bool)>,
}

#[derive(Debug, Clone)]
enum Key {
    Op(Op),
    /// A field path split on dots.
    Path(Vec<String>),
    /// A YAML key that is not a string (never present in message data).
    Other,
}

#[derive(Debug, Clone)]
enum Cond {
    Query(Query),
    Literal(Value),
}

#[derive(Debug, Clone)]
enum Op {
    Cmp(Ordering, bool, Value), // ordering wanted, or-equal, operand
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Nor(Vec<Cond>),
    Not(Box<Cond>),
    All(Vec<Cond>),
    ElemMatch(Query),
    Size(i64),
    /// `$size: {query}`: the query matched against the length.
    SizeQuery(Query),
    Type(TypeSpec),
    Mod(Value, Value),
    Regex(Box<PyRegex>),
    Noop, // $exists (handled by the pre-check) and $comment
    /// An operand mongoquery raises on, known only once the template is rendered.
    RaisesWhenReached,
}

#[derive(Debug, Clone, Copy)]
enum TypeSpec {
    Number,
    Float,
    Str,
    Mapping,
    Sequence,
    Never,
    Bool,
    Null,
    Int,
}

/// A value seen while matching: a document value, the "missing" sentinel, or the list built by
/// mapping a path over a list.
#[derive(Debug, Clone)]
enum E<'a> {
    Undef,
    V(&'a Value),
    List(Vec<E<'a>>),
}

impl Query {
    /// Compiles a `when:` mapping (already converted from YAML; non-string keys as `None`).
    pub fn compile(when: &[(Option<String>, Value)], path: &str) -> Result<Query, QueryError> {
        let mut clauses = vec![];
        for (k, v) in when {
            let here = format!("{path}.{}", k.as_deref().unwrap_or("<non-string key>"));
            let key = match k {
                None => Key::Other,
                Some(k) if k.starts_with('$') => Key::Op(compile_op(k, v, &here)?),
                Some(k) => Key::Path(k.split('.').map(str::to_string).collect()),
            };
            let exists = v
                .as_object()
                .and_then(|m| m.get("$exists").map(|want| (want.clone(), m.len() == 1)));
            let cond = match &key {
                Key::Op(_) => Cond::Literal(Value::Null), // operator holds its operand
                _ => compile_cond(v, &here)?,
            };
            let name = k.clone().unwrap_or_default();
            clauses.push(Clause {
                name,
                key,
                cond,
                exists,
            });
        }
        Ok(Query { clauses })
    }

    /// Compiles a JSON-shaped mapping (keys are strings).
    pub fn compile_value(when: &Value, path: &str) -> Result<Query, QueryError> {
        let m = when.as_object().ok_or_else(|| QueryError {
            path: path.to_string(),
            reason: "expected a mapping".into(),
        })?;
        let pairs: Vec<_> = m
            .iter()
            .map(|(k, v)| (Some(k.clone()), v.clone()))
            .collect();
        Query::compile(&pairs, path)
    }

    /// Does the document match?
    pub fn matches(&self, doc: &Value) -> bool {
        self.evaluate(doc).unwrap_or(false)
    }

    /// Like [`Query::matches`], but None where mongoquery would raise (the rule then does
    /// not fire; see [`Raised`]).
    pub fn evaluate(&self, doc: &Value) -> Option<bool> {
        self.matches_e(&E::V(doc)).ok()
    }

    /// All clauses, in order, stopping at the first false one (Python's `all`).
    fn matches_e(&self, entry: &E<'_>) -> R {
        for c in &self.clauses {
            if !c.eval(entry)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn compile_cond(v: &Value, path: &str) -> Result<Cond, QueryError> {
    match v {
        Value::Object(_) => Ok(Cond::Query(Query::compile_value(v, path)?)),
        other => Ok(Cond::Literal(other.clone())),
    }
}

fn compile_list(v: &Value, path: &str, op: &str) -> Result<Vec<Cond>, QueryError> {
    v.as_array()
        .ok_or_else(|| QueryError {
            path: path.to_string(),
            reason: format!("{op} expects a list"),
        })?
        .iter()
        .enumerate()
        .map(|(i, c)| compile_cond(c, &format!("{path}[{i}]")))
        .collect()
}

fn compile_op(op: &str, v: &Value, path: &str) -> Result<Op, QueryError> {
    let err = |reason: String| QueryError {
        path: path.to_string(),
        reason,
    };
    Ok(match op {
        "$gt" => Op::Cmp(Ordering::Greater, false, v.clone()),
        "$gte" => Op::Cmp(Ordering::Greater, true, v.clone()),
        "$lt" => Op::Cmp(Ordering::Less, false, v.clone()),
        "$lte" => Op::Cmp(Ordering::Less, true, v.clone()),
        "$eq" => Op::Eq(v.clone()),
        "$ne" => Op::Ne(v.clone()),
        // Not a list: mongoquery raises TypeError when it gets there. That is not rejected
        // here, because a rules template is compiled before `${critpath_pkgs}` is filled in.
        "$in" | "$nin" => match v.as_array() {
            Some(items) if op == "$in" => Op::In(items.clone()),
            Some(items) => Op::Nin(items.clone()),
            None => Op::RaisesWhenReached,
        },
        "$and" => Op::And(compile_list(v, path, op)?),
        "$or" => Op::Or(compile_list(v, path, op)?),
        "$nor" => Op::Nor(compile_list(v, path, op)?),
        "$all" => Op::All(compile_list(v, path, op)?),
        "$not" => Op::Not(Box::new(compile_cond(v, path)?)),
        "$elemMatch" => Op::ElemMatch(Query::compile_value(v, path)?),
        "$size" => match v {
            Value::Object(_) => Op::SizeQuery(Query::compile_value(v, path)?),
            _ => Op::Size(
                v.as_i64()
                    .ok_or_else(|| err("$size expects an integer or a query".into()))?,
            ),
        },
        "$type" => Op::Type(type_spec(v).ok_or_else(|| err(format!("$type: unknown type {v}")))?),
        "$mod" => match v.as_array().map(Vec::as_slice) {
            Some([d, r, ..]) if d.is_number() && r.is_number() => Op::Mod(d.clone(), r.clone()),
            _ => return Err(err("$mod expects [divisor, remainder]".into())),
        },
        "$regex" => {
            let s = v
                .as_str()
                .ok_or_else(|| err("$regex expects a string '/pattern/flags'".into()))?;
            Op::Regex(Box::new(PyRegex::from_mongo(s).map_err(err)?))
        }
        "$exists" | "$comment" => Op::Noop,
        "$options" | "$text" | "$where" => return Err(err(format!("{op} is not implemented"))),
        other => return Err(err(format!("{other:?} operator isn't supported"))),
    })
}

fn type_spec(v: &Value) -> Option<TypeSpec> {
    if v.as_str() == Some("number") {
        return Some(TypeSpec::Number);
    }
    let code = match v {
        Value::String(s) => match s.as_str() {
            "double" => 1,
            "string" => 2,
            "object" => 3,
            "array" => 4,
            "binData" => 5,
            "objectId" => 7,
            "bool" => 8,
            "date" => 9,
            "null" => 10,
            "regex" => 11,
            "javascript" => 13,
            "javascriptWithScope" => 15,
            "int" => 16,
            "timestamp" => 17,
            "long" => 18,
            _ => return None,
        },
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f.fract() != 0.0 {
                return None;
            }
            f as i64
        }
        _ => return None,
    };
    Some(match code {
        1 => TypeSpec::Float,
        2 | 7 | 9 | 13 | 15 => TypeSpec::Str,
        // A compiled regex object; message data never holds one.
        11 => TypeSpec::Never,
        3 => TypeSpec::Mapping,
        4 => TypeSpec::Sequence,
        5 => TypeSpec::Never,
        8 => TypeSpec::Bool,
        10 => TypeSpec::Null,
        16..=18 => TypeSpec::Int,
        _ => return None,
    })
}

/// Python raised while matching (a `TypeError` mongoquery does not catch, `RecursionError` in
/// its `$exists` path walk, ...). It ends the whole query, which then does not match: where
/// Taskotron's trigger would have failed on the message, the rule simply does not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raised;

type R = Result<bool, Raised>;

impl Clause {
    /// mongoquery's `_process_condition(key, condition, entry)`.
    fn eval(&self, entry: &E<'_>) -> R {
        if let Some((want, only)) = &self.exists {
            if let Key::Path(p) = &self.key {
                if p.len() > 1 {
                    // A dotted key with `$exists` walks the path and decides alone.
                    return path_exists(entry, p, want);
                }
            }
            if !py_truth_eq(want, py_contains(entry, &self.name)?) {
                return Ok(false);
            }
            if *only {
                return Ok(true);
            }
        }
        match &self.key {
            Key::Op(op) => op.eval(entry),
            Key::Path(p) => {
                let extracted = extract(entry.clone(), p).unwrap_or(E::Undef);
                match_cond(&self.cond, &extracted)
            }
            Key::Other => Ok(false),
        }
    }
}

/// `condition["$exists"] != (key in entry)` compares a YAML value with a bool, Python style.
fn py_truth_eq(want: &Value, present: bool) -> bool {
    match want {
        Value::Bool(b) => *b == present,
        Value::Number(n) => n.as_f64() == Some(if present { 1.0 } else { 0.0 }),
        _ => false,
    }
}

/// Python's truth value of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Python's `key in entry`: keys of a dict, items of a list, a substring of a str; numbers,
/// None and the missing sentinel raise TypeError.
fn py_contains(entry: &E<'_>, key: &str) -> Result<bool, Raised> {
    match entry {
        E::V(Value::Object(m)) => Ok(m.contains_key(key)),
        E::V(Value::Array(a)) => Ok(a.iter().any(|x| x.as_str() == Some(key))),
        E::V(Value::String(s)) => Ok(s.contains(key)),
        E::List(l) => Ok(l
            .iter()
            .any(|x| matches!(x, E::V(Value::String(s)) if s == key))),
        _ => Err(Raised),
    }
}

/// mongoquery's `_path_exists` for a dotted key with `$exists: want`: walks the path,
/// descending into every element of a sequence (a Python str is one, so a non-empty string
/// met with a non-numeric key recurses without end: RecursionError).
fn path_exists(entry: &E<'_>, keys: &[String], want: &Value) -> R {
    let (yes, no) = (truthy(want), !truthy(want));
    let mut cur: E<'_> = entry.clone();
    for (i, k) in keys.iter().enumerate() {
        let digit = !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit());
        match &cur {
            E::V(Value::String(s)) if !digit => {
                return if s.is_empty() { Ok(no) } else { Err(Raised) };
            }
            E::V(Value::Array(_)) | E::List(_) if !digit => {
                let items: Vec<E<'_>> = match &cur {
                    E::V(Value::Array(a)) => a.iter().map(E::V).collect(),
                    E::List(l) => l.clone(),
                    _ => unreachable!(),
                };
                for item in &items {
                    if path_exists(item, &keys[i..], want)? == yes {
                        return Ok(yes);
                    }
                }
                return Ok(no);
            }
            _ => {}
        }
        let next = match (&cur, digit) {
            (E::V(Value::Array(a)), true) => {
                k.parse::<usize>().ok().and_then(|i| a.get(i)).map(E::V)
            }
            (E::List(l), true) => k.parse::<usize>().ok().and_then(|i| l.get(i)).cloned(),
            (E::V(Value::String(s)), true) => {
                // Indexing a str gives a one-character str, walked on from there.
                return match k.parse::<usize>().ok().and_then(|i| s.chars().nth(i)) {
                    Some(ch) => path_exists(&E::V(&Value::String(ch.into())), &keys[i + 1..], want),
                    None => Ok(no),
                };
            }
            (E::V(Value::Object(m)), _) => m.get(k.as_str()).map(E::V),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Ok(no),
        }
    }
    Ok(yes)
}

/// mongoquery's `_match(condition, entry)`.
fn match_cond(cond: &Cond, entry: &E<'_>) -> R {
    match cond {
        Cond::Query(q) => q.matches_e(entry),
        Cond::Literal(c) => Ok(py_eq(entry, c)
            || match entry {
                E::V(Value::Array(a)) => a.iter().any(|x| py_eq(&E::V(x), c)),
                E::List(l) => l.iter().any(|x| py_eq(x, c)),
                _ => false,
            }),
    }
}

/// mongoquery's `_extract`; None: an IndexError somewhere on the way (the whole key is then
/// missing, even when other list elements had the index).
fn extract<'a>(entry: E<'a>, path: &[String]) -> Option<E<'a>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(entry);
    };
    Some(match entry {
        E::V(Value::Null) => entry,
        E::V(Value::Array(a)) => match py_int(first) {
            Some(i) => extract(E::V(&a[index(a.len(), i)?]), rest)?,
            None => E::List(
                a.iter()
                    .map(|x| extract(E::V(x), path))
                    .collect::<Option<_>>()?,
            ),
        },
        E::List(l) => match py_int(first) {
            Some(i) => {
                let i = index(l.len(), i)?;
                extract(l[i].clone(), rest)?
            }
            None => E::List(
                l.into_iter()
                    .map(|x| extract(x, path))
                    .collect::<Option<_>>()?,
            ),
        },
        E::V(Value::Object(m)) => match m.get(first.as_str()) {
            Some(v) => extract(E::V(v), rest)?,
            None => E::Undef,
        },
        _ => E::Undef,
    })
}

/// Python's `int(s)` for path parts (`"0"`, `"-1"`, `" 2 "`).
fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Python list indexing, negative from the end.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn exact_int(v: &Value) -> Option<i128> {
    match v {
        Value::Bool(b) => Some(*b as i128),
        Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    }
}

/// Python `==` between a matched value and a condition value.
fn py_eq(e: &E<'_>, c: &Value) -> bool {
    match e {
        E::Undef => false,
        E::V(v) => value_eq(v, c),
        E::List(l) => match c {
            Value::Array(ca) => l.len() == ca.len() && l.iter().zip(ca).all(|(x, y)| py_eq(x, y)),
            _ => false,
        },
    }
}

fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| value_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| value_eq(v, w)))
        }
        _ => match (exact_int(a), exact_int(b)) {
            (Some(x), Some(y)) => x == y,
            _ => match (num(a), num(b)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        },
    }
}

/// Python ordering (`<`) between a matched value and a condition value; None when Python 3
/// would raise TypeError (mongoquery catches it: the comparison is false).
fn py_cmp(e: &E<'_>, c: &Value) -> Option<Ordering> {
    match e {
        E::Undef => None,
        E::V(v) => value_cmp(v, c),
        E::List(l) => {
            let ca = c.as_array()?;
            for (x, y) in l.iter().zip(ca) {
                if !py_eq(x, y) {
                    return py_cmp(x, y);
                }
            }
            Some(l.len().cmp(&ca.len()))
        }
    }
}

fn value_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !value_eq(p, q) {
                    return value_cmp(p, q);
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => match (exact_int(a), exact_int(b)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => num(a)?.partial_cmp(&num(b)?),
        },
    }
}

/// mongoquery 1.4.3's `_in`: true if any listed value is the field's value, or (for a list
/// field) one of its elements, as MongoDB's `$in` does.
fn py_in(e: &E<'_>, items: &[Value]) -> bool {
    items.iter().any(|c| match e {
        E::V(Value::Array(a)) => a.iter().any(|x| value_eq(x, c)),
        E::List(l) => l.iter().any(|x| py_eq(x, c)),
        other => py_eq(other, c),
    })
}

/// `entry % d == r`; numbers only (a str, list, None, ... raise TypeError, `% 0` raises
/// ZeroDivisionError).
fn py_mod(e: &E<'_>, d: &Value, r: &Value) -> R {
    let E::V(v) = e else { return Err(Raised) };
    // Python's % takes the sign of the divisor.
    if let (Some(x), Some(y)) = (exact_int(v), exact_int(d)) {
        if y == 0 {
            return Err(Raised);
        }
        let m = x.rem_euclid(y);
        let m = if y < 0 && m != 0 { m + y } else { m };
        return Ok(exact_int(r) == Some(m) || (num(r) == Some(m as f64) && exact_int(r).is_none()));
    }
    match (num(v), num(d)) {
        (Some(_), Some(0.0)) => Err(Raised),
        (Some(x), Some(y)) => {
            let mut m = x % y;
            if m != 0.0 && (m < 0.0) != (y < 0.0) {
                m += y;
            }
            Ok(num(r) == Some(m))
        }
        _ => Err(Raised),
    }
}

/// `all(...)` / `any(...)` over conditions, short-circuiting like Python (an error after the
/// deciding condition is never reached).
fn all_of(cs: &[Cond], entry: &E<'_>) -> R {
    for c in cs {
        if !match_cond(c, entry)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any_of(cs: &[Cond], entry: &E<'_>) -> R {
    for c in cs {
        if match_cond(c, entry)? {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Op {
    fn eval(&self, entry: &E<'_>) -> R {
        Ok(match self {
            Op::Cmp(want, or_eq, c) => match py_cmp(entry, c) {
                Some(o) => o == *want || (*or_eq && o == Ordering::Equal),
                None => false,
            },
            Op::Eq(c) => py_eq(entry, c),
            Op::Ne(c) => !py_eq(entry, c),
            Op::In(items) => py_in(entry, items),
            Op::Nin(items) => !py_in(entry, items),
            Op::And(cs) | Op::All(cs) => all_of(cs, entry)?,
            Op::Or(cs) => any_of(cs, entry)?,
            Op::Nor(cs) => {
                for c in cs {
                    if match_cond(c, entry)? {
                        return Ok(false);
                    }
                }
                true
            }
            Op::Not(c) => !match_cond(c, entry)?,
            // A Python str is a Sequence: its characters are the elements.
            Op::ElemMatch(q) => match entry {
                E::V(Value::Array(a)) => {
                    for x in a {
                        if q.matches_e(&E::V(x))? {
                            return Ok(true);
                        }
                    }
                    false
                }
                E::List(l) => {
                    for x in l {
                        if q.matches_e(x)? {
                            return Ok(true);
                        }
                    }
                    false
                }
                E::V(Value::String(s)) => {
                    for ch in s.chars() {
                        if q.matches_e(&E::V(&Value::String(ch.into())))? {
                            return Ok(true);
                        }
                    }
                    false
                }
                _ => false,
            },
            Op::Size(n) => match entry {
                E::V(Value::Array(a)) => a.len() as i64 == *n,
                E::List(l) => l.len() as i64 == *n,
                _ => false,
            },
            Op::SizeQuery(q) => {
                let len = match entry {
                    E::V(Value::Array(a)) => a.len(),
                    E::V(Value::Object(m)) => m.len(),
                    E::V(Value::String(s)) => s.chars().count(),
                    E::List(l) => l.len(),
                    _ => return Err(Raised), // len() of a number, None, ...
                };
                q.matches_e(&E::V(&Value::from(len)))?
            }
            Op::Type(t) => type_matches(*t, entry),
            Op::Mod(d, r) => py_mod(entry, d, r)?,
            Op::Regex(re) => match entry {
                E::V(Value::String(s)) => re.search(s),
                _ => false,
            },
            Op::Noop => true,
            Op::RaisesWhenReached => return Err(Raised),
        })
    }
}

fn type_matches(t: TypeSpec, e: &E<'_>) -> bool {
    let int =
        |v: &Value| matches!(v, Value::Bool(_)) || matches!(v, Value::Number(n) if !n.is_f64());
    let float = |v: &Value| matches!(v, Value::Number(n) if n.is_f64());
    match (t, e) {
        (TypeSpec::Sequence, E::List(_)) => true,
        (_, E::List(_)) | (_, E::Undef) => false,
        (TypeSpec::Number, E::V(v)) => int(v) || float(v),
        (TypeSpec::Float, E::V(v)) => float(v),
        (TypeSpec::Int, E::V(v)) => int(v),
        (TypeSpec::Str, E::V(v)) => v.is_string(),
        (TypeSpec::Mapping, E::V(v)) => v.is_object(),
        // A Python str is a Sequence too.
        (TypeSpec::Sequence, E::V(v)) => v.is_array() || v.is_string(),
        (TypeSpec::Bool, E::V(v)) => v.is_boolean(),
        (TypeSpec::Null, E::V(v)) => v.is_null(),
        (TypeSpec::Never, _) => false,
    }
}
