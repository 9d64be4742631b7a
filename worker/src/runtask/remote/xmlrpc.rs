//! A small XML-RPC codec: enough of the spec (and of the `nil`/`i8` extensions Koji uses) to call
//! a Koji hub. Requests are built as strings; responses are parsed with quick-xml into a [`Value`]
//! or a [`Fault`].
//!
//! Koji passes keyword arguments as a trailing struct with `__starstar: true` (koji's
//! `encode_args`); [`encode_call`] does the same when given keyword arguments.

use std::collections::BTreeMap;

use base64::Engine;
use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest nesting of arrays/structs accepted in a response (guards the recursive decoder).
const MAX_DEPTH: usize = 64;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    DateTime(String),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    Struct(BTreeMap<String, Value>),
    Nil,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_struct(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }
    /// A member of a struct (None for other types or a missing key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_struct().and_then(|s| s.get(key))
    }
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// A `<fault>` answer: the server understood the call and refused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: i64,
    pub string: String,
}

/// Why a response could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed XML-RPC response: {0}")]
    Malformed(String),
}

fn malformed(msg: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(msg.into())
}

/// Builds a `<methodCall>` document. Non-empty `kwargs` are sent the way koji does: as a final
/// struct argument carrying `__starstar: true`.
pub fn encode_call(method: &str, args: &[Value], kwargs: &[(&str, Value)]) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName>\n<params>\n");
    let mut all: Vec<Value> = args.to_vec();
    if !kwargs.is_empty() {
        let mut map: BTreeMap<String, Value> = kwargs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        map.insert("__starstar".into(), Value::Bool(true));
        all.push(Value::Struct(map));
    }
    for v in &all {
        out.push_str("<param>");
        encode_value(&mut out, v);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// Appends `<value>…</value>` for `v`.
pub fn encode_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Int(i) if i32::try_from(*i).is_ok() => out.push_str(&format!("<int>{i}</int>")),
        Value::Int(i) => out.push_str(&format!("<i8>{i}</i8>")),
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::Double(d) => out.push_str(&format!("<double>{d:?}</double>")),
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(b) => {
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                encode_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(map) => {
            out.push_str("<struct>");
            for (k, val) in map {
                out.push_str("<member><name>");
                escape_into(out, k);
                out.push_str("</name>");
                encode_value(out, val);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// A parsed XML element: local name, child elements and the concatenated text directly inside.
#[derive(Debug, Default)]
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

/// Parses the document into a tree (responses are size-bounded by the caller).
fn parse_tree(xml: &str) -> Result<Element, DecodeError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let ev = reader.read_event().map_err(|e| {
            malformed(format!(
                "XML error at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match ev {
            Event::Start(start) => {
                if stack.len() > MAX_DEPTH * 3 {
                    return Err(malformed("nesting too deep"));
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                stack.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let el = Element {
                    name,
                    ..Element::default()
                };
                stack
                    .last_mut()
                    .ok_or_else(|| malformed("unbalanced tags"))?
                    .children
                    .push(el);
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unbalanced tags"))?;
                stack
                    .last_mut()
                    .ok_or_else(|| malformed("unbalanced tags"))?
                    .children
                    .push(el);
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| malformed(format!("bad text: {e}")))?;
                let text = quick_xml::escape::unescape(&text)
                    .map_err(|e| malformed(format!("bad entity: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| malformed(format!("bad entity: {e}")))?;
                let resolved = match name.as_ref() {
                    "amp" => "&".to_string(),
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    other => {
                        let code = other
                            .strip_prefix("#x")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
                            .and_then(char::from_u32)
                            .ok_or_else(|| malformed(format!("unknown entity &{other};")))?;
                        code.to_string()
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(malformed("document ended inside an element"));
    }
    let root = stack.pop().unwrap_or_default();
    root.children
        .into_iter()
        .next()
        .ok_or_else(|| malformed("empty document"))
}

fn child<'a>(el: &'a Element, name: &str) -> Result<&'a Element, DecodeError> {
    el.children
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| malformed(format!("<{}> has no <{name}>", el.name)))
}

/// Decodes a `<value>` element.
fn decode_value(el: &Element, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(malformed("values nested too deep"));
    }
    let Some(typed) = el.children.first() else {
        // No type element: a string.
        return Ok(Value::String(el.text.clone()));
    };
    let text = typed.text.trim();
    let int = |t: &str| {
        t.parse::<i64>()
            .map_err(|_| malformed(format!("<{}> holds {t:?}, not an integer", typed.name)))
    };
    Ok(match typed.name.as_str() {
        "int" | "i4" | "i8" | "i2" | "i1" => Value::Int(int(text)?),
        "boolean" => match text {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            other => return Err(malformed(format!("<boolean> holds {other:?}"))),
        },
        "string" => Value::String(typed.text.clone()),
        "double" | "float" => Value::Double(
            text.parse()
                .map_err(|_| malformed(format!("<double> holds {text:?}")))?,
        ),
        "dateTime.iso8601" => Value::DateTime(text.to_string()),
        "base64" => {
            let clean: String = text.split_whitespace().collect();
            Value::Base64(
                base64::engine::general_purpose::STANDARD
                    .decode(clean)
                    .map_err(|e| malformed(format!("<base64>: {e}")))?,
            )
        }
        "nil" => Value::Nil,
        "array" => {
            let data = child(typed, "data")?;
            let mut items = Vec::with_capacity(data.children.len());
            for v in data.children.iter().filter(|c| c.name == "value") {
                items.push(decode_value(v, depth + 1)?);
            }
            Value::Array(items)
        }
        "struct" => {
            let mut map = BTreeMap::new();
            for m in typed.children.iter().filter(|c| c.name == "member") {
                let name = child(m, "name")?.text.clone();
                let v = decode_value(child(m, "value")?, depth + 1)?;
                map.insert(name, v);
            }
            Value::Struct(map)
        }
        other => return Err(malformed(format!("unknown value type <{other}>"))),
    })
}

/// Decodes a `<methodResponse>`: `Ok(Ok(value))`, `Ok(Err(fault))`, or a decode error.
pub fn decode_response(xml: &str) -> Result<Result<Value, Fault>, DecodeError> {
    let root = parse_tree(xml)?;
    if root.name != "methodResponse" {
        return Err(malformed(format!(
            "root element is <{}>, expected <methodResponse>",
            root.name
        )));
    }
    if let Some(fault) = root.children.iter().find(|c| c.name == "fault") {
        let v = decode_value(child(fault, "value")?, 0)?;
        let code = v.get("faultCode").and_then(Value::as_i64).unwrap_or(0);
        let string = v
            .get("faultString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(Err(Fault { code, string }));
    }
    let params = child(&root, "params")?;
    let param = child(params, "param")?;
    Ok(Ok(decode_value(child(param, "value")?, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_with_kwargs_uses_starstar() {
        let xml = encode_call(
            "listRPMs",
            &[],
            &[
                ("buildID", Value::Int(7)),
                ("arches", vec!["x86_64"].into()),
            ],
        );
        assert!(xml.contains("<methodName>listRPMs</methodName>"));
        assert!(xml.contains("<name>__starstar</name><value><boolean>1</boolean></value>"));
        assert!(xml.contains("<name>buildID</name><value><int>7</int></value>"));
    }

    #[test]
    fn escapes_strings_and_uses_i8_for_big_ints() {
        let mut s = String::new();
        encode_value(&mut s, &Value::from("a<b&c"));
        assert_eq!(s, "<value><string>a&lt;b&amp;c</string></value>");
        let mut s = String::new();
        encode_value(&mut s, &Value::Int(5_000_000_000));
        assert_eq!(s, "<value><i8>5000000000</i8></value>");
    }

    #[test]
    fn decodes_koji_like_response() {
        let xml = r#"<?xml version='1.0'?>
<methodResponse><params><param><value><array><data>
<value><struct>
 <member><name>id</name><value><int>42</int></value></member>
 <member><name>size</name><value><ex:i8 xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">3000000000</ex:i8></value></member>
 <member><name>name</name><value><string>py&amp;thon</string></value></member>
 <member><name>bare</name><value>plain text</value></member>
 <member><name>epoch</name><value><nil/></value></member>
 <member><name>ok</name><value><boolean>1</boolean></value></member>
</struct></value>
</data></array></value></param></params></methodResponse>"#;
        let v = decode_response(xml).unwrap().unwrap();
        let first = &v.as_array().unwrap()[0];
        assert_eq!(first.get("id"), Some(&Value::Int(42)));
        assert_eq!(first.get("size"), Some(&Value::Int(3_000_000_000)));
        assert_eq!(first.get("name").and_then(Value::as_str), Some("py&thon"));
        assert_eq!(
            first.get("bare").and_then(Value::as_str),
            Some("plain text")
        );
        assert!(first.get("epoch").unwrap().is_nil());
        assert_eq!(first.get("ok"), Some(&Value::Bool(true)));
    }

    #[test]
    fn decodes_fault() {
        let xml = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><int>1000</int></value></member>\
            <member><name>faultString</name><value><string>No such build</string></value></member>\
            </struct></value></fault></methodResponse>";
        let f = decode_response(xml).unwrap().unwrap_err();
        assert_eq!(f.code, 1000);
        assert_eq!(f.string, "No such build");
    }

    #[test]
    fn roundtrip_through_encoder() {
        let v = Value::Struct(BTreeMap::from([
            (
                "a".to_string(),
                Value::Array(vec![Value::Nil, Value::Double(1.5)]),
            ),
            ("b".to_string(), Value::Base64(b"\x00\x01hi".to_vec())),
        ]));
        let mut body = String::new();
        encode_value(&mut body, &v);
        let xml =
            format!("<methodResponse><params><param>{body}</param></params></methodResponse>");
        assert_eq!(decode_response(&xml).unwrap().unwrap(), v);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_response("<html>502 Bad Gateway</html>").is_err());
        assert!(decode_response("not xml at all <").is_err());
        assert!(decode_response("<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>").is_err());
    }
}
