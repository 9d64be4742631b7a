//! `createrepo`: makes a YUM/DNF repository from a directory of RPMs with `createrepo_c`
//! (reference/taskotron.md §2.6). The command is the config's `createrepo` argv.
//!
//! ```yaml
//! createrepo:
//!   repodir: ${workdir}/downloaded_tag   # relative paths are relative to the task dir
//! ```
//! Returns createrepo's stdout.

use serde_json::Value;

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::process;

pub struct Createrepo;

impl Directive for Createrepo {
    fn name(&self) -> &'static str {
        "createrepo"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["repodir"])?;
        let repodir = ctx.task_path(&p.req_str("repodir")?);
        if !repodir.is_dir() {
            return Err(DirectiveError::param(
                "repodir",
                format!("{} is not a directory", repodir.display()),
            ));
        }
        let mut argv = ctx.config.createrepo.clone();
        argv.push(repodir.display().to_string());
        let shown = process::display(&argv);
        tracing::info!("running: {shown}");
        let out = process::run_logged(&argv, ctx.taskdir, &[])
            .map_err(|e| DirectiveError::io(format!("cannot run `{shown}`"), e))?;
        if !out.status.success() {
            return Err(DirectiveError::Failed(format!(
                "`{shown}` failed ({}): {}",
                out.status,
                process::tail_lines(&out.stderr, 2)
            )));
        }
        Ok(Value::String(out.stdout))
    }
}
