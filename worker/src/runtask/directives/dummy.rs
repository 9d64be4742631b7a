//! `dummy`: a directive for testing formulas. Fails when `result` is `FAIL` (any case),
//! otherwise returns `msg` (or null).
//!
//! ```yaml
//! - name: pretend
//!   dummy: {result: PASS, msg: hello}
//! ```

use serde_json::Value;

use super::{Directive, DirectiveContext, DirectiveError, Params};

pub struct Dummy;

impl Directive for Dummy {
    fn name(&self) -> &'static str {
        "dummy"
    }

    fn run(
        &self,
        params: &Value,
        _ctx: &mut DirectiveContext<'_>,
    ) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["result", "msg"])?;
        let result = p.req_str("result")?;
        let msg = p.opt_str("msg")?;
        if result.eq_ignore_ascii_case("FAIL") {
            return Err(DirectiveError::Failed(format!(
                "dummy directive failed as asked (result: {result}){}",
                msg.map(|m| format!(": {m}")).unwrap_or_default()
            )));
        }
        Ok(msg.map(Value::String).unwrap_or(Value::Null))
    }
}
