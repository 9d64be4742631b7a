//! Python-identical canonical JSON, as fedmsg signs it.
//!
//! fedmsg signs `json.dumps(envelope, sort_keys=True, separators=(',', ':'))` (with the default
//! `ensure_ascii=True`). To verify a signature we must reproduce those bytes exactly from
//! whatever JSON arrived, so this module has its own value model that keeps what serde_json
//! would lose or change:
//!
//! * integers of any size, exactly (`18446744073709551616` stays an integer);
//! * the int/float distinction (`1` vs `1.0`), and floats printed like Python's `repr`
//!   (`1e+16`, `1e-05`, `1504642719.23539`, `NaN`, `Infinity`);
//! * strings as code points, so lone surrogates (`"\ud800"`, legal in Python) survive, keys sort
//!   by code point like Python's `sorted`, and non-ASCII is written as `\uXXXX` escapes with
//!   surrogate pairs above the BMP;
//! * duplicate object keys resolve to the last value, like `json.loads`.
//!
//! The parser accepts what Python's `json.loads` accepts (including `NaN`, `Infinity`,
//! `-Infinity`) and rejects the rest, with nesting bounded to keep hostile input cheap.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Maximum nesting depth accepted by [`parse`]. Python's default recursion limit is close to
/// this; real fedmsg envelopes nest a handful of levels.
pub const MAX_DEPTH: usize = 256;

/// A string as a sequence of code points (lone surrogates allowed, as in Python's `str`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PyStr(pub Vec<u32>);

impl PyStr {
    /// The string as Rust text, if it has no lone surrogates.
    pub fn to_string_lossless(&self) -> Option<String> {
        self.0.iter().map(|&c| char::from_u32(c)).collect()
    }
}

impl From<&str> for PyStr {
    fn from(s: &str) -> Self {
        PyStr(s.chars().map(|c| c as u32).collect())
    }
}

/// A JSON value with Python's distinctions kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer as its normalised decimal text (optional `-`, no leading zeros, no `-0`).
    Int(String),
    Float(f64),
    Str(PyStr),
    Array(Vec<Value>),
    /// Keys in code-point order, which is also the canonical output order.
    Object(BTreeMap<PyStr, Value>),
}

impl Value {
    /// Removes `key` from an object (no-op for other values); returns the removed value.
    pub fn remove_key(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Object(map) => map.remove(&PyStr::from(key)),
            _ => None,
        }
    }

    /// Looks up `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(&PyStr::from(key)),
            _ => None,
        }
    }

    /// Converts from serde_json (numbers keep their int/float kind; integers are exact up to
    /// 64 bits, which is all serde_json can hold without `arbitrary_precision`).
    pub fn from_serde(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i.to_string())
                } else if let Some(u) = n.as_u64() {
                    Value::Int(u.to_string())
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(PyStr::from(s.as_str())),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_serde).collect()),
            serde_json::Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (PyStr::from(k.as_str()), Value::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

/// Why a document is not JSON that Python would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct ParseError {
    pub offset: usize,
    pub reason: String,
}

/// Parses a JSON document (UTF-8 bytes) the way Python's `json.loads` does.
pub fn parse(input: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| ParseError {
        offset: e.valid_up_to(),
        reason: "not UTF-8".into(),
    })?;
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("extra data after the document"));
    }
    Ok(v)
}

/// Writes `v` exactly like `json.dumps(v, sort_keys=True, separators=(',', ':'))`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Parses `input` and writes it back canonically.
pub fn canonicalize(input: &[u8]) -> Result<String, ParseError> {
    parse(input).map(|v| to_string(&v))
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(s) => out.push_str(s),
        Value::Float(f) => out.push_str(&py_float_repr(*f)),
        Value::Str(s) => write_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, x);
            }
            out.push('}');
        }
    }
}

