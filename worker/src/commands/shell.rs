//! `shell`: run a command (argv list exec'd directly, or a string via `/bin/sh -c`) in `workdir`.

use std::path::PathBuf;

use taskotron_common::protocol::{CommandLine, LogfileSpec, ShellArgs, SignalSpec};

use super::process::{self, build_env, logfiles_repr, signal_number, ProcSpec};
use super::Ctx;

pub async fn run(args: ShellArgs, ctx: &mut Ctx) -> Result<(), String> {
    let workdir = ctx.basedir.join(&args.workdir); // absolute paths replace the base
    let (argv, shell_string) = match &args.command {
        CommandLine::Argv(a) if a.is_empty() => return Err("shell: empty command".into()),
        CommandLine::Argv(a) => (a.clone(), false),
        CommandLine::Shell(s) => (vec!["/bin/sh".into(), "-c".into(), s.clone()], true),
    };
    let interrupt_signal = match &args.interrupt_signal {
        None => libc::SIGKILL,
        Some(SignalSpec::Number(n)) => *n,
        Some(SignalSpec::Name(n)) => {
            signal_number(n).ok_or_else(|| format!("shell: unknown interruptSignal {n:?}"))?
        }
    };
    let specs: Vec<(String, LogfileSpec)> = args
        .logfiles
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let logfiles: Vec<(String, String, bool)> = specs
        .iter()
        .map(|(n, s)| (n.clone(), s.filename().to_string(), s.follow()))
        .collect();
    let as_dicts = specs
        .iter()
        .any(|(_, s)| matches!(s, LogfileSpec::Spec { .. }));
    let spec = ProcSpec {
        argv,
        shell_string,
        env: build_env(args.env.as_ref(), &workdir),
        workdir: PathBuf::from(&workdir),
        timeout: args.timeout,
        max_time: args.max_time,
        max_lines: args.max_lines,
        sigterm_time: args.sigterm_time,
        interrupt_signal,
        want_stdout: args.want_stdout,
        want_stderr: args.want_stderr,
        log_environ: args.log_environ,
        logfiles_repr: logfiles_repr(&logfiles, as_dicts),
        logfiles,
        initial_stdin: args.initial_stdin.clone(),
        send_rc: true,
    };
    process::run(spec, ctx).await.map(|_| ())
}
