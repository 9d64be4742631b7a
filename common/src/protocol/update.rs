//! The `args` of an `update` message: a list of `[key, value]` pairs (reference/buildbot.md §1.9).
//!
//! Output streams (`stdout`, `stderr`, `header`, and `log` per log file) travel as a
//! [`LogChunk`]: `[text, [newline offsets], [line timestamps]]`, where `text` holds whole lines
//! each ending in `\n`, and both lists have one entry per line.

use rmpv::Value;

use super::value::{as_f64, as_text};

/// One or more complete lines of output with their newline offsets and timestamps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogChunk {
    /// Whole lines, each ending in `\n`.
    pub text: String,
    /// Offset of each line's `\n` in `text`, counted in characters as Python does (equal to
    /// byte offsets for ASCII output; the Buildbot master only reads `text`).
    pub newlines: Vec<u64>,
    /// Unix time (seconds) each line was produced.
    pub timestamps: Vec<f64>,
}

impl LogChunk {
    /// Builds a chunk from lines and their timestamps; a line without a trailing `\n` gets one.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = (&'a str, f64)>) -> LogChunk {
        let mut chunk = LogChunk::default();
        for (line, t) in lines {
            chunk.push_line(line, t);
        }
        chunk
    }

    /// Splits `text` at `\n` and stamps every line with `time` (for header text made at once).
    pub fn from_text(text: &str, time: f64) -> LogChunk {
        LogChunk::from_lines(text.split_inclusive('\n').map(|l| (l, time)))
    }

    /// Appends one line (adds the `\n` if missing).
    pub fn push_line(&mut self, line: &str, time: f64) {
        let start = self.char_len();
        let mut chars = line.chars().count() as u64;
        self.text.push_str(line);
        if !line.ends_with('\n') {
            self.text.push('\n');
            chars += 1;
        }
        self.newlines.push(start + chars - 1);
        self.timestamps.push(time);
    }

    /// Appends another chunk's lines (offsets shifted), as the worker's buffer merges
    /// consecutive updates of the same stream.
    pub fn append(&mut self, other: &LogChunk) {
        let base = self.char_len();
        self.text.push_str(&other.text);
        self.newlines
            .extend(other.newlines.iter().map(|i| i + base));
        self.timestamps.extend_from_slice(&other.timestamps);
    }

    /// Length of `text` in characters (the text always ends with its last line's `\n`).
    fn char_len(&self) -> u64 {
        self.newlines.last().map_or(0, |&i| i + 1)
    }

    /// The lines of the chunk, each with its `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split_inclusive('\n')
    }

    /// Size as buildbot-worker's buffer counts it: text length plus 8 bytes per offset/timestamp.
    pub fn buffered_size(&self) -> usize {
        self.text.len() + 8 * (self.newlines.len() + self.timestamps.len())
    }

    pub fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::from(self.text.as_str()),
            Value::Array(self.newlines.iter().map(|&i| Value::from(i)).collect()),
            Value::Array(self.timestamps.iter().map(|&t| Value::F64(t)).collect()),
        ])
    }

    /// Reads `[text, [idx...], [times...]]`; `None` if the shape is different.
    pub fn from_value(v: &Value) -> Option<LogChunk> {
        let parts = v.as_array()?;
        if parts.len() != 3 {
            return None;
        }
        let text = as_text(&parts[0])?;
        let newlines = parts[1]
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<_>>>()?;
        let timestamps = parts[2]
            .as_array()?
            .iter()
            .map(as_f64)
            .collect::<Option<Vec<_>>>()?;
        Some(LogChunk {
            text,
            newlines,
            timestamps,
        })
    }
}

/// One `[key, value]` entry of an `update`. Known keys are typed; anything else (or a known key
/// whose value has an unexpected shape) is kept verbatim in [`UpdateItem::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateItem {
    Stdout(LogChunk),
    Stderr(LogChunk),
    Header(LogChunk),
    /// Contents of a `logfiles` entry: `["log", [logname, chunk]]`.
    Log(String, LogChunk),
    /// Exit code; -1 when killed.
    Rc(i64),
    /// Seconds the command ran.
    Elapsed(f64),
    /// `timeout`, `timeout_without_output` or `max_lines_failure`.
    FailureReason(String),
    /// Paths (glob) or entry names (listdir).
    Files(Vec<String>),
    /// `os.stat` tuple: mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime.
    Stat(Vec<i64>),
    Other(String, Value),
}

impl UpdateItem {
    pub fn key(&self) -> &str {
        match self {
            UpdateItem::Stdout(_) => "stdout",
            UpdateItem::Stderr(_) => "stderr",
            UpdateItem::Header(_) => "header",
            UpdateItem::Log(..) => "log",
            UpdateItem::Rc(_) => "rc",
            UpdateItem::Elapsed(_) => "elapsed",
            UpdateItem::FailureReason(_) => "failure_reason",
            UpdateItem::Files(_) => "files",
            UpdateItem::Stat(_) => "stat",
            UpdateItem::Other(k, _) => k,
        }
    }

