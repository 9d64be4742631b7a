//! `GitHubPullRequestOpened`: github2fedmsg relayed a pull request being opened
//! (`github.pull_request.opened`, `action: opened`).

use super::{base, ConsumeError, Consumer, Context, Fields, MessageData};
use crate::fedmsg::Envelope;

pub struct GitHubPullRequestOpened;

const NAME: &str = "GitHubPullRequestOpened";

impl Consumer for GitHubPullRequestOpened {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topics(&self, ctx: &Context) -> Vec<String> {
        vec![format!("{}.github.pull_request.", ctx.fedora_prefix)]
    }

    fn consume(&self, env: &Envelope, _ctx: &Context) -> Result<Vec<MessageData>, ConsumeError> {
        let f = Fields {
            consumer: NAME,
            msg: &env.msg,
        };
        f.require_object()?;
        if f.opt_str("action")? != Some("opened") {
            return Ok(vec![]);
        }
        let url = f.str("pull_request.html_url")?;
        let repo_name = f.str("repository.full_name")?;
        let mut d = base(env, NAME, url.to_string(), "pull_request");
        d.insert("repo_name".into(), repo_name.into());
        d.insert("name".into(), repo_name.into());
        if let Some(n) = f.int("pull_request.number")? {
            d.insert("number".into(), n.into());
        }
        if let Some(sha) = f.opt_str("pull_request.head.sha")? {
            d.insert("commit".into(), sha.into());
        }
        if let Some(b) = f.opt_str("pull_request.base.ref")? {
            d.insert("branch".into(), b.into());
        }
        Ok(vec![d])
    }
}
