//! The remote commands a Buildbot master starts with `start_command`, one file per command,
//! with the semantics of buildbot-worker 4.3 (reference/buildbot.md §1.8, §1.9).
//!
//! [`run`] is the common frame: it runs one command, adds `elapsed`, flushes buffered output and
//! sends `complete` (null on success, a failure text otherwise).

pub mod cpdir;
pub mod download_file;
pub mod glob;
pub mod listdir;
pub mod mkdir;
pub mod output;
pub mod process;
pub mod pyrepr;
pub mod rmdir;
pub mod rmfile;
pub mod shell;
pub mod stat;
pub mod upload_directory;
pub mod upload_file;

use std::path::PathBuf;
use std::time::Instant;

use taskotron_common::protocol::{CommandArgs, Op, UpdateItem};
use tokio::sync::watch;

use output::Output;

/// What a running command can use: its output, the worker's basedir, and its interrupt flag.
pub struct Ctx {
    pub out: Output,
    pub basedir: PathBuf,
    pub interrupt: watch::Receiver<Option<String>>,
}

impl Ctx {
    pub fn interrupted(&self) -> bool {
        self.interrupt.borrow().is_some()
    }

    /// Resolves once `interrupt_command` (or a worker abort) arrives; returns the reason.
    pub async fn wait_interrupt(&mut self) -> String {
        loop {
            if let Some(why) = self.interrupt.borrow_and_update().clone() {
                return why;
            }
            if self.interrupt.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Reports an OS error like buildbot-worker's fs commands: header `<cmd>: <strerror>: <path>`
    /// and `rc` = errno.
    pub fn os_error(&mut self, cmd: &str, e: &std::io::Error, path: &str) {
        self.out
            .header(&format!("{cmd}: {}: {path}\n", strerror(e)));
        self.out
            .item(UpdateItem::Rc(i64::from(e.raw_os_error().unwrap_or(1))));
    }
}

/// The OS message without Rust's " (os error N)" suffix, as Python's `strerror`.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Runs one command to the end and sends its `complete`.
pub async fn run(args: CommandArgs, mut ctx: Ctx) {
    let started = Instant::now();
    let result = match args {
        CommandArgs::Shell(a) => shell::run(a, &mut ctx).await,
        CommandArgs::UploadFile(a) => upload_file::run(a, &mut ctx).await,
        CommandArgs::UploadDirectory(a) => upload_directory::run(a, &mut ctx).await,
        CommandArgs::DownloadFile(a) => download_file::run(a, &mut ctx).await,
        CommandArgs::Mkdir(a) => mkdir::run(a, &mut ctx).await,
        CommandArgs::Rmdir(a) => rmdir::run(a, &mut ctx).await,
        CommandArgs::Cpdir(a) => cpdir::run(a, &mut ctx).await,
        CommandArgs::Stat(a) => stat::run(a, &mut ctx).await,
        CommandArgs::Glob(a) => glob::run(a, &mut ctx).await,
        CommandArgs::Listdir(a) => listdir::run(a, &mut ctx).await,
        CommandArgs::Rmfile(a) => rmfile::run(a, &mut ctx).await,
    };
    if !ctx.interrupted() {
        ctx.out
            .item(UpdateItem::Elapsed(started.elapsed().as_secs_f64()));
    }
    ctx.out.end_lines();
    ctx.out.flush();
    if let Err(e) = &result {
        tracing::warn!(command_id = ctx.out.command_id(), error = %e, "command failed");
    }
    let _ = ctx.out.peer().notify(Op::Complete {
        command_id: ctx.out.command_id().to_string(),
        failure: result.err(),
    });
}
