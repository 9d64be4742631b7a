//! runtask: runs a Taskotron task formula (`runtask.yml`) locally.
//!
//! Compatible with libtaskotron's command line. Exit codes: 0 success, the `exitcode`
//! directive's value (100) when one ran, 1 runner/formula error, 2 usage error.
//! The progress log goes to stderr and (at DEBUG level) to
//! `<artifactsdir>/<uuid>/taskotron/taskotron.log`. See docs/runtask.md.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

use taskotron_worker::runtask::runner::{check_uuid, Options, Run};

/// Run a Taskotron task formula on this machine.
#[derive(Parser, Debug)]
#[command(name = "runtask", version, about, long_about = None)]
struct Cli {
    /// Item to test (e.g. an NVR `cups-2.2.0-9.fc25`); the variable named after TYPE gets it.
    #[arg(short, long)]
    item: Option<String>,
    /// Item type: bodhi_update, compose, dist_git_commit, docker_image, git_commit, koji_build,
    /// koji_tag, module_build, pull_request (other names are accepted).
    #[arg(short = 't', long = "type", value_parser = parse_type)]
    item_type: Option<String>,
    /// Architecture of the job: x86_64, armhfp, ppc64le, aarch64, ppc64, s390x, i386, noarch, src.
    #[arg(short, long, default_value = "noarch", value_parser = parse_arch)]
    arch: String,
    /// Job id (Buildbot passes `<builder>/<number>`).
    #[arg(short, long, default_value = "-1")]
    jobid: String,
    /// Unique execution id; names the artifacts dir. Default: UTC time YYYYmmdd_HHMMSS_ffffff.
    #[arg(long, value_parser = parse_uuid)]
    uuid: Option<String>,
    /// Run on this machine and approve system changes (install missing RPM dependencies).
    #[arg(long)]
    local: bool,
    /// Root of the artifacts dirs (overrides the config's `artifactsdir`); output goes to DIR/UUID/.
    #[arg(long, value_name = "DIR")]
    artifactsdir: Option<PathBuf>,
    /// Config file (default: $TASKOTRON_CONFIG, else /etc/taskotron/taskotron.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set or override a formula variable (repeatable).
    #[arg(long = "override", value_name = "NAME=VALUE", value_parser = parse_override)]
    overrides: Vec<(String, String)>,
    /// Debug output on the console; keep the work dir.
    #[arg(short, long)]
    debug: bool,
    /// Accept an item that does not fit its item type's grammar (an NVR for koji_build, ...).
    /// Items reach shell strings in formulas: use only for items you trust.
    #[arg(long)]
    trust_item: bool,
    /// The task formula (runtask.yml).
    formula: PathBuf,
}

fn parse_type(s: &str) -> Result<String, String> {
    if taskotron_common::itemtype::is_valid(s) {
        Ok(s.to_string())
    } else {
        Err("an item type is a name of letters, digits and `_`".into())
    }
}

/// Known arches are listed in --help; other names (e.g. a builder's `all`) are accepted with a
/// warning at run time, but must be plain names.
fn parse_arch(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(s.to_string())
    } else {
        let mut known: Vec<&str> = taskotron_common::arch::BASE.to_vec();
        known.extend(taskotron_common::arch::META);
        Err(format!("not an arch name; known: {}", known.join(", ")))
    }
}

fn parse_uuid(s: &str) -> Result<String, String> {
    check_uuid(s).map(|_| s.to_string())
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=VALUE".to_string())?;
    if !taskotron_common::formula::is_identifier(name) {
        return Err(format!("`{name}` is not a variable name"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let (Some(item), Some(item_type), false) = (&cli.item, &cli.item_type, cli.trust_item) {
        if let Err(e) = taskotron_common::item::check(item_type, item) {
            eprintln!("runtask: error: --item: {e} (--trust-item accepts it anyway)");
            return ExitCode::from(2);
        }
    }
    let debug = cli.debug;
    let opts = Options {
        formula: cli.formula,
        item: cli.item,
        item_type: cli.item_type,
        arch: cli.arch,
        jobid: cli.jobid,
        uuid: cli.uuid,
        local: cli.local,
        artifactsdir: cli.artifactsdir,
        config: cli.config,
        overrides: cli.overrides,
        debug,
    };
    let run = match Run::prepare(opts) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("runtask: error: {e}");
            return ExitCode::from(1);
        }
    };
    let log_file = match std::fs::File::create(run.log_file()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "runtask: error: cannot create {}: {e}",
                run.log_file().display()
            );
            return ExitCode::from(1);
        }
    };
    init_logging(debug, log_file);
    match run.execute() {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            tracing::error!("runtask: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Console (stderr): INFO, or DEBUG with -d. File: DEBUG. Other crates: WARN and up.
fn init_logging(debug: bool, file: std::fs::File) {
    let console_level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(
            Targets::new()
                .with_default(LevelFilter::WARN)
                .with_target("taskotron_worker", console_level)
                .with_target("runtask", console_level),
        );
    let logfile = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .with_filter(
            Targets::new()
                .with_default(LevelFilter::WARN)
                .with_target("taskotron_worker", LevelFilter::DEBUG)
                .with_target("runtask", LevelFilter::DEBUG),
        );
    tracing_subscriber::registry()
        .with(console)
        .with(logfile)
        .init();
}
