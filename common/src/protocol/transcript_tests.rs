//! Replays every message of the real Buildbot 4.3.0 session
//! (tests/fixtures/buildbot/buildbot_msgpack_transcript.jsonl): decode → re-encode → the same
//! value, plus typed parsing of every command's args and every update.

use super::*;
use serde_json::Value as Json;

fn transcript() -> Vec<Json> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/buildbot/buildbot_msgpack_transcript.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("transcript fixture");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
}

fn b64decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHA.iter().position(|&a| a == c).expect("base64 char") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The transcript's JSON rendering back into the msgpack value that was on the wire.
fn to_msgpack(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap())
            }
        }
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

fn ws_messages() -> Vec<(Json, Value)> {
    transcript()
        .into_iter()
        .filter(|r| r["kind"] == "ws_message")
        .map(|r| {
            let v = to_msgpack(&r["msg"]);
            (r, v)
        })
        .collect()
}

#[test]
fn every_message_round_trips() {
    let msgs = ws_messages();
    assert_eq!(msgs.len(), 469, "ws_message records in the transcript");
    for (rec, original) in &msgs {
        let mut wire = Vec::new();
        rmpv::encode::write_value(&mut wire, original).unwrap();
        // Unredacted records carry the real frame size: our rendering is byte-exact.
        if let (Some(n), None) = (rec["bytes"].as_u64(), rec.get("redacted")) {
            assert_eq!(wire.len() as u64, n, "frame size of {rec}");
        }
        let msg = decode(&wire).unwrap_or_else(|e| panic!("decode {rec}: {e}"));
        if let Message::Request(r) = &msg {
            assert!(!matches!(r.op, Op::Unknown { .. }), "unknown op in {rec}");
        }
        let again = decode_value(&encode(&msg), DEFAULT_MAX_FRAME).unwrap();
        assert!(
            semantically_equal(original, &again),
            "re-encoded differs:\n{original}\n{again}"
        );
        assert_eq!(decode(&encode(&msg)).unwrap(), msg);
    }
}

#[test]
fn every_start_command_parses_and_rebuilds() {
    let mut seen = std::collections::BTreeSet::new();
    for (_, v) in ws_messages() {
        let Ok(Message::Request(Request {
            op: Op::StartCommand {
                command_name, args, ..
            },
            ..
        })) = Message::from_value(&v)
        else {
            continue;
        };
        let parsed = CommandArgs::parse(&command_name, &args)
            .unwrap_or_else(|e| panic!("{command_name}: {e}"));
        assert_eq!(parsed.name(), command_name);
        assert_eq!(
            CommandArgs::parse(&command_name, &parsed.to_value()).unwrap(),
            parsed
        );
        seen.insert(command_name);
    }
    let all: Vec<_> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        all,
        [
            "cpdir",
            "download_file",
            "glob",
            "listdir",
            "mkdir",
            "rmdir",
            "shell",
            "stat",
            "upload_directory",
            "upload_file"
        ]
    );
}