    /// The `[key, value]` pair as sent on the wire.
    pub fn to_value(&self) -> Value {
        let value = match self {
            UpdateItem::Stdout(c) | UpdateItem::Stderr(c) | UpdateItem::Header(c) => c.to_value(),
            UpdateItem::Log(name, c) => {
                Value::Array(vec![Value::from(name.as_str()), c.to_value()])
            }
            UpdateItem::Rc(rc) => Value::from(*rc),
            UpdateItem::Elapsed(e) => Value::F64(*e),
            UpdateItem::FailureReason(r) => Value::from(r.as_str()),
            UpdateItem::Files(f) => {
                Value::Array(f.iter().map(|s| Value::from(s.as_str())).collect())
            }
            UpdateItem::Stat(s) => Value::Array(s.iter().map(|&i| Value::from(i)).collect()),
            UpdateItem::Other(_, v) => v.clone(),
        };
        Value::Array(vec![Value::from(self.key()), value])
    }

    /// Reads one `[key, value]` pair; `None` if it is not a 2-element array with a str key.
    pub fn from_value(pair: &Value) -> Option<UpdateItem> {
        let parts = pair.as_array()?;
        if parts.len() != 2 {
            return None;
        }
        let key = as_text(&parts[0])?;
        let v = &parts[1];
        let typed = match key.as_str() {
            "stdout" => LogChunk::from_value(v).map(UpdateItem::Stdout),
            "stderr" => LogChunk::from_value(v).map(UpdateItem::Stderr),
            "header" => LogChunk::from_value(v).map(UpdateItem::Header),
            "log" => v.as_array().and_then(|a| match a.as_slice() {
                [name, chunk] => Some(UpdateItem::Log(
                    as_text(name)?,
                    LogChunk::from_value(chunk)?,
                )),
                _ => None,
            }),
            "rc" => v.as_i64().map(UpdateItem::Rc),
            "elapsed" => as_f64(v).map(UpdateItem::Elapsed),
            "failure_reason" => as_text(v).map(UpdateItem::FailureReason),
            "files" => v
                .as_array()
                .and_then(|a| a.iter().map(as_text).collect::<Option<Vec<_>>>())
                .map(UpdateItem::Files),
            "stat" => v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
                .map(UpdateItem::Stat),
            _ => None,
        };
        Some(typed.unwrap_or_else(|| UpdateItem::Other(key, v.clone())))
    }

    /// Size as buildbot-worker's BufferManager counts it (log text + 8 per index/time; 20 for
    /// anything else).
    pub fn buffered_size(&self) -> usize {
        match self {
            UpdateItem::Stdout(c) | UpdateItem::Stderr(c) | UpdateItem::Header(c) => {
                c.buffered_size()
            }
            UpdateItem::Log(_, c) => c.buffered_size(),
            _ => 20,
        }
    }

    /// Merges `next` into `self` when both are the same output stream (same log name for
    /// `log`); returns `next` back when they cannot be merged.
    pub fn try_merge(&mut self, next: UpdateItem) -> Result<(), UpdateItem> {
        match (self, next) {
            (UpdateItem::Stdout(a), UpdateItem::Stdout(b))
            | (UpdateItem::Stderr(a), UpdateItem::Stderr(b))
            | (UpdateItem::Header(a), UpdateItem::Header(b)) => {
                a.append(&b);
                Ok(())
            }
            (UpdateItem::Log(n1, a), UpdateItem::Log(n2, b)) if *n1 == n2 => {
                a.append(&b);
                Ok(())
            }
            (_, next) => Err(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_offsets_follow_lines() {
        let c = LogChunk::from_lines([("a\n", 1.0), ("bc", 2.0)]);
        assert_eq!(c.text, "a\nbc\n");
        assert_eq!(c.newlines, vec![1, 4]);
        let mut d = LogChunk::from_text("x\ny\n", 3.0);
        d.append(&c);
        assert_eq!(d.newlines, vec![1, 3, 5, 8]);
        assert_eq!(d.timestamps, vec![3.0, 3.0, 1.0, 2.0]);
        assert_eq!(LogChunk::from_value(&d.to_value()), Some(d));
        // Offsets count characters, like Python's str indexes.
        let u = LogChunk::from_lines([("é\n", 1.0), ("ü", 2.0)]);
        assert_eq!(u.newlines, vec![1, 3]);
    }

    #[test]
    fn unexpected_shapes_are_kept_verbatim() {
        let pair = Value::Array(vec![Value::from("rc"), Value::from("zero")]);
        assert_eq!(
            UpdateItem::from_value(&pair),
            Some(UpdateItem::Other("rc".into(), Value::from("zero")))
        );
        assert_eq!(UpdateItem::from_value(&Value::from(3)), None);
    }

    #[test]
    fn merge_only_same_stream() {
        let mut a = UpdateItem::Stdout(LogChunk::from_text("1\n", 0.0));
        assert!(a
            .try_merge(UpdateItem::Stdout(LogChunk::from_text("2\n", 0.0)))
            .is_ok());
        assert!(a
            .try_merge(UpdateItem::Stderr(LogChunk::from_text("3\n", 0.0)))
            .is_err());
        assert_eq!(a, UpdateItem::Stdout(LogChunk::from_text("1\n2\n", 0.0)));
    }
}
