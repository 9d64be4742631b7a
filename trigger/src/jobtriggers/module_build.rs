//! `ModuleBuildComplete`: the Module Build Service finished a module
//! (`mbs.module.state.change` with state `ready`, 5).

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct ModuleBuildComplete;

const NAME: &str = "ModuleBuildComplete";
/// MBS state "ready".
const READY: i64 = 5;

impl Consumer for ModuleBuildComplete {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.mbs.module.state.change", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, _ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        let ready = match f.opt_str("state_name")? {
            Some(name) => name == "ready",
            None => f.int("state")? == Some(READY),
        };
        if !ready {
            return Ok(vec![]);
        }
        let name = f.str("name")?;
        let stream = f.text("stream")?;
        let version = f.text("version")?;
        let mut d = base(
            env,
            NAME,
            format!("{name}-{stream}-{version}"),
            "module_build",
        );
        d.insert("name".into(), name.into());
        d.insert("stream".into(), stream.as_str().into());
        d.insert("version".into(), version.as_str().into());
        d.insert("release".into(), version.into());
        Ok(vec![d])
    }
}
