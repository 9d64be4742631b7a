//! Runs one child process for `shell`, `rmdir` and `cpdir` the way buildbot-worker's RunProcess
//! does: a header describing the command, stdout/stderr streamed as lines, `logfiles` followed,
//! `timeout` (no output), `maxTime` and `max_lines` limits, interrupts with the configured
//! signal (SIGTERM first when `sigtermTime` is set), then `rc` and the `elapsedTime` trailer.
//!
//! The child runs in its own process group so a kill reaches everything it started.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use taskotron_common::protocol::UpdateItem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::output::Stream;
use super::pyrepr::{bytes_repr, num, shell_quote, str_repr};
use super::Ctx;

/// Everything needed to run and describe one process.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub argv: Vec<String>,
    /// True when the master sent a string command (run via `/bin/sh -c`).
    pub shell_string: bool,
    pub workdir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<f64>,
    pub max_time: Option<f64>,
    pub max_lines: Option<u64>,
    pub sigterm_time: Option<f64>,
    pub interrupt_signal: i32,
    pub want_stdout: bool,
    pub want_stderr: bool,
    pub log_environ: bool,
    /// (name, path relative to workdir, follow)
    pub logfiles: Vec<(String, String, bool)>,
    pub logfiles_repr: String,
    pub initial_stdin: Option<String>,
    /// Send `rc` (shell) or leave it to the caller (rmdir/cpdir).
    pub send_rc: bool,
}

/// Why a process was killed.
enum Kill {
    Interrupt,
    NoOutput(f64),
    MaxTime(f64),
    MaxLines(u64),
}

/// Decodes UTF-8 across read boundaries, replacing invalid bytes like Python's `errors='replace'`.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn decode(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let (valid, rest) = match std::str::from_utf8(&self.pending) {
            Ok(_) => (self.pending.len(), 0),
            Err(e) if e.error_len().is_none() => {
                (e.valid_up_to(), self.pending.len() - e.valid_up_to())
            }
            Err(_) => (self.pending.len(), 0),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..self.pending.len() - rest);
        text
    }
    fn finish(&mut self) -> String {
        let t = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        t
    }
}

/// Builds the child's environment from the worker's, as buildbot-worker does: null removes a
/// variable, lists join with `:`, `${VAR}` expands from the worker's environment, and
/// `PYTHONPATH` gets the worker's appended.
pub fn build_env(
    overrides: Option<&BTreeMap<String, Option<taskotron_common::protocol::EnvValue>>>,
    workdir: &std::path::Path,
) -> BTreeMap<String, String> {
    use taskotron_common::protocol::EnvValue;
    let base: BTreeMap<String, String> = std::env::vars().collect();
    let mut env = base.clone();
    if let Some(over) = overrides {
        let subst = |v: &str| -> String {
            let mut out = String::new();
            let mut rest = v;
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                match after.find('}') {
                    Some(end)
                        if after[..end]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        out.push_str(&rest[..start]);
                        out.push_str(base.get(&after[..end]).map_or("", String::as_str));
                        rest = &after[end + 1..];
                    }
                    _ => {
                        out.push_str(&rest[..start + 2]);
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            out
        };
        for (k, v) in over {
            match v {
                None => {
                    env.remove(k);
                }
                Some(v) => {
                    let mut val = match v {
                        EnvValue::Text(t) => t.clone(),
                        EnvValue::List(l) => l.join(":"),
                    };
                    if k == "PYTHONPATH" {
                        val.push_str(":${PYTHONPATH}");
                    }
                    env.insert(k.clone(), subst(&val));
                }
            }
        }
    }
    env.insert("PWD".into(), workdir.display().to_string());
    env
}

/// Signal number for a name such as "KILL" or "SIGTERM" (None if unknown).
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().trim_start_matches("SIG");
    Some(match n {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "ABRT" => libc::SIGABRT,
        _ => return n.parse().ok(),
    })
}

