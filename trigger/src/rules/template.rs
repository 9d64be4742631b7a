//! The template step of `trigger_rules.yml`: Python `string.Template.safe_substitute` with the
//! message data, values rendered with Python's `str()` (so a list becomes `['a', 'b']`, which
//! YAML then reads as a flow sequence).
//!
//! `$$` is a literal `$`; `$name` and `${name}` are replaced when the data has `name`; anything
//! else (`$in:`, `$regex`, a lone `$`) is left alone, which is how Mongo operators survive.

pub use taskotron_common::pyrepr::{py_repr, py_str};

fn is_id_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_id(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// One `$...` occurrence in a template.
enum Piece<'a> {
    Text(&'a str),
    Escaped,
    Name { name: &'a str, raw: &'a str },
}

fn pieces(tpl: &str) -> Vec<Piece<'_>> {
    let b = tpl.as_bytes();
    let mut out = vec![];
    let (mut i, mut text_start) = (0, 0);
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let found = if b.get(i + 1) == Some(&b'$') {
            Some((Piece::Escaped, i + 2))
        } else if b.get(i + 1).copied().is_some_and(is_id_start) {
            let mut j = i + 2;
            while j < b.len() && is_id(b[j]) {
                j += 1;
            }
            Some((
                Piece::Name {
                    name: &tpl[i + 1..j],
                    raw: &tpl[i..j],
                },
                j,
            ))
        } else if b.get(i + 1) == Some(&b'{') && b.get(i + 2).copied().is_some_and(is_id_start) {
            let mut j = i + 3;
            while j < b.len() && is_id(b[j]) {
                j += 1;
            }
            (b.get(j) == Some(&b'}')).then(|| {
                (
                    Piece::Name {
                        name: &tpl[i + 2..j],
                        raw: &tpl[i..=j],
                    },
                    j + 1,
                )
            })
        } else {
            None
        };
        match found {
            Some((p, next)) => {
                out.push(Piece::Text(&tpl[text_start..i]));
                out.push(p);
                i = next;
                text_start = next;
            }
            None => i += 1, // invalid placeholder: kept as text
        }
    }
    out.push(Piece::Text(&tpl[text_start..]));
    out
}

/// `string.Template(tpl).safe_substitute(data)`.
pub fn safe_substitute(tpl: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(tpl.len());
    for p in pieces(tpl) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Escaped => out.push('$'),
            Piece::Name { name, raw } => match lookup(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(raw),
            },
        }
    }
    out
}

/// The names a template refers to, in order of first use.
pub fn placeholders(tpl: &str) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for p in pieces(tpl) {
        if let Piece::Name { name, .. } = p {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sub(tpl: &str, data: Value) -> String {
        safe_substitute(tpl, |k| data.get(k).map(py_str))
    }

    #[test]
    fn python_safe_substitute_semantics() {
        let d = json!({"name": "docker", "critpath_pkgs": ["bash", "glibc"], "n": 3});
        assert_eq!(sub("repo/${name}.git", d.clone()), "repo/docker.git");
        assert_eq!(sub("$name-x $n", d.clone()), "docker-x 3");
        assert_eq!(
            sub("$in: ${critpath_pkgs}", d.clone()),
            "$in: ['bash', 'glibc']"
        );
        assert_eq!(
            sub("'/^f[0-9]{2}-pending$$/'", d.clone()),
            "'/^f[0-9]{2}-pending$/'"
        );
        assert_eq!(
            sub("${unknown} $unknown $ ${ 1 $1", d.clone()),
            "${unknown} $unknown $ ${ 1 $1"
        );
        assert_eq!(sub("$$name", d), "$name");
    }

    #[test]
    fn python_repr_of_values() {
        assert_eq!(
            py_repr(&json!([1, 1.5, null, true, "it's"])),
            "[1, 1.5, None, True, \"it's\"]"
        );
        assert_eq!(py_repr(&json!({"a": "b\n"})), "{'a': 'b\\n'}");
        assert_eq!(placeholders("${a} $b $$c ${a}"), vec!["a", "b"]);
    }
}
