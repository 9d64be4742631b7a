//! `AtomicCompose` / `CloudCompose`: a Pungi compose finished
//! (`pungi.compose.status.change`, `status: FINISHED`).
//!
//! Dedicated composes are recognised by their id (`Fedora-Atomic-...`, `Fedora-Cloud-...`). A
//! general compose (`Fedora-24-...`, `Fedora-Rawhide-...`) contains both the Atomic and the Cloud
//! images, so it yields both message types.

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct PungiCompose;

const NAME: &str = "PungiCompose";

impl Consumer for PungiCompose {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.pungi.compose.status.change", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, _ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        let status = f.str("status")?;
        if status != "FINISHED" {
            return Ok(vec![]);
        }
        let compose_id = f.str("compose_id")?;
        let location = f.str("location")?;
        let types: &[&str] = if compose_id.contains("-Atomic") {
            &["AtomicCompose"]
        } else if compose_id.contains("-Cloud") {
            &["CloudCompose"]
        } else {
            &["AtomicCompose", "CloudCompose"]
        };
        Ok(types
            .iter()
            .map(|t| {
                let mut d = base(env, t, location.to_string(), "compose");
                d.insert("status".into(), status.into());
                d.insert("location".into(), location.into());
                d.insert("compose_id".into(), compose_id.into());
                d.insert("name".into(), compose_id.into());
                d
            })
            .collect())
    }
}
