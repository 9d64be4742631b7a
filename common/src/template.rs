//! Variable substitution in task formulas: Python `string.Template` syntax plus dotted lookups.
//!
//! Rules (reference/taskotron.md §1.5):
//! - `$name` and `${name}` are replaced by the variable's value; `$$` is a literal `$`.
//! - `${a.b}` looks up key `b` in the mapping stored in variable `a` (any depth; a numeric part
//!   indexes a list). Only the braced form takes dots, as in Python `$a.b` is `$a` then ".b".
//! - **Type preservation**: a string that is *exactly* one placeholder is replaced by the raw value
//!   (a dict stays a dict). Inside a larger string the value's Python `str()` form is interpolated.
//! - Substitution recurses into lists and mapping values (keys are left alone).
//! - An undefined variable or a `$` that starts no valid placeholder is an error
//!   (`Template.substitute` semantics, not `safe_substitute`).

use serde_json::Value;

/// The variables a formula sees: built-ins, `--override`s and exported action results.
pub type Variables = serde_json::Map<String, Value>;

/// Why a substitution failed. `field` is the place in the document (e.g. `actions[2].shell[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{field}: undefined variable `{name}`")]
    Undefined { field: String, name: String },
    #[error("{field}: `{name}` has no key `{key}` (it is {found})")]
    MissingKey {
        field: String,
        name: String,
        key: String,
        found: String,
    },
    #[error("{field}: invalid placeholder at character {column}: `$` must be followed by a name, `{{name}}` or `$`")]
    Invalid { field: String, column: usize },
}

/// One piece of a parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text (with `$$` already turned into `$`).
    Text(String),
    /// A placeholder: the variable name followed by any dotted key path.
    Var(Vec<String>),
}

fn is_id_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_id_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Splits a template string into literal text and placeholders.
/// `column` in errors is 1-based and counts characters.
pub fn parse(s: &str) -> Result<Vec<Segment>, usize> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            text.push(c);
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        match next {
            Some('$') => {
                text.push('$');
                i += 2;
            }
            Some(n) if is_id_start(n) => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_id_char(chars[j]) {
                    j += 1;
                }
                push_text(&mut out, &mut text);
                out.push(Segment::Var(vec![chars[start..j].iter().collect()]));
                i = j;
            }
            Some('{') => {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| p + i + 2)
                    .ok_or(i + 1)?;
                let inner: String = chars[i + 2..close].iter().collect();
                let path = parse_braced(&inner).ok_or(i + 1)?;
                push_text(&mut out, &mut text);
                out.push(Segment::Var(path));
                i = close + 1;
            }
            _ => return Err(i + 1),
        }
    }
    push_text(&mut out, &mut text);
    Ok(out)
}

fn push_text(out: &mut Vec<Segment>, text: &mut String) {
    if !text.is_empty() {
        out.push(Segment::Text(std::mem::take(text)));
    }
}

/// `name(.key)*`: the name is an identifier; keys may also contain `-` or start with a digit.
fn parse_braced(inner: &str) -> Option<Vec<String>> {
    let mut parts = inner.split('.');
    let first = parts.next()?;
    let mut chars = first.chars();
    if !chars.next().is_some_and(is_id_start) || !chars.all(is_id_char) {
        return None;
    }
    let mut path = vec![first.to_string()];
    for key in parts {
        if key.is_empty() || !key.chars().all(|c| is_id_char(c) || c == '-') {
            return None;
        }
        path.push(key.to_string());
    }
    Some(path)
}

/// Looks up a placeholder path in the variables.
fn lookup<'v>(
    path: &[String],
    vars: &'v Variables,
    field: &str,
) -> Result<&'v Value, TemplateError> {
    let name = &path[0];
    let mut value = vars.get(name).ok_or_else(|| TemplateError::Undefined {
        field: field.to_string(),
        name: name.clone(),
    })?;
    for (depth, key) in path.iter().enumerate().skip(1) {
        let next = match value {
            Value::Object(map) => map.get(key),
            Value::Array(list) => key.parse::<usize>().ok().and_then(|i| list.get(i)),
            _ => None,
        };
        value = next.ok_or_else(|| TemplateError::MissingKey {
            field: field.to_string(),
            name: path[..depth].join("."),
            key: key.clone(),
            found: describe(value),
        })?;
    }
    Ok(value)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            format!("a mapping with keys [{}]", keys.join(", "))
        }
    }
}

