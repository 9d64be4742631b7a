//! Job triggers: one consumer per fedmsg topic family turns an envelope into Taskotron's flat
//! *message data* dict (`_msg`, `message_type`, `item`, `item_type`, `name`, ...), which the
//! rules are matched against (reference: taskotron.md §5.2).
//!
//! A consumer returns no data for messages it deliberately ignores (a Koji build that is not
//! complete, a tag that is not `-pending`, ...) and an error naming the field for malformed
//! ones. Neither stops the trigger.

mod bodhi;
mod compose;
mod distgit;
mod github;
mod koji_build;
mod koji_tag;
mod module_build;
mod pagure;

use serde_json::{Map, Value};

use crate::fedmsg::Envelope;

/// The flat dict rules are matched against.
pub type MessageData = Map<String, Value>;

/// What consumers may need besides the message.
#[derive(Debug, Clone)]
pub struct Context {
    /// `org.fedoraproject.prod`
    pub fedora_prefix: String,
    /// `io.pagure.prod`
    pub pagure_prefix: String,
    pub pagure_url: String,
    pub critpath: Vec<String>,
}

impl Context {
    pub fn new(cfg: &crate::config::Config, critpath: Vec<String>) -> Context {
        Context {
            fedora_prefix: format!("{}.{}", cfg.topic_prefix, cfg.environment),
            pagure_prefix: format!("{}.{}", cfg.pagure_topic_prefix, cfg.environment),
            pagure_url: cfg.pagure_url.trim_end_matches('/').to_string(),
            critpath,
        }
    }
}

/// A malformed message: which field, and what was expected.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{consumer}: field {field:?}: expected {expected}")]
pub struct ConsumeError {
    pub consumer: &'static str,
    pub field: String,
    pub expected: &'static str,
}

/// One topic family.
pub trait Consumer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Full topic prefixes this consumer handles (used for ZeroMQ subscriptions too).
    fn topics(&self, ctx: &Context) -> Vec<String>;
    /// Message data for each job-worthy event in the message (usually zero or one).
    fn consume(&self, env: &Envelope, ctx: &Context) -> Result<Vec<MessageData>, ConsumeError>;
}

/// Every consumer the trigger knows.
pub fn all() -> Vec<Box<dyn Consumer>> {
    vec![
        Box::new(koji_build::KojiBuildCompleted),
        Box::new(koji_tag::KojiTagChanged),
        Box::new(distgit::DistGitCommit),
        Box::new(compose::PungiCompose),
        Box::new(module_build::ModuleBuildComplete),
        Box::new(pagure::PagureGitReceive),
        Box::new(github::GitHubPullRequestOpened),
        Box::new(bodhi::BodhiUpdate),
    ]
}

/// Runs every consumer whose topics match. `Ok(None)` means no consumer handles the topic.
pub fn dispatch(
    consumers: &[Box<dyn Consumer>],
    env: &Envelope,
    ctx: &Context,
) -> Result<Option<Vec<MessageData>>, ConsumeError> {
    let mut handled = false;
    let mut out = vec![];
    for c in consumers {
        if c.topics(ctx)
            .iter()
            .any(|t| env.topic.starts_with(t.as_str()))
        {
            handled = true;
            out.extend(c.consume(env, ctx)?);
        }
    }
    Ok(handled.then_some(out))
}

/// Starts a message-data dict with the keys every consumer sets.
pub(crate) fn base(
    env: &Envelope,
    message_type: &str,
    item: String,
    item_type: &str,
) -> MessageData {
    let mut d = Map::new();
    d.insert("_msg".into(), env.msg.clone());
    d.insert("message_type".into(), message_type.into());
    d.insert("item".into(), item.into());
    d.insert("item_type".into(), item_type.into());
    d
}

/// Field access that names the dotted path in its error.
pub(crate) struct Fields<'a> {
    pub consumer: &'static str,
    pub msg: &'a Value,
}

impl<'a> Fields<'a> {
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        path.split('.').try_fold(self.msg, |v, k| v.get(k))
    }

    fn err(&self, path: &str, expected: &'static str) -> ConsumeError {
        ConsumeError {
            consumer: self.consumer,
            field: format!("msg.{path}"),
            expected,
        }
    }

    pub fn str(&self, path: &str) -> Result<&'a str, ConsumeError> {
        self.get(path)
            .and_then(Value::as_str)
            .ok_or_else(|| self.err(path, "a string"))
    }

    pub fn opt_str(&self, path: &str) -> Result<Option<&'a str>, ConsumeError> {
        match self.get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(path, "a string")),
        }
    }

    pub fn int(&self, path: &str) -> Result<Option<i64>, ConsumeError> {
        match self.get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(path, "an integer")),
        }
    }

    /// A string or a number rendered as text (Koji versions can arrive as either).
    pub fn text(&self, path: &str) -> Result<String, ConsumeError> {
        match self.get(path) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(self.err(path, "a string")),
        }
    }

    pub fn require_object(&self) -> Result<(), ConsumeError> {
        if self.msg.is_object() {
            Ok(())
        } else {
            Err(ConsumeError {
                consumer: self.consumer,
                field: "msg".into(),
                expected: "an object",
            })
        }
    }
}
