//! The `amqp:` section of the trigger config: which broker, queue and bindings the
//! fedora-messaging input uses.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:5672/%2F` or `amqps://...` (vhost URL-encoded, like pika's).
    pub url: String,
    /// A durable queue of this name is declared and consumed, so messages published while the
    /// trigger is down wait in it. Without a name the broker picks one and the queue is
    /// exclusive and auto-deleted: messages sent while the trigger is not connected are lost.
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Routing keys the queue is bound with (AMQP topic patterns: `*` one word, `#` any).
    /// Derived from the consumers' topics and `environment` when omitted.
    #[serde(default)]
    pub bindings: Option<Vec<String>>,
    /// Deliveries the broker sends before it waits for acks (AMQP basic.qos).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Client certificate and CA for `amqps://` (Fedora's public broker wants both).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Reconnect backoff after the broker went away (milliseconds, doubling up to the max).
    #[serde(default = "default_reconnect_initial_ms")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) (PEM) the broker's certificate must chain to; the system store is
    /// used when absent.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM); needs `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, PKCS#8).
    pub key: Option<PathBuf>,
}

fn default_exchange() -> String {
    "amq.topic".into()
}

fn default_prefetch() -> u16 {
    100
}

fn default_reconnect_initial_ms() -> u64 {
    200
}

fn default_reconnect_max_ms() -> u64 {
    10_000
}

impl AmqpConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(tls) = &mut self.tls {
            for p in [&mut tls.ca, &mut tls.cert, &mut tls.key]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }

    /// Checks the section; the error is (field, reason).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let tls_url = self.url.starts_with("amqps://");
        if !tls_url && !self.url.starts_with("amqp://") {
            return Err((
                "amqp.url",
                format!(
                    "{:?}: expected an amqp:// or amqps:// URL",
                    redact(&self.url)
                ),
            ));
        }
        if let Err(e) = self.url.parse::<lapin::uri::AMQPUri>() {
            return Err(("amqp.url", format!("{:?}: {e}", redact(&self.url))));
        }
        if let Some(q) = &self.queue {
            if q.is_empty() || q.len() > 255 || q.starts_with("amq.") {
                return Err((
                    "amqp.queue",
                    "expected a name of 1-255 bytes not starting with \"amq.\" (reserved by the broker)"
                        .into(),
                ));
            }
        }
        if self.exchange.len() > 255 {
            return Err((
                "amqp.exchange",
                "expected a name of at most 255 bytes".into(),
            ));
        }
        if let Some(bindings) = &self.bindings {
            if bindings.is_empty() {
                return Err((
                    "amqp.bindings",
                    "expected a non-empty list of routing keys (omit the key to derive them from the consumers)".into(),
                ));
            }
            for b in bindings {
                if b.is_empty() || b.len() > 255 || b.split('.').any(str::is_empty) {
                    return Err((
                        "amqp.bindings",
                        format!("{b:?}: expected dot-separated words (`*` and `#` allowed), at most 255 bytes"),
                    ));
                }
            }
        }
        if self.prefetch == 0 {
            return Err((
                "amqp.prefetch",
                "expected a number of deliveries >= 1".into(),
            ));
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err((
                "amqp.reconnect_initial_ms",
                "expected 0 < reconnect_initial_ms <= reconnect_max_ms".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            if !tls_url {
                return Err(("amqp.tls", "TLS settings need an amqps:// url".into()));
            }
            if tls.cert.is_some() != tls.key.is_some() {
                return Err((
                    "amqp.tls",
                    "cert and key go together (a client certificate needs its key)".into(),
                ));
            }
            for (field, p) in [
                ("amqp.tls.ca", &tls.ca),
                ("amqp.tls.cert", &tls.cert),
                ("amqp.tls.key", &tls.key),
            ] {
                if let Some(p) = p {
                    if !p.is_file() {
                        return Err((field, format!("{}: no such file", p.display())));
                    }
                }
            }
        }
        Ok(())
    }

    /// The routing keys to bind: the configured ones, or patterns covering the consumers'
    /// topic prefixes (ZeroMQ subscriptions are byte prefixes, AMQP bindings whole words, so
    /// `a.b.` and `a.b` both become `a.b.#`, which also matches `a.b` itself).
    pub fn bindings_for(&self, prefixes: &[String]) -> Vec<String> {
        if let Some(b) = &self.bindings {
            return b.clone();
        }
        let mut out: Vec<String> = prefixes
            .iter()
            .map(|p| format!("{}.#", p.trim_end_matches('.')))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The URL without its password, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> AmqpConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_derived_bindings() {
        let c = cfg("url: amqp://guest:guest@127.0.0.1:5672/%2F");
        assert_eq!(c.exchange, "amq.topic");
        assert_eq!(c.prefetch, 100);
        assert!(c.check().is_ok());
        let b = c.bindings_for(&[
            "org.fedoraproject.prod.buildsys.build.state.change".into(),
            "org.fedoraproject.prod.bodhi.update.request.".into(),
            "org.fedoraproject.prod.bodhi.update.request".into(),
        ]);
        assert_eq!(
            b,
            [
                "org.fedoraproject.prod.bodhi.update.request.#",
                "org.fedoraproject.prod.buildsys.build.state.change.#"
            ]
        );
        let c = cfg("{url: 'amqp://h/%2F', bindings: [a.b, 'c.#']}");
        assert_eq!(c.bindings_for(&["x.".into()]), ["a.b", "c.#"]);
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |yaml: &str| cfg(yaml).check().unwrap_err().0;
        assert_eq!(field("url: http://h/"), "amqp.url");
        assert_eq!(field("{url: 'amqp://h/%2F', queue: amq.x}"), "amqp.queue");
        assert_eq!(
            field("{url: 'amqp://h/%2F', bindings: []}"),
            "amqp.bindings"
        );
        assert_eq!(
            field("{url: 'amqp://h/%2F', bindings: ['a..b']}"),
            "amqp.bindings"
        );
        assert_eq!(field("{url: 'amqp://h/%2F', prefetch: 0}"), "amqp.prefetch");
        assert_eq!(field("{url: 'amqp://h/%2F', tls: {ca: /x}}"), "amqp.tls");
        assert_eq!(field("{url: 'amqps://h/%2F', tls: {cert: /x}}"), "amqp.tls");
        assert_eq!(
            field("{url: 'amqps://h/%2F', tls: {ca: /nonexistent/ca.pem}}"),
            "amqp.tls.ca"
        );
        assert!(serde_yaml_ng::from_str::<AmqpConfig>("{url: 'amqp://h/', typo: 1}").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqps://fedora:secret@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"),
            "amqps://fedora:***@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"
        );
        assert_eq!(redact("amqp://h:5672/%2F"), "amqp://h:5672/%2F");
    }
}
