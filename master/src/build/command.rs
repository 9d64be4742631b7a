//! Running one remote command as (part of) a build step: start it, store its output in the
//! step's logs (Buildbot's `h`/`o`/`e` line prefixes), serve its transfers, honour a stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use taskotron_common::protocol::{CommandArgs, LogChunk, UpdateItem, Value};
use tokio::sync::watch;

use super::transfer::Transfer;
use crate::db::{results, Db, LogWriter};
use crate::workers::{CmdEvent, Conn, ConnError};

/// How a command ended.
#[derive(Debug)]
pub enum Outcome {
    /// Exit code (0 = success for the file-system commands too).
    Rc(i64),
    /// The worker reported a failure string, or a transfer failed.
    Failed(String),
    /// Stopped by a `stop` call.
    Cancelled(String),
    /// The worker went away.
    Lost,
}

impl Outcome {
    pub fn result(&self) -> i64 {
        match self {
            Outcome::Rc(0) => results::SUCCESS,
            Outcome::Rc(_) => results::FAILURE,
            Outcome::Failed(_) => results::EXCEPTION,
            Outcome::Cancelled(_) => results::CANCELLED,
            Outcome::Lost => results::RETRY,
        }
    }
}

/// Where a command's output goes: the step's `stdio` log plus one log per logfile.
pub struct StepLogs<'a> {
    db: &'a Db,
    stepid: i64,
    /// None when the log could not be created (reported once; the build goes on).
    stdio: Option<LogWriter>,
    others: HashMap<String, LogWriter>,
}

