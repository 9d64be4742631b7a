//! Large step logs on disk: `<data_dir>/logs/<job uuid>/<logid>-<slug>.log`, one line per output
//! line, each with Buildbot's `h`/`o`/`e` stream prefix, plus a sidecar `.idx` with the byte
//! offset of every 1024th line so a page in the middle of a 50 MB log is one seek away. (Small
//! logs stay in SQLite; `logs.rs` decides when a log moves here.)
//!
//! Only the writer appends, always whole lines; a reader ignores a trailing partial line (a
//! write in progress, or a write torn by a crash) and a writer reopening a log truncates it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Lines between two index entries.
const INDEX_EVERY: u64 = 1024;

/// The open, append-only end of one log file.
pub struct LogFile {
    path: PathBuf,
    file: File,
    index: File,
    /// Lines and bytes in the file so far.
    lines: u64,
    bytes: u64,
}

impl LogFile {
    /// A new, empty log file at `path` (an existing one is truncated), its directory created.
    pub fn create(path: &Path) -> io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let index = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(index_path(path))?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            index,
            lines: 0,
            bytes: 0,
        })
    }

    /// Opens an existing log file for appending (a step that logs to the same name twice, or a
    /// log cut by a crash): a torn last line is cut off, and the line count and index are
    /// rebuilt from what is really there. A missing file is created.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut existing = Vec::new();
        file.read_to_end(&mut existing)?;
        let whole = existing
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        file.set_len(whole as u64)?;
        let index = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(index_path(path))?;
        let mut f = LogFile {
            path: path.to_path_buf(),
            file,
            index,
            lines: 0,
            bytes: 0,
        };
        f.record(&existing[..whole])?;
        Ok(f)
    }

    /// Appends whole lines (`content` ends with a newline, or a newline is added) and returns
    /// the log's line count.
    pub fn append(&mut self, content: &str) -> io::Result<u64> {
        if content.is_empty() {
            return Ok(self.lines);
        }
        if content.ends_with('\n') {
            self.file.write_all(content.as_bytes())?;
            self.record(content.as_bytes())?;
        } else {
            let mut owned = String::with_capacity(content.len() + 1);
            owned.push_str(content);
            owned.push('\n');
            self.file.write_all(owned.as_bytes())?;
            self.record(owned.as_bytes())?;
        }
        Ok(self.lines)
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts the lines of bytes just written and extends the index. (On the hot path of a log
    /// flood: memchr finds the newlines, and only lines that land on an index boundary are
    /// looked at one by one.)
    fn record(&mut self, written: &[u8]) -> io::Result<()> {
        let added = memchr::memchr_iter(b'\n', written).count() as u64;
        let before = self.lines;
        self.lines += added;
        if self.lines / INDEX_EVERY > before / INDEX_EVERY {
            let mut entries = Vec::new();
            let mut line = before;
            for i in memchr::memchr_iter(b'\n', written) {
                line += 1;
                if line.is_multiple_of(INDEX_EVERY) {
                    entries.extend_from_slice(&(self.bytes + i as u64 + 1).to_le_bytes());
                }
            }
            self.index.write_all(&entries)?;
        }
        self.bytes += written.len() as u64;
        Ok(())
    }
}

/// The line index beside a log file: `<file>.idx`.
pub fn index_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

/// The byte offset where line `k * INDEX_EVERY` starts, for the largest usable `k` with
/// `k * INDEX_EVERY <= line`; `(0, 0)` when the index has nothing closer.
fn nearest_indexed(log: &Path, line: u64) -> (u64, u64) {
    let want = line / INDEX_EVERY;
    if want == 0 {
        return (0, 0);
    }
    let Ok(mut idx) = File::open(index_path(log)) else {
        return (0, 0);
    };
    let have = idx.metadata().map(|m| m.len() / 8).unwrap_or(0);
    let k = want.min(have);
    if k == 0 {
        return (0, 0);
    }
    let mut entry = [0u8; 8];
    if idx.seek(SeekFrom::Start((k - 1) * 8)).is_err() || idx.read_exact(&mut entry).is_err() {
        return (0, 0);
    }
    (k * INDEX_EVERY, u64::from_le_bytes(entry))
}

/// Lines `from..` (0-based) of a log file, at most `max`, without their newlines. A missing
/// file is an empty log (its step has not written anything yet).
pub fn read_lines(log: &Path, from: u64, max: usize) -> io::Result<Vec<String>> {
    let file = match File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let (mut line, offset) = nearest_indexed(log, from);
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    reader.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while out.len() < max {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 || buf.last() != Some(&b'\n') {
            break; // end of file, or a line still being written
        }
        if line >= from {
            buf.pop();
            out.push(String::from_utf8_lossy(&buf).into_owned());
        }
        line += 1;
    }
    Ok(out)
}

/// The whole log, whole lines only, newlines kept.
pub fn read_all(log: &Path) -> io::Result<String> {
    let mut bytes = match std::fs::read(log) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The log's path relative to the logs directory: grouped by job uuid (like the artifacts).
/// The uuid was validated at submission; anything unusable as one path component falls back to
/// the request id so a log is never written outside the logs directory.
pub fn relative_path(uuid: &str, brid: i64, logid: i64, slug: &str) -> PathBuf {
    let safe = !uuid.is_empty()
        && !uuid.starts_with('.')
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let dir = if safe {
        uuid.to_string()
    } else {
        format!("request-{brid}")
    };
    Path::new(&dir).join(format!("{logid}-{slug}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: u64) -> String {
        (0..n).map(|i| format!("oline {i}\n")).collect()
    }

    #[test]
    fn pages_through_the_index_match_a_plain_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u/1-stdio.log");
        let mut w = LogFile::open(&path).unwrap();
        // Odd chunk sizes so index entries fall inside chunks.
        let all = numbered(5000);
        let mut rest = all.as_str();
        while !rest.is_empty() {
            let cut = rest[..rest.len().min(7777)].rfind('\n').unwrap() + 1;
            w.append(&rest[..cut]).unwrap();
            rest = &rest[cut..];
        }
        assert_eq!(w.lines(), 5000);
        for from in [0, 1, 1023, 1024, 1025, 2048, 4095, 4999, 5000, 6000] {
            let got = read_lines(&path, from, 10).unwrap();
            let want: Vec<String> = (from..5000.min(from + 10))
                .map(|i| format!("oline {i}"))
                .collect();
            assert_eq!(got, want, "from {from}");
        }
        assert_eq!(read_all(&path).unwrap(), all);
    }

    #[test]
    fn a_torn_last_line_is_hidden_then_truncated_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2-stdio.log");
        let mut w = LogFile::open(&path).unwrap();
        w.append(&numbered(2000)).unwrap();
        drop(w);
        // A crash in the middle of a write leaves half a line behind.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"ohalf a li")
            .unwrap();
        assert_eq!(read_lines(&path, 1999, 5).unwrap(), vec!["oline 1999"]);
        assert!(read_all(&path).unwrap().ends_with("oline 1999\n"));
        let mut w = LogFile::open(&path).unwrap();
        assert_eq!(w.lines(), 2000);
        w.append("onext").unwrap();
        assert_eq!(read_lines(&path, 1999, 5).unwrap(), ["oline 1999", "onext"]);
        // The rebuilt index still finds line 2048's neighbourhood correctly.
        w.append(&numbered(100)).unwrap();
        assert_eq!(read_lines(&path, 2048, 1).unwrap(), ["oline 47"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any lines, written in any chunking, possibly with a torn tail and a reopen, read back
        /// through the index exactly as a plain scan of the whole text would give them.
        #[test]
        fn any_chunking_reads_back_like_a_plain_scan(
            lengths in proptest::collection::vec(0usize..300, 0..3000),
            cuts in proptest::collection::vec(1usize..5000, 1..40),
            torn in proptest::option::of("[a-z]{1,20}"),
            reopen_at in proptest::option::of(0usize..3000),
            windows in proptest::collection::vec((0u64..3200, 0usize..2500), 1..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.log");
            let lines: Vec<String> = lengths
                .iter()
                .enumerate()
                .map(|(i, n)| format!("o{i}:{}", "x".repeat(*n)))
                .collect();
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            // Cut the text into chunks of whole lines at the given byte sizes.
            let mut w = LogFile::open(&path).unwrap();
            let mut rest = text.as_str();
            let mut i = 0;
            let mut written_lines = 0;
            while !rest.is_empty() {
                let want = cuts[i % cuts.len()].min(rest.len());
                let cut = rest[..want].rfind('\n').map_or_else(
                    || rest.find('\n').unwrap() + 1,
                    |p| p + 1,
                );
                w.append(&rest[..cut]).unwrap();
                written_lines += rest[..cut].matches('\n').count();
                rest = &rest[cut..];
                i += 1;
                if reopen_at.is_some_and(|r| r <= written_lines) && i % 3 == 0 {
                    drop(w);
                    w = LogFile::open(&path).unwrap();
                }
            }
            proptest::prop_assert_eq!(w.lines() as usize, lines.len());
            drop(w);
            if let Some(t) = &torn {
                OpenOptions::new().append(true).open(&path).unwrap().write_all(t.as_bytes()).unwrap();
            }
            for (from, max) in windows {
                let got = read_lines(&path, from, max).unwrap();
                let start = (from as usize).min(lines.len());
                let end = (start + max).min(lines.len());
                proptest::prop_assert_eq!(&got[..], &lines[start..end], "from {} max {}", from, max);
            }
            proptest::prop_assert_eq!(read_all(&path).unwrap(), text);
        }
    }

    #[test]
    fn missing_file_is_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.log");
        assert!(read_lines(&path, 0, 10).unwrap().is_empty());
        assert_eq!(read_all(&path).unwrap(), "");
    }

    #[test]
    fn unusable_uuids_fall_back_to_the_request_id() {
        assert_eq!(
            relative_path("abc-1.2", 7, 9, "stdio"),
            Path::new("abc-1.2/9-stdio.log")
        );
        assert_eq!(
            relative_path("../x", 7, 9, "stdio"),
            Path::new("request-7/9-stdio.log")
        );
        assert_eq!(
            relative_path("", 7, 9, "stdio"),
            Path::new("request-7/9-stdio.log")
        );
    }
}