/// `ensure_ascii` string escaping: printable ASCII as is, everything else as `\uXXXX`
/// (lowercase hex, surrogate pairs above U+FFFF), with the short escapes Python uses.
fn write_str(out: &mut String, s: &PyStr) {
    out.push('"');
    for &c in &s.0 {
        match c {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(c as u8 as char),
            0x10000.. => {
                let v = c - 0x10000;
                let hi = 0xd800 | (v >> 10);
                let lo = 0xdc00 | (v & 0x3ff);
                let _ = write!(out, "\\u{hi:04x}\\u{lo:04x}");
            }
            _ => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)` as `json.dumps` writes it: shortest round-trip digits, fixed
/// notation when the decimal point position is in -3..=16, otherwise `d.ddde±XX`.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7", "1e16".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // value = 0.DIGITS * 10^decpt
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if decpt > -4 && decpt <= 16 {
        let n = digits.len() as i32;
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> ParseError {
        ParseError {
            offset: self.pos,
            reason: reason.to_string(),
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.s.get(self.pos) {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'n') if self.eat("null") => Ok(Value::Null),
            Some(b't') if self.eat("true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Value::Bool(false)),
            Some(b'N') if self.eat("NaN") => Ok(Value::Float(f64::NAN)),
            Some(b'I') if self.eat("Infinity") => Ok(Value::Float(f64::INFINITY)),
            Some(b'-') if self.eat("-Infinity") => Ok(Value::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut map = BTreeMap::new();
        self.ws();
        if self.eat("}") {
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            let k = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected ':'"));
            }
            self.ws();
            let v = self.value(depth + 1)?;
            map.insert(k, v); // last duplicate wins, like a Python dict
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Value::Object(map));
            }
            return Err(self.err("expected ',' or '}'"));
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut out = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Value::Array(out));
        }
        loop {
            self.ws();
            out.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Value::Array(out));
            }
            return Err(self.err("expected ',' or ']'"));
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let neg = self.eat("-");
        let int_start = self.pos;
        match self.s.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("expected digits")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.s.get(self.pos) == Some(&b'.')
            && matches!(self.s.get(self.pos + 1), Some(b'0'..=b'9'))
        {
            is_float = true;
            self.pos += 1;
            while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.pos) {
            let save = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.s.get(self.pos) {
                self.pos += 1;
            }
            if matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
                is_float = true;
                while let Some(b'0'..=b'9') = self.s.get(self.pos) {
                    self.pos += 1;
                }
            } else {
                // Python's regex stops before a bare 'e'; the caller then sees extra data.
                self.pos = save;
            }
        }
        let lit = &self.text[start..self.pos];
        if is_float {
            let f: f64 = lit.parse().map_err(|_| self.err("bad float"))?;
            return Ok(Value::Float(f));
        }
        let digits = &self.text[int_start..int_end];
        if neg && digits != "0" {
            Ok(Value::Int(format!("-{digits}")))
        } else {
            Ok(Value::Int(digits.to_string()))
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let h = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.pos += 4;
        u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))
    }

    fn string(&mut self) -> Result<PyStr, ParseError> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let rest = &self.text[self.pos..];
            let mut chars = rest.char_indices();
            let Some((_, c)) = chars.next() else {
                return Err(self.err("unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(PyStr(out));
                }
                '\\' => {
                    self.pos += 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    let ch = match e {
                        b'"' => 0x22,
                        b'\\' => 0x5c,
                        b'/' => 0x2f,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        b'u' => {
                            let mut u = self.hex4()?;
                            // A high surrogate followed by an escaped low one is one code point.
                            if (0xd800..0xdc00).contains(&u)
                                && self.s[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                } else {
                                    self.pos = save;
                                }
                            }
                            u
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    out.push(ch);
                }
                c if (c as u32) < 0x20 => return Err(self.err("control character in string")),
                c => {
                    out.push(c as u32);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s.as_bytes()).unwrap()
    }

    #[test]
    fn floats_like_python_repr() {
        for (f, want) in [
            (1504643014.0, "1504643014.0"),
            (1504642719.23539, "1504642719.23539"),
            (0.0001, "0.0001"),
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (123.456, "123.456"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f:?}");
        }
    }

    #[test]
    fn ints_exact_and_kinds_kept() {
        assert_eq!(canon("18446744073709551616"), "18446744073709551616");
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("1.0"), "1.0");
        assert_eq!(canon("1E2"), "100.0");
        assert_eq!(canon("[1, 1.5, -2]"), "[1,1.5,-2]");
        assert_eq!(canon("1e400"), "Infinity");
    }

    #[test]
    fn strings_escaped_like_ensure_ascii() {
        assert_eq!(canon(r#""caf\u00e9 ✓""#), r#""caf\u00e9 \u2713""#);
        assert_eq!(canon("\"😀\""), r#""\ud83d\ude00""#);
        assert_eq!(canon(r#""\ud800x""#), r#""\ud800x""#);
        assert_eq!(canon(r#""a/b\u007f\n\t\"\\""#), r#""a/b\u007f\n\t\"\\""#);
    }

    #[test]
    fn keys_sorted_by_code_point_last_duplicate_wins() {
        assert_eq!(
            canon(r#"{"b":1,"a":{"z":1,"é":2,"Z":3},"b":2}"#),
            r#"{"a":{"Z":3,"z":1,"\u00e9":2},"b":2}"#
        );
        // U+FFFF sorts before U+10000 by code point (not by UTF-16 units).
        assert_eq!(
            canon("{\"\u{10000}\":1,\"\u{ffff}\":2}"),
            r#"{"\uffff":2,"\ud800\udc00":1}"#
        );
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            "01",
            "[1,]",
            "{\"a\" 1}",
            "\"\u{1}\"",
            "tru",
            "1 2",
            "[",
            "\"\\x\"",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
