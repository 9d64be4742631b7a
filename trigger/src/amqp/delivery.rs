//! One fedora-messaging delivery turned into the envelope the rest of the trigger reads.
//!
//! On the wire (fedora-messaging `docs/api/wire-format.rst`) the routing key is the topic, the
//! body is UTF-8 JSON of the message body only, `message_id` is the message id and the AMQP
//! headers carry `fedora_messaging_schema`, `sent-at` and friends. The trigger's inbox and
//! consumers speak fedmsg envelopes, so a delivery becomes
//! `{"topic": <routing key>, "msg": <body>, "msg_id": <message_id>, "headers": {...}}`: the job
//! triggers take the AMQP body where they took fedmsg's `msg`, and de-duplication by `msg_id`
//! works across both inputs.
//!
//! Messages the ZeroMQ→AMQP bridge (fedmsg-migration-tools) republished carry the whole fedmsg
//! envelope as their body, with `message_id` = the envelope's `msg_id`; those are passed on as
//! the envelope they are.

use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

/// Nesting of header tables/arrays converted at most (deeper values become `null`).
const MAX_HEADER_DEPTH: usize = 8;

/// Why a delivery cannot be used; it is acked and counted, never redelivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Poison {
    #[error("body of {size} bytes exceeds max_message_bytes ({limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("content_type {0:?} is not application/json")]
    ContentType(String),
    #[error("content_encoding {0:?} is not utf-8")]
    ContentEncoding(String),
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("routing key is empty")]
    NoTopic,
}

impl Poison {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Poison::TooLarge { .. } => "too_large",
            Poison::ContentType(_) => "content_type",
            Poison::ContentEncoding(_) => "content_encoding",
            Poison::NotJson(_) => "not_json",
            Poison::NoTopic => "no_topic",
        }
    }
}

/// A delivery ready for the inbox: its de-duplication id and the fedmsg-style envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub msg_id: String,
    pub envelope: Vec<u8>,
}

/// Converts one delivery.
pub fn convert(
    routing_key: &str,
    props: &BasicProperties,
    body: &[u8],
    limit: usize,
) -> Result<Converted, Poison> {
    if body.len() > limit {
        return Err(Poison::TooLarge {
            size: body.len(),
            limit,
        });
    }
    if routing_key.is_empty() {
        return Err(Poison::NoTopic);
    }
    if let Some(ct) = props.content_type() {
        let ct = ct.as_str();
        if !ct.is_empty() && !ct.eq_ignore_ascii_case("application/json") {
            return Err(Poison::ContentType(ct.to_string()));
        }
    }
    if let Some(enc) = props.content_encoding() {
        let enc = enc.as_str();
        if !enc.is_empty()
            && !enc.eq_ignore_ascii_case("utf-8")
            && !enc.eq_ignore_ascii_case("utf8")
        {
            return Err(Poison::ContentEncoding(enc.to_string()));
        }
    }
    let msg: Value = serde_json::from_slice(body).map_err(|e| Poison::NotJson(e.to_string()))?;
    let message_id = props
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_string())
        .filter(|id| !id.is_empty());

    if let Some(id) = &message_id {
        if is_bridged_envelope(&msg, routing_key, id) {
            return Ok(Converted {
                msg_id: id.clone(),
                envelope: body.to_vec(),
            });
        }
    }
    // Without a message id (not fedora-messaging, but raw AMQP publishers may omit it) the
    // content is the identity, as for fedmsg envelopes from before msg_id.
    let msg_id = message_id.unwrap_or_else(|| {
        let mut h = Sha1::new();
        h.update(routing_key.as_bytes());
        h.update([0]);
        h.update(body);
        format!("sha1:{:x}", h.finalize())
    });
    let headers = props
        .headers()
        .as_ref()
        .map(|t| table_to_json(t, 0))
        .unwrap_or_else(|| Value::Object(Map::new()));
    let envelope = serde_json::json!({
        "topic": routing_key,
        "msg": msg,
        "msg_id": msg_id,
        "headers": headers,
    });
    Ok(Converted {
        msg_id,
        envelope: serde_json::to_vec(&envelope).expect("JSON values serialize"),
    })
}

/// A fedmsg envelope the ZeroMQ→AMQP bridge published as the body.
fn is_bridged_envelope(msg: &Value, routing_key: &str, message_id: &str) -> bool {
    msg.get("msg").is_some()
        && msg.get("topic").and_then(Value::as_str) == Some(routing_key)
        && msg.get("msg_id").and_then(Value::as_str) == Some(message_id)
}

fn table_to_json(t: &FieldTable, depth: usize) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), value_to_json(v, depth + 1)))
            .collect(),
    )
}

