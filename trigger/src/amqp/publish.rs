//! Publishing fedora-messaging messages, for `taskotron-trigger publish --amqp` and local
//! testing: the wire format fedora-messaging's `api.publish` produces (routing key = topic,
//! JSON body, `message_id`, schema headers, persistent), with publisher confirms so that the
//! command returns only once the broker has every message.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Confirmation};
use serde_json::Value;

use super::config::{redact, TlsConfig};

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub id: String,
    /// The message body (published as its JSON).
    pub body: Value,
    /// fedora-messaging headers (`fedora_messaging_schema`, `sent-at`, ...).
    pub headers: serde_json::Map<String, Value>,
}

impl Outgoing {
    /// Reads one message file: fedora-messaging's `message.dumps()` form (`{topic, body,
    /// headers, id, ...}`) as is, a fedmsg envelope (`{topic, msg, msg_id}`) as its payload, or
    /// a bare payload (needs `topic`). `topic`, when given, must agree with the file's.
    pub fn from_json(v: Value, topic: Option<&str>) -> anyhow::Result<Outgoing> {
        let file_topic = v.get("topic").and_then(Value::as_str).map(str::to_string);
        if let (Some(t), Some(f)) = (topic, &file_topic) {
            anyhow::ensure!(t == f, "--topic {t} differs from the message's topic {f}");
        }
        let obj = v.as_object();
        let fedora_messaging = obj.is_some_and(|o| o.contains_key("body") && o.contains_key("id"));
        let fedmsg = obj.is_some_and(|o| o.contains_key("msg") && o.contains_key("topic"));
        let (body, id, headers) = if fedora_messaging {
            let id = v["id"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("field \"id\" must be a string"))?;
            let headers = match v.get("headers") {
                None | Some(Value::Null) => Default::default(),
                Some(Value::Object(h)) => h.clone(),
                Some(_) => anyhow::bail!("field \"headers\" must be an object"),
            };
            (v["body"].clone(), id.to_string(), headers)
        } else if fedmsg {
            let id = v
                .get("msg_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            (v["msg"].clone(), id, Default::default())
        } else {
            (v, uuid::Uuid::new_v4().to_string(), Default::default())
        };
        let topic = topic
            .map(str::to_string)
            .or(file_topic.filter(|_| fedora_messaging || fedmsg))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "not a fedora-messaging or fedmsg message; pass --topic to send it as a body"
                )
            })?;
        let mut headers = headers;
        headers
            .entry("fedora_messaging_schema")
            .or_insert_with(|| "base.message".into());
        headers
            .entry("fedora_messaging_severity")
            .or_insert_with(|| 20.into());
        headers.entry("sent-at").or_insert_with(|| now_iso().into());
        Ok(Outgoing {
            topic,
            id,
            body,
            headers,
        })
    }

    fn properties(&self) -> BasicProperties {
        let headers = match json_to_amqp(&Value::Object(self.headers.clone())) {
            AMQPValue::FieldTable(t) => t,
            _ => FieldTable::default(),
        };
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_message_id(self.id.as_str().into())
            .with_headers(headers)
    }
}

/// `sent-at` as fedora-messaging writes it: UTC, seconds, `+00:00`.
fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// JSON as AMQP field values, the way pika encodes Python values.
fn json_to_amqp(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(a) => {
            let mut arr = FieldArray::default();
            for x in a {
                arr.push(json_to_amqp(x));
            }
            AMQPValue::FieldArray(arr)
        }
        Value::Object(o) => {
            let mut t = FieldTable::default();
            for (k, x) in o {
                t.insert(ShortString::from(k.as_str()), json_to_amqp(x));
            }
            AMQPValue::FieldTable(t)
        }
    }
}

/// Publishes `messages` to `exchange` and waits for the broker's confirms.
pub async fn publish(
    url: &str,
    tls: Option<&TlsConfig>,
    exchange: &str,
    messages: &[Outgoing],
) -> anyhow::Result<()> {
    let conn = super::connect(url, tls).await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut confirms = Vec::with_capacity(messages.len());
    for m in messages {
        let payload = serde_json::to_vec(&m.body)?;
        confirms.push(
            channel
                .basic_publish(
                    exchange.into(),
                    m.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    m.properties(),
                )
                .await?,
        );
    }
    for (m, c) in messages.iter().zip(confirms) {
        match c.await? {
            Confirmation::Ack(_) | Confirmation::NotRequested => {}
            Confirmation::Nack(_) => anyhow::bail!(
                "{}: the broker refused message {} ({})",
                redact(url),
                m.id,
                m.topic
            ),
        }
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_file_forms() {
        let fm: Value = serde_json::from_str(
            r#"{"body": {"a": 1}, "headers": {"sent-at": "x", "fedora_messaging_schema": "s"},
               "id": "abc", "priority": 0, "queue": null, "topic": "t.x"}"#,
        )
        .unwrap();
        let o = Outgoing::from_json(fm.clone(), None).unwrap();
        assert_eq!((o.topic.as_str(), o.id.as_str()), ("t.x", "abc"));
        assert_eq!(o.body["a"], 1);
        assert_eq!(o.headers["fedora_messaging_schema"], "s");
        assert!(Outgoing::from_json(fm, Some("t.y")).is_err());

        let env: Value =
            serde_json::from_str(r#"{"topic": "t.x", "msg": {"b": 2}, "msg_id": "2017-q"}"#)
                .unwrap();
        let o = Outgoing::from_json(env, None).unwrap();
        assert_eq!((o.id.as_str(), o.body["b"].as_i64()), ("2017-q", Some(2)));

        let bare: Value = serde_json::from_str(r#"{"c": 3}"#).unwrap();
        assert!(Outgoing::from_json(bare.clone(), None).is_err());
        let o = Outgoing::from_json(bare, Some("t.z")).unwrap();
        assert_eq!(o.topic, "t.z");
        assert_eq!(o.headers["fedora_messaging_severity"], 20);
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_650), (2026, 7, 16));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(now_iso().len(), "2026-11-28T14:08:52+00:00".len());
    }
}
