//! `BodhiUpdate`: a Bodhi update was submitted to testing/stable (`bodhi.update.request.*`,
//! Bodhi 1 and 2+ bodies) or is ready for testing (`bodhi.update.status.testing.*`, the CI
//! "koji-build-group" message). Comments and other Bodhi topics are not consumed.
//!
//! Besides the update (`item`), the data carries the NVRs (`builds`), the release and — as
//! Taskotron's early trigger did to schedule koji_tag tasks from Bodhi — the pending Koji `tag`
//! the request moves the builds into.

use serde_json::Value;

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct BodhiUpdate;

const NAME: &str = "BodhiUpdate";

impl Consumer for BodhiUpdate {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![
            format!("{}.bodhi.update.request.", ctx.fedora_prefix),
            format!("{}.bodhi.update.status.testing", ctx.fedora_prefix),
        ]
    }

    fn consume(&self, env: &Envelope, ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        if env.topic.starts_with(&format!(
            "{}.bodhi.update.status.testing",
            ctx.fedora_prefix
        )) {
            return ready_for_testing(env, &f);
        }
        let update = f
            .get("update")
            .filter(|u| u.is_object())
            .ok_or(ConsumeError {
                consumer: NAME,
                field: "msg.update".into(),
                expected: "an object",
            })?;
        // Bodhi >= 2 has an alias (FEDORA-YYYY-xxxx); Bodhi 1 only a title.
        let id = match f.opt_str("update.alias")? {
            Some(a) => a,
            None => f.str("update.title")?,
        };
        let request = match f.opt_str("update.request")? {
            Some(r) => r.to_string(),
            None => env.topic.rsplit('.').next().unwrap_or_default().to_string(),
        };
        let builds = nvrs(update.get("builds"), "nvr").ok_or(ConsumeError {
            consumer: NAME,
            field: "msg.update.builds".into(),
            expected: "a list of {nvr: ...}",
        })?;
        let dist_tag = f
            .opt_str("update.release.dist_tag")?
            .map(str::to_string)
            .or_else(|| {
                f.opt_str("update.release.branch")
                    .ok()
                    .flatten()
                    .map(str::to_string)
            });
        let mut d = base(env, NAME, id.to_string(), "bodhi_update");
        d.insert("name".into(), id.into());
        d.insert("builds".into(), builds.into());
        d.insert("request".into(), request.as_str().into());
        if let Some(release) = f.opt_str("update.release.name")? {
            d.insert("release".into(), release.into());
        }
        if let Some(dt) = &dist_tag {
            d.insert("distgit_branch".into(), dt.as_str().into());
            let explicit = match request.as_str() {
                "testing" => f.opt_str("update.release.pending_testing_tag")?,
                "stable" => f.opt_str("update.release.pending_stable_tag")?,
                _ => None,
            };
            let tag = match (explicit, request.as_str()) {
                (Some(t), _) => Some(t.to_string()),
                (None, "testing") => Some(format!("{dt}-updates-testing-pending")),
                (None, "stable") => Some(format!("{dt}-updates-pending")),
                _ => None,
            };
            if let Some(tag) = tag {
                d.insert("tag".into(), tag.into());
            }
        }
        if let Some(Value::Bool(c)) = update.get("critpath") {
            d.insert("critpath".into(), (*c).into());
        }
        Ok(vec![d])
    }
}

fn ready_for_testing(env: &Envelope, f: &Fields<'_>) -> Result<Vec<MessageData>, ConsumeError> {
    let artifact_id = f.str("artifact.id")?;
    let update = f
        .str("artifact.repository")?
        .rsplit('/')
        .next()
        .unwrap_or(artifact_id);
    let builds = nvrs(f.get("artifact.builds"), "nvr").ok_or(ConsumeError {
        consumer: NAME,
        field: "msg.artifact.builds".into(),
        expected: "a list of {nvr: ...}",
    })?;
    let release = f.str("artifact.release")?;
    let mut d = base(env, NAME, update.to_string(), "bodhi_update");
    d.insert("name".into(), update.into());
    d.insert("builds".into(), builds.into());
    d.insert("request".into(), "testing".into());
    d.insert("release".into(), release.into());
    d.insert("distgit_branch".into(), release.into());
    Ok(vec![d])
}

fn nvrs(builds: Option<&Value>, key: &str) -> Option<Vec<String>> {
    builds?
        .as_array()?
        .iter()
        .map(|b| b.get(key).and_then(Value::as_str).map(str::to_string))
        .collect()
}
