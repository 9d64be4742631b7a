//! `exitcode`: makes runtask's exit code reflect the results (reference/taskotron.md §2.10).
//!
//! ```yaml
//! exitcode:
//!   result_worst: ${output}   # 100 if ANY outcome is not PASSED/INFO, else 0
//! # or
//!   result_last: ${output}    # 100 if the LAST outcome is not PASSED/INFO, else 0
//! ```
//! When several `exitcode` actions run, runtask exits with the highest code.

use serde_json::Value;

use super::{results_param, Directive, DirectiveContext, DirectiveError, Params};

/// The code for failed results.
pub const FAILURE: i32 = 100;

pub struct ExitCode;

impl Directive for ExitCode {
    fn name(&self) -> &'static str {
        "exitcode"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["result_worst", "result_last"])?;
        let (which, value) = p.one_of("result_worst", "result_last")?;
        let details = results_param(which, value)?;
        let failed = match which {
            "result_worst" => details.iter().any(|d| !d.outcome.is_success()),
            _ => details.last().is_some_and(|d| !d.outcome.is_success()),
        };
        let code = if failed { FAILURE } else { 0 };
        tracing::info!(
            "exit code from {which} of {} results: {code}",
            details.len()
        );
        ctx.state.exit_code = Some(ctx.state.exit_code.map_or(code, |c| c.max(code)));
        Ok(Value::from(code))
    }
}
