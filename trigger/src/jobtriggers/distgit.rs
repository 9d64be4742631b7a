//! `DistGitCommit`: a push to Fedora dist-git (`git.receive`).

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct DistGitCommit;

const NAME: &str = "DistGitCommit";

impl Consumer for DistGitCommit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.git.receive", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, _ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        let repo = f.str("commit.repo")?;
        let rev = f.str("commit.rev")?;
        let branch = f.str("commit.branch")?;
        // Messages from before dist-git namespaces (2017) only had rpms.
        let namespace = f.opt_str("commit.namespace")?.unwrap_or("rpms");
        let item = format!("{namespace}/{repo}#{rev}");
        let mut d = base(env, NAME, item, "dist_git_commit");
        d.insert("name".into(), repo.into());
        d.insert("repo".into(), repo.into());
        d.insert("namespace".into(), namespace.into());
        d.insert("branch".into(), branch.into());
        d.insert("distgit_branch".into(), branch.into());
        d.insert("rev".into(), rev.into());
        Ok(vec![d])
    }
}
