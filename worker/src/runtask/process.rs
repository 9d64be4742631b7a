//! Running child processes with their output streamed into the task log line by line and
//! captured at the same time (shell, python, createrepo and the provisioning commands).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// What a finished child produced.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Largest amount of stdout/stderr kept in memory per stream (the log gets every line).
const MAX_CAPTURE: usize = 16 * 1024 * 1024;

/// Runs `argv` in `cwd` with stdin closed; every output line is logged at INFO (`out`/`err`
/// tagged) as it arrives, and both streams are also returned.
pub fn run_logged(argv: &[String], cwd: &Path, envs: &[(&str, String)]) -> std::io::Result<Output> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().map(|s| reader_thread(s, "out"));
    let err = child.stderr.take().map(|s| reader_thread(s, "err"));
    let status = child.wait()?;
    let join = |h: Option<std::thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(out),
        stderr: join(err),
    })
}

fn reader_thread<R: Read + Send + 'static>(
    stream: R,
    tag: &'static str,
) -> std::thread::JoinHandle<String> {
    // Tracing's current span does not cross threads; carry it over so lines keep the action.
    let span = tracing::Span::current();
    std::thread::spawn(move || {
        let _enter = span.enter();
        let mut captured = String::new();
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    tracing::info!("[{tag}] {}", text.trim_end_matches(['\n', '\r']));
                    if captured.len() + text.len() <= MAX_CAPTURE {
                        captured.push_str(&text);
                    }
                }
            }
        }
        captured
    })
}

/// `a b 'c d'` — an argv as a shell-quoted line, for logs and messages.
pub fn display(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// The last `n` non-empty lines of a text joined with " | " (for one-line error messages).
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