#[test]
fn updates_are_typed() {
    let mut rcs = Vec::new();
    for (_, v) in ws_messages() {
        if let Ok(Message::Request(Request {
            op: Op::Update { args, .. },
            ..
        })) = Message::from_value(&v)
        {
            for item in args {
                match item {
                    UpdateItem::Other(k, v) => panic!("untyped update key {k}: {v}"),
                    UpdateItem::Rc(rc) => rcs.push(rc),
                    UpdateItem::Stdout(c) | UpdateItem::Stderr(c) | UpdateItem::Header(c) => {
                        assert_eq!(c.newlines.len(), c.timestamps.len());
                        assert_eq!(c.lines().count(), c.newlines.len());
                        for (line, &nl) in c.lines().zip(&c.newlines) {
                            assert!(line.ends_with('\n'));
                            assert_eq!(c.text.chars().nth(nl as usize), Some('\n'));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // shell exit 3, interrupted/timed out -1, failed stat 2, plenty of 0s.
    for rc in [0, 2, 3, -1] {
        assert!(rcs.contains(&rc), "rc {rc} seen");
    }
}

#[test]
fn worker_info_and_settings_round_trip() {
    for (_, v) in ws_messages() {
        let Ok(msg) = Message::from_value(&v) else {
            continue;
        };
        match msg {
            Message::Response(r) if r.result.as_map().is_some_and(|m| m.len() > 10) => {
                let info = WorkerInfo::from_value(&r.result).unwrap();
                assert_eq!(info.basedir, "/tmp/bbtest/worker");
                assert_eq!(info.system, "posix");
                assert_eq!(info.text("host"), Some("test host\n"));
                assert_eq!(info.worker_commands.len(), WORKER_COMMANDS.len());
                assert!(semantically_equal(&info.to_value(), &r.result));
            }
            Message::Request(Request {
                op: Op::SetWorkerSettings(s),
                ..
            }) => assert_eq!(s, WorkerSettings::default()),
            _ => {}
        }
    }
}

#[test]
fn reference_encodings() {
    // reference/buildbot.md §1.3
    let ka = encode(&Message::request(7, Op::Keepalive));
    assert_eq!(
        ka,
        hex("82a26f70a96b656570616c697665aa7365715f6e756d62657207")
    );
    let resp = encode(&Message::Response(Response::ok(7, Value::Nil)));
    assert_eq!(
        resp,
        hex("83a26f70a8726573706f6e7365aa7365715f6e756d62657207a6726573756c74c0")
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn malformed_frames_are_typed_errors() {
    assert!(matches!(
        decode_bounded(&[0u8; 10], 5),
        Err(ProtocolError::TooLarge { size: 10, max: 5 })
    ));
    // Truncated map.
    assert!(matches!(
        decode(&[0x81, 0xa2, b'o']),
        Err(ProtocolError::InvalidMsgpack(_))
    ));
    assert!(decode(&[0xc1]).is_err());
    assert!(matches!(
        decode(&[0x01]),
        Err(ProtocolError::NotAMap("int"))
    ));
    assert!(matches!(
        decode(&[0x80, 0x80]),
        Err(ProtocolError::TrailingBytes(1))
    ));
    assert!(matches!(
        decode(&[0x80]),
        Err(ProtocolError::MissingEnvelopeKey("op"))
    ));
    // A known op with a bad field: answerable with an exception reply.
    let bad = Value::Map(vec![
        (Value::from("op"), Value::from("update_read_file")),
        (Value::from("command_id"), Value::from("1")),
        (Value::from("length"), Value::from("many")),
        (Value::from("seq_number"), Value::from(4)),
    ]);
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, &bad).unwrap();
    let err = decode(&buf).unwrap_err();
    assert_eq!(err.reply_to(), Some(4));
    // Unknown ops decode, so they can be answered like Buildbot does.
    let unk = Value::Map(vec![
        (Value::from("op"), Value::from("frobnicate")),
        (Value::from("seq_number"), Value::from(9)),
    ]);
    buf.clear();
    rmpv::encode::write_value(&mut buf, &unk).unwrap();
    let Message::Request(r) = decode(&buf).unwrap() else {
        panic!("request expected")
    };
    let reply = Response::unknown_op(r.seq_number, r.op.name());
    assert_eq!(
        reply.error_text().as_deref(),
        Some("Command frobnicate does not exist.")
    );
    // Deep nesting is refused instead of overflowing the stack.
    let deep: Vec<u8> = std::iter::repeat_n(0x91u8, 100_000).chain([0xc0]).collect();
    assert!(matches!(
        decode(&deep),
        Err(ProtocolError::InvalidMsgpack(_))
    ));
}

#[test]
fn command_args_required_keys() {
    let no_cmd = Value::Map(vec![(Value::from("workdir"), Value::from("/w"))]);
    let e = CommandArgs::parse("shell", &no_cmd).unwrap_err();
    assert!(e.to_string().contains("command"), "{e}");
    assert!(CommandArgs::parse("frob", &no_cmd).is_err());
    let sh = CommandArgs::Shell(ShellArgs::new(
        "/w/build",
        CommandLine::Shell("echo hi".into()),
    ));
    let op = sh.start_command("3", Some("all".into()));
    let bytes = encode(&Message::request(0, op.clone()));
    assert_eq!(decode(&bytes).unwrap(), Message::request(0, op));
}
