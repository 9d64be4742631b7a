//! Small helpers to read fields out of msgpack maps (`rmpv::Value`) without panicking.

use rmpv::Value;

/// Looks up a string key in a msgpack map's pairs.
pub fn map_get<'a>(pairs: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A short name for a value's msgpack type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "int",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "str",
        Value::Binary(_) => "bin",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext",
    }
}

/// Text of a msgpack str (invalid UTF-8 is replaced, as Python's `errors='replace'` would).
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(match s.as_str() {
            Some(t) => t.to_string(),
            None => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        }),
        _ => None,
    }
}

/// A number as f64 (msgpack ints and floats both count).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        Value::Integer(i) => i.as_f64(),
        _ => None,
    }
}

/// Bytes of a msgpack bin, or of a str (lenient: some peers send text where bytes are meant).
pub fn as_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Binary(b) => Some(b.clone()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// Compares two values the way Python's msgpack round trip would consider them equal:
/// ints and floats compare numerically, maps compare as unordered key sets.
pub fn semantically_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| semantically_equal(k, k2) && semantically_equal(v, v2))
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantically_equal(p, q))
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(p), Some(q)) => p == q,
            _ => a == b,
        },
    }
}
