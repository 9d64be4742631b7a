//! The stand-in Koji hub's side of XML-RPC: decode a `<methodCall>`, encode a response or a
//! `<fault>` the way Python's `xmlrpc.client` (with koji's `nil`/`i8` extensions) writes them.
//! Written separately from the product's codec so the two check each other.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Clone, PartialEq)]
pub enum X {
    Int(i64),
    Bool(bool),
    Str(String),
    Double(f64),
    Array(Vec<X>),
    Struct(BTreeMap<String, X>),
    Nil,
}

impl X {
    pub fn str(&self) -> Option<&str> {
        match self {
            X::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            X::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn s(v: &str) -> X {
        X::Str(v.to_string())
    }
    pub fn map(pairs: Vec<(&str, X)>) -> X {
        X::Struct(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

#[derive(Default, Debug)]
struct El {
    name: String,
    kids: Vec<El>,
    text: String,
}

fn tree(xml: &str) -> Result<El, String> {
    let mut r = Reader::from_str(xml);
    let mut stack = vec![El::default()];
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Start(s) => stack.push(El {
                name: String::from_utf8_lossy(s.local_name().as_ref()).into(),
                ..El::default()
            }),
            Event::Empty(s) => {
                let el = El {
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into(),
                    ..El::default()
                };
                stack.last_mut().ok_or("unbalanced")?.kids.push(el);
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced")?;
                stack.last_mut().ok_or("unbalanced")?.kids.push(el);
            }
            Event::Text(t) => {
                let t = t.decode().map_err(|e| e.to_string())?;
                stack.last_mut().ok_or("unbalanced")?.text.push_str(&t);
            }
            Event::GeneralRef(g) => {
                let name = g.decode().map_err(|e| e.to_string())?;
                let c = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => return Err(format!("entity {other}")),
                };
                stack.last_mut().ok_or("unbalanced")?.text.push_str(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().ok_or("empty")?;
    if root.kids.is_empty() {
        return Err("empty document".into());
    }
    Ok(root.kids.remove(0))
}

fn value(el: &El) -> Result<X, String> {
    let Some(t) = el.kids.first() else {
        return Ok(X::Str(el.text.clone()));
    };
    Ok(match t.name.as_str() {
        "int" | "i4" | "i8" => X::Int(t.text.trim().parse().map_err(|_| "bad int")?),
        "boolean" => X::Bool(t.text.trim() == "1"),
        "string" => X::Str(t.text.clone()),
        "double" => X::Double(t.text.trim().parse().map_err(|_| "bad double")?),
        "nil" => X::Nil,
        "array" => {
            let data = t
                .kids
                .iter()
                .find(|k| k.name == "data")
                .ok_or("array without data")?;
            X::Array(data.kids.iter().map(value).collect::<Result<_, _>>()?)
        }
        "struct" => {
            let mut m = BTreeMap::new();
            for mem in &t.kids {
                let name = mem
                    .kids
                    .iter()
                    .find(|k| k.name == "name")
                    .ok_or("member name")?;
                let v = mem
                    .kids
                    .iter()
                    .find(|k| k.name == "value")
                    .ok_or("member value")?;
                m.insert(name.text.clone(), value(v)?);
            }
            X::Struct(m)
        }
        other => return Err(format!("unsupported type {other}")),
    })
}

/// A decoded call: method, positional args, keyword args (koji's `__starstar` struct).
pub type Call = (String, Vec<X>, BTreeMap<String, X>);

pub fn decode_call(xml: &str) -> Result<Call, String> {
    let root = tree(xml)?;
    if root.name != "methodCall" {
        return Err(format!("root <{}>", root.name));
    }
    let name = root
        .kids
        .iter()
        .find(|k| k.name == "methodName")
        .ok_or("no methodName")?
        .text
        .trim()
        .to_string();
    let mut args = Vec::new();
    if let Some(params) = root.kids.iter().find(|k| k.name == "params") {
        for p in &params.kids {
            let v = p
                .kids
                .iter()
                .find(|k| k.name == "value")
                .ok_or("param without value")?;
            args.push(value(v)?);
        }
    }
    let kwargs = split_kwargs(&mut args);
    Ok((name, args, kwargs))
}

/// Removes a trailing `{__starstar: true, ...}` struct from `args` and returns it as kwargs.
pub fn split_kwargs(args: &mut Vec<X>) -> BTreeMap<String, X> {
    if let Some(X::Struct(m)) = args.last() {
        if m.get("__starstar") == Some(&X::Bool(true)) {
            let mut m = m.clone();
            m.remove("__starstar");
            args.pop();
            return m;
        }
    }
    BTreeMap::new()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn encode(v: &X, out: &mut String) {
    out.push_str("<value>");
    match v {
        X::Int(i) if i32::try_from(*i).is_ok() => out.push_str(&format!("<int>{i}</int>")),
        X::Int(i) => out.push_str(&format!("<i8>{i}</i8>")),
        X::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        X::Str(s) => out.push_str(&format!("<string>{}</string>", esc(s))),
        X::Double(d) => out.push_str(&format!("<double>{d}</double>")),
        X::Nil => out.push_str("<nil/>"),
        X::Array(items) => {
            out.push_str("<array><data>\n");
            for i in items {
                encode(i, out);
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        X::Struct(m) => {
            out.push_str("<struct>\n");
            for (k, v) in m {
                out.push_str(&format!("<member>\n<name>{}</name>\n", esc(k)));
                encode(v, out);
                out.push_str("\n</member>\n");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

pub fn response(v: &X) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
    encode(v, &mut out);
    out.push_str("\n</param>\n</params>\n</methodResponse>\n");
    out
}

pub fn fault(code: i64, string: &str) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
    encode(
        &X::map(vec![
            ("faultCode", X::Int(code)),
            ("faultString", X::s(string)),
        ]),
        &mut out,
    );
    out.push_str("\n</fault>\n</methodResponse>\n");
    out
}
