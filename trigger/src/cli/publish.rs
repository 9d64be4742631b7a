//! `taskotron-trigger publish --endpoint E --topic T FILE.json`: publishes messages on a PUB
//! socket (bind, or connect to a relay's inbound SUB), for local testing.
//!
//! A file holding a full envelope (`topic` + `msg`) is sent byte for byte, so signed fixtures
//! stay verifiable. A file holding only a payload is wrapped into a fresh envelope with `--topic`,
//! serialised like fedmsg (sorted keys, compact, ASCII escapes).
//!
//! `publish --amqp URL [--topic T] FILE.json` publishes to a RabbitMQ exchange instead, the way
//! fedora-messaging does; files in fedora-messaging's own format (`message.dumps()`, as in
//! `fedora-messaging publish` and datagrepper v2) are sent as they are.

use std::path::PathBuf;
use std::time::Duration;

use taskotron_common::json_canon::{self, PyStr, Value};

use crate::amqp::config::TlsConfig;
use crate::amqp::publish::Outgoing;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["endpoint", "amqp"])))]
pub struct Args {
    /// ZeroMQ endpoint, e.g. tcp://127.0.0.1:9940.
    #[arg(long)]
    endpoint: Option<String>,
    /// Publish to this AMQP broker instead (fedora-messaging), e.g.
    /// amqp://guest:guest@127.0.0.1:5672/%2F.
    #[arg(long)]
    amqp: Option<String>,
    /// AMQP exchange.
    #[arg(long, default_value = "amq.topic")]
    exchange: String,
    /// For amqps://: CA certificate (PEM) of the broker.
    #[arg(long)]
    amqp_ca: Option<PathBuf>,
    /// For amqps://: client certificate (PEM); needs --amqp-key.
    #[arg(long, requires = "amqp_key")]
    amqp_cert: Option<PathBuf>,
    /// For amqps://: client key (PEM, PKCS#8).
    #[arg(long, requires = "amqp_cert")]
    amqp_key: Option<PathBuf>,
    /// Bind the endpoint (like a passive fedmsg publisher) instead of connecting to it.
    #[arg(long)]
    bind: bool,
    /// Topic for payload files; must equal the envelope's topic for envelope files.
    #[arg(long)]
    topic: Option<String>,
    /// Milliseconds to wait for subscribers before sending (ZeroMQ's slow-joiner problem).
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Message files (JSON envelopes or payloads; JSON lines allowed).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    if let Some(url) = &a.amqp {
        return publish_amqp(&a, url).await;
    }
    let endpoint = a.endpoint.clone().unwrap_or_default();
    let mut messages = vec![];
    let mut counter = 0u64;
    for f in &a.files {
        for body in super::replay::read_messages(f)? {
            let v =
                json_canon::parse(&body).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            let is_envelope = v.get("topic").is_some() && v.get("msg").is_some();
            if is_envelope {
                let topic = match v.get("topic") {
                    Some(Value::Str(s)) => s.to_string_lossless().unwrap_or_default(),
                    _ => {
                        anyhow::bail!("{}: envelope field \"topic\" must be a string", f.display())
                    }
                };
                if let Some(t) = &a.topic {
                    anyhow::ensure!(
                        t == &topic,
                        "{}: --topic {t} differs from the envelope's topic {topic}",
                        f.display()
                    );
                }
                messages.push((topic, body));
            } else {
                let topic = a.topic.clone().ok_or_else(|| {
                    anyhow::anyhow!("{}: not an envelope; pass --topic to wrap it", f.display())
                })?;
                counter += 1;
                messages.push((topic.clone(), wrap(&topic, v, counter).into_bytes()));
            }
        }
    }
    crate::bus::publish(
        &endpoint,
        a.bind,
        Duration::from_millis(a.settle_ms),
        &messages,
    )
    .await?;
    eprintln!("published {} message(s) on {endpoint}", messages.len());
    Ok(())
}

async fn publish_amqp(a: &Args, url: &str) -> anyhow::Result<()> {
    let mut messages = vec![];
    for f in &a.files {
        for body in super::replay::read_messages(f)? {
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            messages.push(
                Outgoing::from_json(v, a.topic.as_deref())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?,
            );
        }
    }
    let tls = (a.amqp_ca.is_some() || a.amqp_cert.is_some()).then(|| TlsConfig {
        ca: a.amqp_ca.clone(),
        cert: a.amqp_cert.clone(),
        key: a.amqp_key.clone(),
    });
    crate::amqp::publish::publish(url, tls.as_ref(), &a.exchange, &messages).await?;
    eprintln!(
        "published {} message(s) to exchange {} on {}",
        messages.len(),
        a.exchange,
        crate::amqp::config::redact(url)
    );
    Ok(())
}

/// A fresh fedmsg envelope around `msg`, as `fedmsg.publish` would build it (unsigned).
fn wrap(topic: &str, msg: Value, i: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = 1970 + now / 31_556_952;
    let s = |x: &str| Value::Str(PyStr::from(x));
    let user = std::env::var("USER").unwrap_or_else(|_| "taskotron".into());
    let env = Value::Object(
        [
            ("topic", s(topic)),
            ("msg", msg),
            ("msg_id", s(&format!("{year}-{}", uuid::Uuid::new_v4()))),
            ("timestamp", Value::Int(now.to_string())),
            ("i", Value::Int(i.to_string())),
            ("username", s(&user)),
        ]
        .into_iter()
        .map(|(k, v)| (PyStr::from(k), v))
        .collect(),
    );
    json_canon::to_string(&env)
}
