//! Python-style renderings used in the shell header, so logs look like buildbot-worker's
//! (`sh -c 'echo hi'`, `argv: [b'sh', b'-c', b'echo hi']`, `{'extra': 'extra.log'}`).

/// `shlex.quote`: leaves safe words alone, single-quotes the rest.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r#"'"'"'"#))
    }
}

fn repr_body(s: &str, bytes: bool) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    let push_char = |out: &mut String, c: char| match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    };
    if bytes {
        for b in s.bytes() {
            if b.is_ascii() {
                push_char(&mut out, b as char);
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    } else {
        s.chars().for_each(|c| push_char(&mut out, c));
    }
    out.push(quote);
    out
}

/// Python `repr(str)`.
pub fn str_repr(s: &str) -> String {
    repr_body(s, false)
}

/// Python `repr(bytes)`: `b'...'`.
pub fn bytes_repr(s: &str) -> String {
    format!("b{}", repr_body(s, true))
}

/// A float the way Python prints an int-valued timeout (`1200`) or a fractional one (`1.5`).
pub fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_python() {
        assert_eq!(shell_quote("sh"), "sh");
        assert_eq!(shell_quote("echo a; b"), "'echo a; b'");
        assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(bytes_repr("sleep"), "b'sleep'");
        assert_eq!(bytes_repr("printf 'a\\n' > f"), r#"b"printf 'a\\n' > f""#);
        assert_eq!(str_repr("extra.log"), "'extra.log'");
        assert_eq!(num(1200.0), "1200");
        assert_eq!(num(1.5), "1.5");
    }
}
