//! `rmdir`: `rm -rf` each path (run from the worker basedir, like buildbot-worker); the
//! command's rc is the last non-zero rc of the removals.

use taskotron_common::protocol::{RmdirArgs, UpdateItem};

use super::process::{self, build_env, ProcSpec};
use super::Ctx;

pub async fn run(args: RmdirArgs, ctx: &mut Ctx) -> Result<(), String> {
    let mut rc = 0;
    for path in args.paths.to_vec() {
        let spec = fs_process(
            ctx,
            vec!["rm".into(), "-rf".into(), path],
            args.log_environ,
            args.timeout,
            args.max_time,
        );
        let r = process::run(spec, ctx).await?;
        if r != 0 {
            rc = r;
        }
        if ctx.interrupted() {
            break;
        }
    }
    ctx.out.item(UpdateItem::Rc(rc));
    Ok(())
}

/// A helper process of the fs commands: runs in basedir, timeout default 120 s, no rc of its own.
pub fn fs_process(
    ctx: &Ctx,
    argv: Vec<String>,
    log_environ: Option<bool>,
    timeout: Option<f64>,
    max_time: Option<f64>,
) -> ProcSpec {
    ProcSpec {
        argv,
        shell_string: false,
        env: build_env(None, &ctx.basedir),
        workdir: ctx.basedir.clone(),
        timeout: Some(timeout.unwrap_or(120.0)),
        max_time,
        max_lines: None,
        sigterm_time: None,
        interrupt_signal: libc::SIGKILL,
        want_stdout: true,
        want_stderr: true,
        log_environ: log_environ.unwrap_or(true),
        logfiles: Vec::new(),
        logfiles_repr: "{}".into(),
        initial_stdin: None,
        send_rc: false,
    }
}
