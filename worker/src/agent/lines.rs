//! Line splitting of command output, as buildbot-worker's `LineBoundaryFinder` does it:
//! matches of the master's `newline_re` become `\n`, lines longer than `max_line_length` are
//! cut, and a partial line waits for the rest (keeping the time its first byte arrived).

use std::sync::Arc;

use fancy_regex::{NoExpand, Regex};
use taskotron_common::protocol::{LogChunk, WorkerSettings};

/// Compiled `set_worker_settings`, shared by every command of a connection.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    pub newline_re: Option<Arc<Regex>>,
    pub max_line_length: usize,
    pub buffer_size: usize,
    pub buffer_timeout: std::time::Duration,
}

impl OutputSettings {
    /// Compiles the master's Python regex; on failure logs and falls back to plain `\n` splitting.
    pub fn new(s: &WorkerSettings) -> OutputSettings {
        let re = match Regex::new(&python_regex_to_rust(&s.newline_re)) {
            Ok(re) => Some(Arc::new(re)),
            Err(e) => {
                tracing::warn!(newline_re = %s.newline_re, error = %e, "cannot compile newline_re; splitting at \\n only");
                None
            }
        };
        OutputSettings {
            newline_re: re,
            max_line_length: (s.max_line_length as usize).max(1),
            buffer_size: s.buffer_size as usize,
            buffer_timeout: std::time::Duration::from_secs_f64(s.buffer_timeout.clamp(0.0, 3600.0)),
        }
    }
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings::new(&WorkerSettings::default())
    }
}

/// Rewrites Python-only escapes (octal `\033`) into fancy-regex syntax (`\x{1b}`).
pub fn python_regex_to_rust(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('0') => {
                // \0, \0o, \0oo: octal escape
                let mut digits = String::new();
                while digits.len() < 3 && chars.peek().is_some_and(|d| ('0'..='7').contains(d)) {
                    digits.push(chars.next().unwrap_or('0'));
                }
                let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                out.push_str(&format!("\\x{{{code:x}}}"));
            }
            Some(&n) => {
                out.push('\\');
                out.push(n);
                chars.next();
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits one output stream into whole lines.
#[derive(Debug)]
pub struct LineSplitter {
    settings: OutputSettings,
    partial: String,
    partial_time: f64,
}

impl LineSplitter {
    pub fn new(settings: OutputSettings) -> LineSplitter {
        LineSplitter {
            settings,
            partial: String::new(),
            partial_time: 0.0,
        }
    }

    /// Adds text received at `time`; returns the complete lines it finished, if any.
    pub fn push(&mut self, text: &str, time: f64) -> Option<LogChunk> {
        if text.is_empty() {
            return None;
        }
        let had_partial = !self.partial.is_empty();
        let first_time = if had_partial { self.partial_time } else { time };
        let mut joined = std::mem::take(&mut self.partial);
        joined.push_str(text);
        let joined = match &self.settings.newline_re {
            Some(re) => match re.try_replacen(&joined, 0, NoExpand("\n")) {
                Ok(s) => s.into_owned(),
                Err(_) => joined,
            },
            None => joined,
        };
        let mut chunk = LogChunk::default();
        let mut rest = joined.as_str();
        let mut line_time = first_time;
        while let Some(pos) = rest.find('\n') {
            self.push_cut(&mut chunk, &rest[..pos], &mut line_time, time);
            rest = &rest[pos + 1..];
        }
        // A partial line longer than the limit is cut now, too.
        let max = self.settings.max_line_length;
        while rest.chars().count() > max {
            let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
            chunk.push_line(&rest[..cut], line_time);
            line_time = time;
            rest = &rest[cut..];
        }
        self.partial = rest.to_string();
        self.partial_time = if chunk.newlines.is_empty() {
            first_time
        } else {
            time
        };
        (!chunk.newlines.is_empty()).then_some(chunk)
    }

    /// The pending partial line as a finished line (at the end of a command).
    pub fn flush(&mut self) -> Option<LogChunk> {
        if self.partial.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        Some(LogChunk::from_lines([(line.as_str(), self.partial_time)]))
    }

    /// Pushes one line (without `\n`), cut into `max_line_length` pieces.
    fn push_cut(&self, chunk: &mut LogChunk, mut line: &str, line_time: &mut f64, now: f64) {
        let max = self.settings.max_line_length;
        loop {
            let cut = line.char_indices().nth(max).map(|(i, _)| i);
            match cut {
                Some(i) => {
                    chunk.push_line(&line[..i], *line_time);
                    line = &line[i..];
                }
                None => {
                    chunk.push_line(line, *line_time);
                    break;
                }
            }
            *line_time = now;
        }
        *line_time = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(max: u64) -> LineSplitter {
        LineSplitter::new(OutputSettings::new(&WorkerSettings {
            max_line_length: max,
            ..WorkerSettings::default()
        }))
    }

    #[test]
    fn partial_lines_keep_their_first_time() {
        let mut s = splitter(4096);
        assert_eq!(s.push("ab", 1.0), None);
        let c = s.push("c\nd\ne", 2.0).unwrap();
        assert_eq!(c.text, "abc\nd\n");
        assert_eq!(c.timestamps, vec![1.0, 2.0]);
        assert_eq!(s.flush().unwrap().text, "e\n");
        assert_eq!(s.flush(), None);
    }

    #[test]
    fn buildbot_newline_re_applies() {
        let mut s = splitter(4096);
        let c = s.push("a\r\nb\rc\x1b[2Jd\n", 1.0).unwrap();
        assert_eq!(c.text, "a\nb\nc\nd\n");
        // A trailing \r waits: it may be the first half of \r\n.
        assert_eq!(s.push("x\r", 1.0), None);
        assert_eq!(s.push("\n", 2.0).unwrap().text, "x\n");
    }

    #[test]
    fn long_lines_are_cut() {
        let mut s = splitter(3);
        let c = s.push("abcdefg\n", 1.0).unwrap();
        assert_eq!(c.text, "abc\ndef\ng\n");
        assert_eq!(s.push("hijkl", 1.0).unwrap().text, "hij\n");
        assert_eq!(s.flush().unwrap().text, "kl\n");
    }

    #[test]
    fn octal_escapes_translate() {
        assert_eq!(python_regex_to_rust(r"\033\[u|\r"), r"\x{1b}\[u|\r");
        assert_eq!(python_regex_to_rust(r"\\0"), r"\\0");
    }
}
