//! The fedmsg envelope: `{topic, msg, msg_id, timestamp, i, username, [crypto, signature,
//! certificate]}` (reference: fedmsg `core.py: publish`).
//!
//! Parsing is strict about what the trigger relies on (an object with a string `topic` equal to
//! ZeroMQ frame 1, and a `msg`) and lenient about the rest, because real buses carry envelopes
//! from several generations of fedmsg and from the AMQP bridge.

use sha1::{Digest, Sha1};

/// One parsed message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub topic: String,
    /// The payload (`body["msg"]`).
    pub msg: serde_json::Value,
    /// `body["msg_id"]`, or `sha1:<hex of the body>` for envelopes from before msg_id existed.
    pub msg_id: String,
    /// The whole envelope as received.
    pub body: serde_json::Value,
}

/// Why a frame pair is not a usable fedmsg message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("topic frame is not UTF-8")]
    TopicNotUtf8,
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotObject,
    #[error("field {0:?} is missing")]
    Missing(&'static str),
    #[error("field {field:?} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("topic envelope mismatch: frame says {frame:?}, envelope says {envelope:?}")]
    TopicMismatch { frame: String, envelope: String },
}

impl Envelope {
    /// Parses a two-frame bus message `[topic, body]`.
    pub fn from_frames(topic: &[u8], body: &[u8], limit: usize) -> Result<Envelope, EnvelopeError> {
        if body.len() + topic.len() > limit {
            return Err(EnvelopeError::TooLarge {
                size: body.len() + topic.len(),
                limit,
            });
        }
        let frame_topic = std::str::from_utf8(topic).map_err(|_| EnvelopeError::TopicNotUtf8)?;
        let env = Envelope::from_body(body)?;
        if env.topic != frame_topic {
            return Err(EnvelopeError::TopicMismatch {
                frame: frame_topic.to_string(),
                envelope: env.topic,
            });
        }
        Ok(env)
    }

    /// Parses an envelope without a topic frame (replay files, datagrepper records).
    pub fn from_body(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let mut env = Envelope::from_value(value)?;
        if env.msg_id.is_empty() {
            env.msg_id = format!("sha1:{:x}", Sha1::digest(body));
        }
        Ok(env)
    }

    /// Builds an envelope from already-parsed JSON. A missing `msg_id` is left empty.
    pub fn from_value(value: serde_json::Value) -> Result<Envelope, EnvelopeError> {
        let obj = value.as_object().ok_or(EnvelopeError::NotObject)?;
        let topic = match obj.get("topic") {
            None => return Err(EnvelopeError::Missing("topic")),
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(EnvelopeError::WrongType {
                    field: "topic",
                    expected: "a non-empty string",
                })
            }
        };
        let msg = obj
            .get("msg")
            .cloned()
            .ok_or(EnvelopeError::Missing("msg"))?;
        let msg_id = match obj.get("msg_id") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(EnvelopeError::WrongType {
                    field: "msg_id",
                    expected: "a string",
                })
            }
        };
        let msg_id = bridged_amqp_id(obj).unwrap_or(msg_id);
        if let Some(ts) = obj.get("timestamp") {
            if !ts.is_number() && !ts.is_null() {
                return Err(EnvelopeError::WrongType {
                    field: "timestamp",
                    expected: "a number",
                });
            }
        }
        Ok(Envelope {
            topic,
            msg,
            msg_id,
            body: value,
        })
    }
}

/// The fedora-messaging id of a message the AMQP→ZeroMQ bridge re-wrapped: the bridge sends
/// `msg_id: "<year>-<AMQP message id>"` with `username: "amqp-bridge"`
/// (fedmsg-migration-tools `bridges.py`). Using the AMQP id lets a trigger that hears a message
/// both ways (fedmsg and fedora-messaging inputs) process it once.
fn bridged_amqp_id(obj: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if obj.get("username").and_then(|u| u.as_str()) != Some("amqp-bridge") {
        return None;
    }
    let id = obj.get("msg_id")?.as_str()?;
    let (year, rest) = id.split_once('-')?;
    (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty())
        .then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_topic() {
        let body = br#"{"topic":"a.b","msg":{"x":1},"msg_id":"2017-1","timestamp":1}"#;
        let e = Envelope::from_frames(b"a.b", body, 1 << 20).unwrap();
        assert_eq!(e.msg_id, "2017-1");
        assert_eq!(e.msg["x"], 1);
        assert!(matches!(
            Envelope::from_frames(b"a.c", body, 1 << 20),
            Err(EnvelopeError::TopicMismatch { .. })
        ));
        assert!(matches!(
            Envelope::from_frames(b"a.b", body, 10),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_bridged_message_keeps_its_amqp_id() {
        let body =
            br#"{"topic":"a.b","msg":{},"msg_id":"2026-8e7baf5e","username":"amqp-bridge","i":3}"#;
        assert_eq!(Envelope::from_body(body).unwrap().msg_id, "8e7baf5e");
        // Only the bridge's messages: ordinary fedmsg ids look the same.
        let body = br#"{"topic":"a.b","msg":{},"msg_id":"2026-8e7baf5e","username":"apache"}"#;
        assert_eq!(Envelope::from_body(body).unwrap().msg_id, "2026-8e7baf5e");
    }

    #[test]
    fn names_the_bad_field() {
        let cases: [(&[u8], EnvelopeError); 5] = [
            (b"[1]", EnvelopeError::NotObject),
            (br#"{"msg":{}}"#, EnvelopeError::Missing("topic")),
            (br#"{"topic":"t"}"#, EnvelopeError::Missing("msg")),
            (
                br#"{"topic":5,"msg":{}}"#,
                EnvelopeError::WrongType {
                    field: "topic",
                    expected: "a non-empty string",
                },
            ),
            (
                br#"{"topic":"t","msg":{},"msg_id":3}"#,
                EnvelopeError::WrongType {
                    field: "msg_id",
                    expected: "a string",
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(Envelope::from_body(body).unwrap_err(), want);
        }
    }

    #[test]
    fn missing_msg_id_gets_a_content_hash() {
        let a = Envelope::from_body(br#"{"topic":"t","msg":1}"#).unwrap();
        let b = Envelope::from_body(br#"{"topic":"t","msg":2}"#).unwrap();
        assert!(a.msg_id.starts_with("sha1:"));
        assert_ne!(a.msg_id, b.msg_id);
    }
}
