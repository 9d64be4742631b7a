//! `KojiTagChanged`: a build was tagged into a `*-pending` tag (`buildsys.tag`). Many builds are
//! tagged at once when Bodhi pushes, so the pipeline debounces these per tag (`fuse_delay`).

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct KojiTagChanged;

const NAME: &str = "KojiTagChanged";

impl Consumer for KojiTagChanged {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        // Exact family: `buildsys.tag` (not `buildsys.tag.something` lookalikes like untag).
        vec![format!("{}.buildsys.tag", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        if env.topic != format!("{}.buildsys.tag", ctx.fedora_prefix) {
            return Ok(vec![]);
        }
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        let tag = f.str("tag")?;
        if !tag.ends_with("-pending") {
            return Ok(vec![]);
        }
        if f.opt_str("instance")?.is_some_and(|i| i != "primary") {
            return Ok(vec![]);
        }
        let mut d = base(env, NAME, tag.to_string(), "koji_tag");
        d.insert("tag".into(), tag.into());
        d.insert("name".into(), tag.into());
        Ok(vec![d])
    }
}
