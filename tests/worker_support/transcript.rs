//! The captured Buildbot 4.3.0 session (tests/fixtures/buildbot/buildbot_msgpack_transcript.jsonl)
//! as msgpack frames, for fuzzing and replay.
#![allow(dead_code)]

use serde_json::Value as Json;
use taskotron_common::protocol::Value;

fn b64decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | ALPHA.iter().position(|&a| a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The transcript's JSON rendering of a message back into the msgpack value on the wire.
pub fn to_msgpack(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (_, Some(i)) => Value::from(i),
            _ => Value::F64(n.as_f64().unwrap()),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(to_msgpack).collect()),
        Json::Object(o) => match o.get("$bin_b64") {
            Some(Json::String(b)) => Value::Binary(b64decode(b)),
            _ => Value::Map(
                o.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), to_msgpack(v)))
                    .collect(),
            ),
        },
    }
}

/// Every WebSocket message of the session as (direction, msgpack bytes).
pub fn frames() -> Vec<(String, Vec<u8>)> {
    let path = crate::util::fixtures().join("buildbot/buildbot_msgpack_transcript.jsonl");
    let text = std::fs::read_to_string(&path).expect("transcript fixture");
    text.lines()
        .map(|l| serde_json::from_str::<Json>(l).expect("JSON line"))
        .filter(|r| r["kind"] == "ws_message")
        .map(|r| {
            let mut buf = Vec::new();
            rmpv::encode::write_value(&mut buf, &to_msgpack(&r["msg"])).unwrap();
            (r["dir"].as_str().unwrap_or_default().to_string(), buf)
        })
        .collect()
}
