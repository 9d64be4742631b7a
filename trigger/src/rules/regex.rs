//! `$regex` values: mongoquery's `/PATTERN/FLAGS` (or a bare pattern) run as Python's
//! `re.search`, on fancy-regex (which has Python's look-behind and back-references).
//!
//! The few places where Python's syntax means something else in Rust are translated: `$`
//! (without `m`) also matches before a final newline, `\Z` is the very end, `{,n}` means
//! `{0,n}`, `(?P=name)` is a back-reference.

use fancy_regex::Regex;

#[derive(Debug, Clone)]
pub struct PyRegex {
    source: String,
    re: Regex,
}

impl PyRegex {
    /// Parses mongoquery's `\A/(.+)/([imsx]{,4})\Z` form, else takes the whole string.
    pub fn from_mongo(cond: &str) -> Result<PyRegex, String> {
        let (pattern, flags) = match split_slashes(cond) {
            Some((p, f)) => (p, f),
            None => (cond, ""),
        };
        PyRegex::new(pattern, flags).map_err(|e| format!("$regex {cond:?}: {e}"))
    }

    pub fn new(pattern: &str, flags: &str) -> Result<PyRegex, String> {
        let multiline = flags.contains('m');
        let mut translated = String::new();
        if !flags.is_empty() {
            translated.push_str(&format!("(?{flags})"));
        }
        translated.push_str(&translate(pattern, multiline));
        let re = fancy_regex::RegexBuilder::new(&translated)
            .backtrack_limit(1_000_000)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PyRegex {
            source: pattern.to_string(),
            re,
        })
    }

    /// `re.search` (unanchored). A pattern that exceeds the backtracking limit does not match.
    pub fn search(&self, text: &str) -> bool {
        match self.re.is_match(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(pattern = %self.source, error = %e, "regex gave up; treating as no match");
                false
            }
        }
    }
}

fn split_slashes(cond: &str) -> Option<(&str, &str)> {
    let rest = cond.strip_prefix('/')?;
    let last = rest.rfind('/')?;
    let (pattern, flags) = (&rest[..last], &rest[last + 1..]);
    let flags_ok = flags.len() <= 4 && flags.chars().all(|c| "imsx".contains(c));
    (!pattern.is_empty() && flags_ok).then_some((pattern, flags))
}

fn translate(p: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if n == 'Z' && !in_class {
                    out.push_str("\\z");
                } else {
                    out.push(c);
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A ']' right after '[' or '[^' is a literal.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class && !multiline => out.push_str("(?:(?=\\n\\z)|\\z)"),
            '{' if !in_class && chars.get(i + 1) == Some(&',') => out.push_str("{0"),
            '(' if !in_class && p[byte_index(&chars, i)..].starts_with("(?P=") => {
                let rest: String = chars[i + 4..].iter().collect();
                if let Some(end) = rest.find(')') {
                    out.push_str(&format!("\\k<{}>", &rest[..end]));
                    i += 4 + rest[..end].chars().count() + 1;
                    continue;
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn byte_index(chars: &[char], i: usize) -> usize {
    chars[..i].iter().map(|c| c.len_utf8()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(cond: &str, text: &str) -> bool {
        PyRegex::from_mongo(cond).unwrap().search(text)
    }

    #[test]
    fn python_semantics() {
        // Real rules (after templating turned $$ into $).
        assert!(m(
            "/^f[0-9]{2}-updates(-testing)?-pending$/",
            "f32-updates-testing-pending"
        ));
        assert!(!m(
            "/^f[0-9]{2}-updates(-testing)?-pending$/",
            "f32-updates-candidate"
        ));
        assert!(m("/.*(?<!testing-pending)$/", "f26-updates-pending"));
        assert!(!m(
            "/.*(?<!testing-pending)$/",
            "f26-updates-testing-pending"
        ));
        assert!(m(r"/^container-images\/.+/", "container-images/foo"));
        assert!(m(r"/taskotron\/.+/", "taskotron/task-foo"));
        // Unanchored search, flags, Python-only syntax.
        assert!(m("/ell/", "hello"));
        assert!(m("/HELLO/i", "hello"));
        assert!(!m("/HELLO/", "hello"));
        assert!(m("/a$/", "a\n"));
        assert!(!m(r"/a\Z/", "a\n"));
        assert!(m("/^x{,2}$/", "xx"));
        assert!(m("/(?P<q>['\"])x(?P=q)/", "'x'"));
        assert!(m("plain", "a plain text"));
        assert!(m("/a.b/s", "a\nb"));
        assert!(m("/^b/m", "a\nb"));
    }
}
