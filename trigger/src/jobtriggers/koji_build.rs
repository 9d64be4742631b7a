//! `KojiBuildPackageCompleted` / `KojiBuildDockerCompleted`: a Koji build reached COMPLETE
//! (`buildsys.build.state.change` with `new == 1`) on the primary Koji instance.

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct KojiBuildCompleted;

const NAME: &str = "KojiBuildCompleted";
/// Koji build state COMPLETE.
const COMPLETE: i64 = 1;

impl Consumer for KojiBuildCompleted {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.buildsys.build.state.change", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        if f.int("new")? != Some(COMPLETE) {
            return Ok(vec![]);
        }
        // 0.3.8: "listen on primary koji instance only" (secondary-arch hubs say s390, ppc, ...).
        if f.opt_str("instance")?.is_some_and(|i| i != "primary") {
            return Ok(vec![]);
        }
        let name = f.str("name")?;
        let version = f.text("version")?;
        let release = f.text("release")?;
        let nvr = format!("{name}-{version}-{release}");
        let message_type = if is_container_build(name, f.get("request")) {
            "KojiBuildDockerCompleted"
        } else {
            "KojiBuildPackageCompleted"
        };
        let mut d = base(env, message_type, nvr, "koji_build");
        d.insert("name".into(), name.into());
        d.insert("version".into(), version.into());
        d.insert("release".into(), release.as_str().into());
        d.insert("critpath_pkgs".into(), ctx.critpath.clone().into());
        d.insert("distgit_branch".into(), distgit_branch(&release).into());
        if let Some(id) = f.int("build_id")? {
            d.insert("build_id".into(), id.into());
        }
        if let Some(owner) = f.opt_str("owner")? {
            d.insert("owner".into(), owner.into());
        }
        Ok(vec![d])
    }
}

/// Container builds come from dist-git's `container/` (formerly `docker/`) namespace; their
/// component names conventionally end in `-docker` or `-container`.
fn is_container_build(name: &str, request: Option<&serde_json::Value>) -> bool {
    let source = request
        .and_then(|r| r.get(0))
        .and_then(|s| s.as_str())
        .unwrap_or("");
    source.contains("/container/")
        || source.contains("/docker/")
        || name.ends_with("-docker")
        || name.ends_with("-container")
}

/// The dist-git branch a build was made from, from its dist tag: `1.fc28` -> `f28`,
/// `1.el7` -> `epel7`, `1.el6` -> `el6`; anything else (rawhide-less module builds, ...) ->
/// `master`.
pub fn distgit_branch(release: &str) -> String {
    for part in release.split('.').rev() {
        if let Some(n) = part.strip_prefix("fc") {
            if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
                return format!("f{n}");
            }
        }
        if let Some(n) = part.strip_prefix("el") {
            let digits: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(v) = digits.parse::<u32>() {
                return if v <= 6 {
                    format!("el{v}")
                } else {
                    format!("epel{v}")
                };
            }
        }
    }
    "master".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_from_dist_tags() {
        assert_eq!(distgit_branch("6.git6ec29ef.fc23"), "f23");
        assert_eq!(distgit_branch("1.fc28"), "f28");
        assert_eq!(distgit_branch("1.el7"), "epel7");
        assert_eq!(distgit_branch("2.el6_9"), "el6");
        assert_eq!(distgit_branch("4.module_bd16c34d"), "master");
    }
}
