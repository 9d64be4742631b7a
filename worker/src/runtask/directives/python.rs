//! `python`: calls a function from a Python file of the task (reference/taskotron.md §2.1).
//!
//! ```yaml
//! python:
//!   file: python_versions_check.py   # relative to the task dir
//!   callable: run                    # function to call
//!   koji_build: ${koji_build}        # every other key is a keyword argument
//!   workdir: ${workdir}
//! export: output                     # the function's return value
//! ```
//! The call runs in a Python 3 child process (config `python`, default `python3`) with cwd =
//! the task dir and the bundled `libtaskotron` package on `PYTHONPATH`. Arguments and the return
//! value cross as JSON, so dicts, lists, strings and numbers keep their types; other objects
//! come back as their `str()`. An exception in the task fails the action with its message; the
//! traceback goes to the log.

use serde_json::{json, Value};

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::{process, python};

pub struct Python;

impl Directive for Python {
    fn name(&self) -> &'static str {
        "python"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        let file = ctx.task_path(&p.req_str("file")?);
        let callable = p.req_str("callable")?;
        if !file.is_file() {
            return Err(DirectiveError::param(
                "file",
                format!("{} does not exist", file.display()),
            ));
        }
        let mut kwargs = p.map();
        kwargs.remove("file");
        kwargs.remove("callable");

        let pkg = python::package_dir(ctx.workdir)
            .map_err(|e| DirectiveError::io("cannot write the libtaskotron package", e))?;
        let call_dir = tempfile::Builder::new()
            .prefix("python-call-")
            .tempdir_in(ctx.workdir)
            .map_err(|e| DirectiveError::io("cannot create a temp dir in workdir", e))?;
        let request = call_dir.path().join("request.json");
        let result = call_dir.path().join("result.json");
        let body = json!({"file": file, "callable": callable, "kwargs": kwargs});
        std::fs::write(&request, body.to_string())
            .map_err(|e| DirectiveError::io(format!("cannot write {}", request.display()), e))?;

        let mut pythonpath = pkg.display().to_string();
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            pythonpath = format!("{pythonpath}:{}", old.to_string_lossy());
        }
        let argv = vec![
            ctx.config.python.clone(),
            "-m".into(),
            "libtaskotron._shim".into(),
            request.display().to_string(),
            result.display().to_string(),
        ];
        tracing::info!("calling {}:{callable}", file.display());
        let out = process::run_logged(
            &argv,
            ctx.taskdir,
            &[("PYTHONPATH", pythonpath), ("PYTHONUNBUFFERED", "1".into())],
        )
        .map_err(|e| DirectiveError::io(format!("cannot run `{}`", ctx.config.python), e))?;

        let text = std::fs::read_to_string(&result).map_err(|_| {
            DirectiveError::Failed(format!(
                "python process ended ({}) without a result: {}",
                out.status,
                process::tail_lines(&out.stderr, 2)
            ))
        })?;
        let reply: Value = serde_json::from_str(&text)
            .map_err(|e| DirectiveError::Failed(format!("unreadable python result: {e}")))?;
        if reply["ok"] == Value::Bool(true) {
            return Ok(reply["value"].clone());
        }
        if let Some(tb) = reply["traceback"].as_str() {
            for line in tb.lines() {
                tracing::error!("{line}");
            }
        }
        Err(DirectiveError::Failed(format!(
            "{}:{callable} raised {}",
            file.display(),
            reply["error"].as_str().unwrap_or("an unknown error")
        )))
    }
}