fn header_text(spec: &ProcSpec) -> String {
    let (display, argv_repr) = if spec.shell_string {
        let cmd = spec.argv.last().cloned().unwrap_or_default();
        (cmd.clone(), bytes_repr(&cmd))
    } else {
        (
            spec.argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            format!(
                "[{}]",
                spec.argv
                    .iter()
                    .map(|a| bytes_repr(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    let mut h = format!("{display}\n in dir {}", spec.workdir.display());
    if let Some(t) = spec.timeout {
        h.push_str(&format!(" (timeout {} secs)", num(t)));
    }
    if let Some(t) = spec.max_time {
        h.push_str(&format!(" (maxTime {} sec)", num(t)));
    }
    h.push_str(&format!(
        "\n watching logfiles {}\n argv: {argv_repr}\n",
        spec.logfiles_repr
    ));
    if spec.log_environ {
        h.push_str(" environment:\n");
        for (k, v) in &spec.env {
            h.push_str(&format!("  {k}={v}\n"));
        }
    }
    h.push_str(" using PTY: False\n");
    h
}

/// Python-style repr of the `logfiles` argument for the header.
pub fn logfiles_repr(logfiles: &[(String, String, bool)], specs_as_dicts: bool) -> String {
    let items: Vec<String> = logfiles
        .iter()
        .map(|(name, file, follow)| {
            if specs_as_dicts {
                format!(
                    "{}: {{'filename': {}, 'follow': {}}}",
                    str_repr(name),
                    str_repr(file),
                    if *follow { "True" } else { "False" }
                )
            } else {
                format!("{}: {}", str_repr(name), str_repr(file))
            }
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Tails one `logfiles` entry.
struct LogTail {
    name: String,
    path: PathBuf,
    offset: u64,
    decoder: Utf8Stream,
}

impl LogTail {
    fn poll(&mut self, ctx: &mut Ctx) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        if meta.len() < self.offset {
            self.offset = 0; // truncated or replaced
        }
        if meta.len() == self.offset {
            return;
        }
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        // Bounded per poll so a huge log cannot stall the command loop.
        if let Ok(n) = f.take(4 * 1024 * 1024).read_to_end(&mut buf) {
            self.offset += n as u64;
            let text = self.decoder.decode(&buf);
            ctx.out.text(Stream::Log(self.name.clone()), &text);
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match r {
        Some(r) => r.read(buf).await.ok(),
        None => std::future::pending().await,
    }
}

fn killpg(pid: Option<u32>, sig: i32) {
    if let Some(pid) = pid {
        // SAFETY: plain syscall; the group id is our own child's pid.
        unsafe {
            libc::killpg(pid as libc::pid_t, sig);
        }
    }
}

/// Runs the process; returns its rc (-1 when killed). Errors are failure texts for `complete`.
pub async fn run(spec: ProcSpec, ctx: &mut Ctx) -> Result<i64, String> {
    let started = Instant::now();
    ctx.out.header(&header_text(&spec));
    if let Err(e) = std::fs::create_dir_all(&spec.workdir) {
        return Err(format!(
            "cannot create workdir {}: {e}",
            spec.workdir.display()
        ));
    }
    let mut cmd = Command::new(spec.argv.first().map_or("", String::as_str));
    cmd.args(spec.argv.iter().skip(1))
        .current_dir(&spec.workdir)
        .env_clear()
        .envs(&spec.env)
        .stdin(if spec.initial_stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // buildbot-worker reports spawn failures in the log and with rc -1.
            ctx.out.header(&format!(
                "\nupon execvpe {} {:?} in environment id ...:\n{e}\n",
                spec.argv.first().map_or("", String::as_str),
                spec.argv
            ));
            if spec.send_rc {
                ctx.out.item(UpdateItem::Rc(-1));
            }
            return Ok(-1);
        }
    };
    let pid = child.id();
    if let (Some(input), Some(mut stdin)) = (spec.initial_stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_dec, mut err_dec) = (Utf8Stream::default(), Utf8Stream::default());
    let mut tails: Vec<LogTail> = spec
        .logfiles
        .iter()
        .map(|(name, file, follow)| {
            let path = spec.workdir.join(file);
            let offset = if *follow {
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            LogTail {
                name: name.clone(),
                path,
                offset,
                decoder: Utf8Stream::default(),
            }
        })
        .collect();

    let mut status = None;
    let mut last_output = Instant::now();
    let mut lines: u64 = 0;
    let mut killed: Option<Kill> = None;
    let mut kill_deadline: Option<Instant> = None; // SIGKILL after sigtermTime
    let mut kill_sent = false;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let (mut obuf, mut ebuf) = (vec![0u8; 16384], vec![0u8; 16384]);

    while status.is_none() || stdout.is_some() || stderr.is_some() {
        let now = Instant::now();
        let no_output_at = spec
            .timeout
            .filter(|_| killed.is_none())
            .map(|t| last_output + Duration::from_secs_f64(t.max(0.0)));
        let max_time_at = spec
            .max_time
            .filter(|_| killed.is_none())
            .map(|t| started + Duration::from_secs_f64(t.max(0.0)));
        let next_deadline = [no_output_at, max_time_at, kill_deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(3600));
        let flush_in = ctx.out.due_in().unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            n = read_some(&mut stdout, &mut obuf) => match n {
                Some(n) if n > 0 => {
                    last_output = Instant::now();
                    let text = out_dec.decode(&obuf[..n]);
                    lines += text.matches('\n').count() as u64;
                    if spec.want_stdout { ctx.out.text(Stream::Stdout, &text); }
                }
                _ => {
                    let rest = out_dec.finish();
                    if spec.want_stdout && !rest.is_empty() { ctx.out.text(Stream::Stdout, &rest); }
                    stdout = None;
                }
            },
            n = read_some(&mut stderr, &mut ebuf) => match n {
                Some(n) if n > 0 => {
                    last_output = Instant::now();
                    let text = err_dec.decode(&ebuf[..n]);
                    lines += text.matches('\n').count() as u64;
                    if spec.want_stderr { ctx.out.text(Stream::Stderr, &text); }
                }
                _ => {
                    let rest = err_dec.finish();
                    if spec.want_stderr && !rest.is_empty() { ctx.out.text(Stream::Stderr, &rest); }
                    stderr = None;
                }
            },
            st = child.wait(), if status.is_none() => {
                status = Some(st);
            }
            why = ctx.wait_interrupt(), if killed.is_none() && status.is_none() => {
                tracing::info!(command_id = ctx.out.command_id(), why = %why, "interrupting command");
                killed = Some(Kill::Interrupt);
            }
            _ = tokio::time::sleep_until(next_deadline.into()) => {
                let now = Instant::now();
                if kill_deadline.is_some_and(|d| d <= now) {
                    killpg(pid, libc::SIGKILL);
                    kill_deadline = None;
                } else if max_time_at.is_some_and(|d| d <= now) {
                    killed = Some(Kill::MaxTime(spec.max_time.unwrap_or(0.0)));
                } else if no_output_at.is_some_and(|d| d <= now) {
                    killed = Some(Kill::NoOutput(spec.timeout.unwrap_or(0.0)));
                }
            }
            _ = poll.tick() => {
                for t in &mut tails { t.poll(ctx); }
            }
            _ = tokio::time::sleep(flush_in) => ctx.out.flush_if_due(),
        }
        if killed.is_none() {
            if let Some(max) = spec.max_lines.filter(|&m| lines > m) {
                killed = Some(Kill::MaxLines(max));
            }
        }
        if let Some(reason) = killed.as_ref() {
            // The group may outlive its leader (a background child holding the pipes).
            let alive = status.is_none() || stdout.is_some() || stderr.is_some();
            if alive && !std::mem::replace(&mut kill_sent, true) {
                let (text, failure) = match reason {
                    Kill::Interrupt => ("\ncommand interrupted, attempting to kill\n".to_string(), None),
                    Kill::NoOutput(t) => (format!("\ncommand timed out: {} seconds without output running {}, attempting to kill\n", num(*t), argv_list(&spec)), Some("timeout_without_output")),
                    Kill::MaxTime(t) => (format!("\ncommand timed out: {} seconds elapsed running {}, attempting to kill\n", num(*t), argv_list(&spec)), Some("timeout")),
                    Kill::MaxLines(m) => (format!("\ncommand exceeded max lines: {m}, attempting to kill\n"), Some("max_lines_failure")),
                };
                if let Some(f) = failure {
                    ctx.out.item(UpdateItem::FailureReason(f.into()));
                }
                ctx.out.header(&text);
                match spec.sigterm_time {
                    Some(t) if t > 0.0 => {
                        killpg(pid, libc::SIGTERM);
                        kill_deadline = Some(Instant::now() + Duration::from_secs_f64(t));
                    }
                    _ => {
                        killpg(pid, spec.interrupt_signal);
                        if spec.interrupt_signal != libc::SIGKILL {
                            // A process may ignore a catchable signal: SIGKILL after 5 s.
                            kill_deadline = Some(Instant::now() + Duration::from_secs(5));
                        }
                    }
                }
            }
        }
    }
    for t in &mut tails {
        t.poll(ctx);
    }
    let rc = match status {
        Some(Ok(st)) => {
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => i64::from(c),
                (None, Some(sig)) => {
                    ctx.out.header(&format!("process killed by signal {sig}\n"));
                    -1
                }
                _ => -1,
            }
        }
        Some(Err(e)) => return Err(format!("waiting for the process failed: {e}")),
        None => -1,
    };
    ctx.out.end_lines();
    if spec.send_rc {
        ctx.out.item(UpdateItem::Rc(rc));
    }
    ctx.out.header(&format!(
        "elapsedTime={:.6}\n",
        started.elapsed().as_secs_f64()
    ));
    Ok(rc)
}

fn argv_list(spec: &ProcSpec) -> String {
    if spec.shell_string {
        bytes_repr(spec.argv.last().map_or("", String::as_str))
    } else {
        format!(
            "[{}]",
            spec.argv
                .iter()
                .map(|a| bytes_repr(a))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
