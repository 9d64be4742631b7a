//! `PagureGitReceive`: a push to a pagure.io repository (`io.pagure.<env>.pagure.git.receive`).

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct PagureGitReceive;

const NAME: &str = "PagureGitReceive";

impl Consumer for PagureGitReceive {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.pagure.git.receive", ctx.pagure_prefix)]
    }

    fn consume(&self, env: &Envelope, ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        let repo = f.str("repo.fullname")?;
        let branch = f.str("branch")?;
        let commit = f.str("end_commit")?;
        let item = format!("{}/{repo}#{branch}#{commit}", ctx.pagure_url);
        let mut d = base(env, NAME, item, "git_commit");
        d.insert("repo".into(), repo.into());
        d.insert(
            "name".into(),
            f.opt_str("repo.name")?.unwrap_or(repo).into(),
        );
        d.insert("branch".into(), branch.into());
        d.insert("commit".into(), commit.into());
        if let Some(ns) = f.opt_str("repo.namespace")? {
            d.insert("namespace".into(), ns.into());
        }
        Ok(vec![d])
    }
}