impl<'a> StepLogs<'a> {
    pub fn new(db: &'a Db, stepid: i64) -> StepLogs<'a> {
        StepLogs {
            db,
            stepid,
            stdio: open_log(db, stepid, "stdio"),
            others: HashMap::new(),
        }
    }

    /// Adds lines to stdio with a one-letter stream prefix.
    pub fn stdio(&mut self, prefix: char, text: &str) {
        let Some(log) = self.stdio.as_mut() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.split_inclusive('\n') {
            out.push(prefix);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
        }
        append(self.db, log, &out);
    }

    fn chunk(&mut self, prefix: char, c: &LogChunk) {
        self.stdio(prefix, &c.text);
    }

    fn logfile(&mut self, name: &str, c: &LogChunk) {
        if !self.others.contains_key(name) {
            let Some(log) = open_log(self.db, self.stepid, name) else {
                return;
            };
            self.others.insert(name.to_string(), log);
        }
        if let Some(log) = self.others.get_mut(name) {
            append(self.db, log, &c.text);
        }
    }

    pub fn finish(self) {
        for log in self.stdio.into_iter().chain(self.others.into_values()) {
            let logid = log.logid;
            if let Err(e) = self.db.finish_log(log) {
                tracing::warn!(logid, "cannot finish log: {e}");
            }
        }
    }
}

fn open_log(db: &Db, stepid: i64, name: &str) -> Option<LogWriter> {
    db.add_log(stepid, name)
        .inspect_err(|e| tracing::error!(stepid, log = name, "cannot create log: {e}"))
        .ok()
}

/// Output that cannot be stored (disk full) is dropped, with one error line per log; the build
/// itself goes on.
fn append(db: &Db, log: &mut LogWriter, text: &str) {
    if let Err(e) = db.append_log(log, text) {
        tracing::error!(logid = log.logid, "cannot store log output: {e}");
    }
}

/// Runs `args` on the worker until it completes, is stopped, or the worker is lost.
pub async fn run(
    conn: &Arc<Conn>,
    builder: &str,
    args: CommandArgs,
    logs: &mut StepLogs<'_>,
    mut transfer: Option<&mut Transfer>,
    stop: &mut watch::Receiver<Option<String>>,
) -> Outcome {
    let current = stop.borrow().clone();
    if let Some(why) = current {
        return Outcome::Cancelled(why);
    }
    tracing::debug!(worker = %conn.name, command = args.name(), "start command");
    let (cid, mut rx) = match conn
        .start_command(&args, Some(builder), Duration::from_secs(60))
        .await
    {
        Ok(x) => x,
        Err(ConnError::Remote(e)) => return Outcome::Failed(e),
        Err(_) => return Outcome::Lost,
    };
    let mut rc: Option<i64> = None;
    let mut cancelled: Option<String> = None;
    let mut transfer_error: Option<String> = None;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            changed = stop.changed(), if cancelled.is_none() => {
                let current = if changed.is_ok() { stop.borrow().clone() } else { None };
                {
                    if let Some(why) = current {
                        logs.stdio('h', &format!("\ninterrupting: {why}\n"));
                        // Not awaited here: this loop must keep taking the command's events
                        // (the reader may be waiting for backlog room to read the reply).
                        let (conn, cid, reason, builder) =
                            (conn.clone(), cid.clone(), why.clone(), builder.to_string());
                        tokio::spawn(async move {
                            let _ = conn.interrupt(&cid, &reason, Some(&builder)).await;
                        });
                        cancelled = Some(why);
                    }
                }
                continue;
            }
        };
        let Some(ev) = ev else { return Outcome::Lost };
        match ev {
            CmdEvent::Update(items) => {
                for item in items {
                    match item {
                        UpdateItem::Stdout(c) => logs.chunk('o', &c),
                        UpdateItem::Stderr(c) => logs.chunk('e', &c),
                        UpdateItem::Header(c) => logs.chunk('h', &c),
                        UpdateItem::Log(name, c) => logs.logfile(&name, &c),
                        UpdateItem::Rc(r) => {
                            rc = Some(r);
                            logs.stdio('h', &format!("program finished with exit code {r}\n"));
                        }
                        UpdateItem::FailureReason(r) => {
                            logs.stdio('h', &format!("failure reason: {r}\n"))
                        }
                        _ => {}
                    }
                }
            }
            CmdEvent::Complete(failure) => {
                conn.end_command(&cid);
                tracing::debug!(worker = %conn.name, command_id = %cid, "command complete");
                if let Some(why) = cancelled {
                    return Outcome::Cancelled(why);
                }
                if let Some(f) = failure {
                    logs.stdio('h', &f);
                    return Outcome::Failed(f);
                }
                if let Some(e) = transfer_error {
                    return Outcome::Failed(e);
                }
                return Outcome::Rc(rc.unwrap_or(0));
            }
            CmdEvent::Lost => return Outcome::Lost,
            CmdEvent::ReadFile { length, reply } => match transfer.as_deref_mut() {
                Some(t) => match t.read(length) {
                    Ok(bytes) => reply.ok(Value::Binary(bytes)),
                    Err(e) => {
                        transfer_error = Some(e.clone());
                        reply.err(e)
                    }
                },
                None => reply.err("this command has no download"),
            },
            CmdEvent::ReadFileClose { reply } => reply.ok(Value::Nil),
            CmdEvent::UploadDirectoryWrite { data, reply } => match transfer.as_deref_mut() {
                Some(t) => match t.write(&data) {
                    Ok(()) => reply.ok(Value::Nil),
                    Err(e) => {
                        transfer_error = Some(e.clone());
                        reply.err(e)
                    }
                },
                None => reply.err("this command has no upload"),
            },
            CmdEvent::UploadDirectoryUnpack { reply } => match transfer.as_deref_mut() {
                Some(t) => match t.unpack().await {
                    Ok(()) => reply.ok(Value::Nil),
                    Err(e) => {
                        logs.stdio('h', &format!("{e}\n"));
                        transfer_error = Some(e.clone());
                        reply.err(e)
                    }
                },
                None => reply.err("this command has no upload"),
            },
            CmdEvent::OtherUpload { op, reply } => {
                reply.err(format!("{op} is not expected in this step"))
            }
        }
    }
}