/// AMQP field values as JSON (what pika hands fedora-messaging: numbers, strings, lists, dicts).
fn value_to_json(v: &AMQPValue, depth: usize) -> Value {
    if depth > MAX_HEADER_DEPTH {
        return Value::Null;
    }
    match v {
        AMQPValue::Boolean(b) => (*b).into(),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Float(f) => (*f as f64).into(),
        AMQPValue::Double(f) => (*f).into(),
        AMQPValue::DecimalValue(d) => (d.value as f64 / 10f64.powi(d.scale as i32)).into(),
        AMQPValue::ShortString(s) => s.as_str().into(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned().into(),
        AMQPValue::FieldArray(a) => Value::Array(
            a.as_slice()
                .iter()
                .map(|x| value_to_json(x, depth + 1))
                .collect(),
        ),
        AMQPValue::Timestamp(t) => (*t).into(),
        AMQPValue::FieldTable(t) => table_to_json(t, depth),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned().into(),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{LongString, ShortString};

    fn props(id: Option<&str>) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from("fedora_messaging_schema"),
            AMQPValue::LongString(LongString::from(
                "koji_fedoramessaging.build.BuildStateChangeV1",
            )),
        );
        headers.insert(
            ShortString::from("fedora_messaging_severity"),
            AMQPValue::LongInt(20),
        );
        let p = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_headers(headers);
        match id {
            Some(id) => p.with_message_id(id.into()),
            None => p,
        }
    }

    fn envelope(c: &Converted) -> Value {
        serde_json::from_slice(&c.envelope).unwrap()
    }

    #[test]
    fn a_fedora_messaging_delivery_becomes_an_envelope() {
        let body = br#"{"name":"chromium","new":1}"#;
        let c = convert(
            "org.fedoraproject.prod.buildsys.build.state.change",
            &props(Some("8e7b")),
            body,
            1000,
        )
        .unwrap();
        assert_eq!(c.msg_id, "8e7b");
        let env = envelope(&c);
        assert_eq!(
            env["topic"],
            "org.fedoraproject.prod.buildsys.build.state.change"
        );
        assert_eq!(env["msg"]["name"], "chromium");
        assert_eq!(env["msg_id"], "8e7b");
        assert_eq!(env["headers"]["fedora_messaging_severity"], 20);
        assert_eq!(
            env["headers"]["fedora_messaging_schema"],
            "koji_fedoramessaging.build.BuildStateChangeV1"
        );
        // The envelope is what the inbox and consumers already read.
        let parsed = crate::fedmsg::Envelope::from_frames(
            b"org.fedoraproject.prod.buildsys.build.state.change",
            &c.envelope,
            10_000,
        )
        .unwrap();
        assert_eq!(parsed.msg_id, "8e7b");
        assert_eq!(parsed.msg["new"], 1);
    }

    #[test]
    fn no_message_id_means_a_content_hash() {
        let a = convert("t.a", &props(None), b"{}", 100).unwrap();
        let b = convert("t.a", &props(None), b"{}", 100).unwrap();
        let c = convert("t.b", &props(None), b"{}", 100).unwrap();
        assert!(a.msg_id.starts_with("sha1:"));
        assert_eq!(a.msg_id, b.msg_id);
        assert_ne!(a.msg_id, c.msg_id);
    }

    #[test]
    fn bridged_fedmsg_envelopes_pass_through() {
        let body = br#"{"topic":"t.x","msg":{"a":1},"msg_id":"2017-abc","timestamp":1}"#;
        let c = convert("t.x", &props(Some("2017-abc")), body, 1000).unwrap();
        assert_eq!(c.envelope, body.to_vec());
        // A body that merely has a msg key is still a plain fedora-messaging body.
        let c = convert("t.x", &props(Some("other")), body, 1000).unwrap();
        assert_eq!(envelope(&c)["msg"]["msg_id"], "2017-abc");
    }

    #[test]
    fn poison_is_named() {
        let p = props(Some("x"));
        assert_eq!(
            convert("t", &p, b"{nope", 100).unwrap_err().reason(),
            "not_json"
        );
        assert_eq!(
            convert("t", &p, &[b' '; 101], 100).unwrap_err(),
            Poison::TooLarge {
                size: 101,
                limit: 100
            }
        );
        assert_eq!(convert("", &p, b"{}", 100).unwrap_err(), Poison::NoTopic);
        let xml = p.clone().with_content_type("text/xml".into());
        assert_eq!(
            convert("t", &xml, b"{}", 100).unwrap_err().reason(),
            "content_type"
        );
        let gz = p.with_content_encoding("gzip".into());
        assert_eq!(
            convert("t", &gz, b"{}", 100).unwrap_err().reason(),
            "content_encoding"
        );
    }

    #[test]
    fn deep_headers_are_cut() {
        let mut t = FieldTable::default();
        for _ in 0..20 {
            let mut outer = FieldTable::default();
            outer.insert("k".into(), AMQPValue::FieldTable(t));
            t = outer;
        }
        let v = table_to_json(&t, 0);
        assert!(v.to_string().contains("null"));
    }
}