/// Substitutes placeholders in one string. A string that is exactly one placeholder yields the
/// raw value (type preservation); anything else yields a string.
pub fn substitute_str(s: &str, vars: &Variables, field: &str) -> Result<Value, TemplateError> {
    let segments = parse(s).map_err(|column| TemplateError::Invalid {
        field: field.to_string(),
        column,
    })?;
    if let [Segment::Var(path)] = segments.as_slice() {
        return Ok(lookup(path, vars, field)?.clone());
    }
    let mut out = String::with_capacity(s.len());
    for seg in &segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Var(path) => out.push_str(&python_str(lookup(path, vars, field)?)),
        }
    }
    Ok(Value::String(out))
}

/// Substitutes recursively into a value: strings, list items and mapping values.
/// `field` names the value for error messages; children get `field[i]` / `field.key`.
pub fn substitute(value: &Value, vars: &Variables, field: &str) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(s) => substitute_str(s, vars, field)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| substitute(v, vars, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.clone(), substitute(v, vars, &format!("{field}.{k}"))?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Python's `str()` of a value, which is what `string.Template` interpolates.
pub use crate::pyrepr::py_str as python_str;

/// Python's `repr()` of a JSON-like value (`None`, `True`, `'text'`, `[1, 'a']`, `{'k': 'v'}`).
pub use crate::pyrepr::py_repr as python_repr;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Variables {
        json!({"workdir": "/tmp/w", "c": {"name": "dhcp", "n": {"deep": 3}}, "n": 5,
               "list": ["a", "b"], "flag": true})
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn plain_and_braced() {
        let v = vars();
        assert_eq!(
            substitute_str("$workdir/x", &v, "f").unwrap(),
            json!("/tmp/w/x")
        );
        assert_eq!(
            substitute_str("${workdir}x", &v, "f").unwrap(),
            json!("/tmp/wx")
        );
        assert_eq!(
            substitute_str("${c.name}.yaml", &v, "f").unwrap(),
            json!("dhcp.yaml")
        );
        assert_eq!(substitute_str("${c.n.deep}", &v, "f").unwrap(), json!(3));
        assert_eq!(substitute_str("${list.1}", &v, "f").unwrap(), json!("b"));
    }

    #[test]
    fn type_preservation() {
        let v = vars();
        assert_eq!(substitute_str("${c}", &v, "f").unwrap(), v["c"]);
        assert_eq!(substitute_str("$n", &v, "f").unwrap(), json!(5));
        assert_eq!(substitute_str(" $n", &v, "f").unwrap(), json!(" 5"));
        assert_eq!(substitute_str("$flag!", &v, "f").unwrap(), json!("True!"));
        assert_eq!(
            substitute_str("x $list", &v, "f").unwrap(),
            json!("x ['a', 'b']")
        );
    }

    #[test]
    fn escapes_and_python_dot_rule() {
        let v = vars();
        assert_eq!(substitute_str("$$x $$", &v, "f").unwrap(), json!("$x $"));
        assert_eq!(substitute_str("$$$n", &v, "f").unwrap(), json!("$5"));
        assert_eq!(
            substitute_str("$c.name", &v, "f").unwrap(),
            json!("{'name': 'dhcp', 'n': {'deep': 3}}.name")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let v = vars();
        let e = substitute_str("a ${nope}", &v, "actions[1].shell[0]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "actions[1].shell[0]: undefined variable `nope`"
        );
        let e = substitute_str("${c.zip}", &v, "p").unwrap_err();
        assert!(e.to_string().contains("`c` has no key `zip`"), "{e}");
        for bad in ["$", "a $ b", "${", "${1a}", "${a..b}", "$-x", "${}"] {
            assert!(
                matches!(
                    substitute_str(bad, &v, "p"),
                    Err(TemplateError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn recursive_into_params() {
        let v = vars();
        let params = json!({"path": ["${c.name}.yaml"], "k": {"x": "$n"}, "b": false, "${n}": 1});
        let out = substitute(&params, &v, "p").unwrap();
        assert_eq!(
            out,
            json!({"path": ["dhcp.yaml"], "k": {"x": 5}, "b": false, "${n}": 1})
        );
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(python_repr(&json!("it's")), "\"it's\"");
        assert_eq!(python_repr(&json!("a'\"b")), "'a\\'\"b'");
        assert_eq!(python_repr(&json!(null)), "None");
    }
}
