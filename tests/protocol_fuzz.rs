//! Property/fuzz tests of `taskotron_common::protocol`: random bytes, mutated real frames and
//! random msgpack trees never make decode panic; whatever decodes re-encodes to the same message.

mod util;
mod worker_support;

use taskotron_common::protocol::{decode, decode_bounded, encode, CommandArgs, Value};
use worker_support::transcript;

/// xorshift64*: deterministic, dependency-free randomness (seeded per test).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Decoding must never panic; a successful decode must survive a round trip.
fn check(bytes: &[u8]) {
    if let Ok(msg) = decode(bytes) {
        let again = decode(&encode(&msg)).expect("re-encoded message decodes");
        assert_eq!(again, msg);
        if let taskotron_common::protocol::Message::Request(r) = &msg {
            if let taskotron_common::protocol::Op::StartCommand {
                command_name, args, ..
            } = &r.op
            {
                let _ = CommandArgs::parse(command_name, args);
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..200_000 {
        let len = rng.below(64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&bytes);
    }
    // Headers that announce huge strings/arrays/maps with no body.
    for marker in [0xc6u8, 0xdb, 0xdd, 0xdf, 0xc9] {
        check(&[marker, 0xff, 0xff, 0xff, 0xff]);
        check(&[0x81, 0xa2, b'o', b'p', marker, 0xff, 0xff, 0xff, 0xff]);
    }
}

#[test]
fn mutated_transcript_frames_never_panic() {
    let frames = transcript::frames();
    assert!(frames.len() > 400);
    let mut rng = Rng(42);
    for _ in 0..30 {
        for (_, frame) in &frames {
            let mut f = frame.clone();
            match rng.below(4) {
                0 => {
                    let i = rng.below(f.len() as u64) as usize;
                    f[i] ^= 1 << rng.below(8);
                }
                1 => f.truncate(rng.below(f.len() as u64) as usize),
                2 => {
                    let i = rng.below(f.len() as u64) as usize;
                    f.insert(i, rng.next() as u8);
                }
                _ => {
                    let i = rng.below(f.len() as u64) as usize;
                    f[i] = rng.next() as u8;
                }
            }
            check(&f);
        }
    }
    // Unmodified, every frame decodes.
    for (dir, frame) in &frames {
        decode(frame).unwrap_or_else(|e| panic!("{dir} frame: {e}"));
    }
}

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let keys = [
        "op",
        "seq_number",
        "command_id",
        "args",
        "result",
        "is_exception",
        "length",
        "command_name",
        "message",
        "path",
        "paths",
        "workdir",
        "command",
        "env",
        "blocksize",
    ];
    let ops = [
        "update",
        "complete",
        "start_command",
        "response",
        "set_worker_settings",
        "update_read_file",
        "update_upload_file_write",
        "update_upload_file_utime",
        "print",
    ];
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Nil,
        1 => Value::from(rng.next() as i64),
        2 => Value::from(rng.below(10)),
        3 => Value::F64(rng.next() as f64 / 7.0),
        4 => Value::from(ops[rng.below(ops.len() as u64) as usize]),
        5 => Value::Binary((0..rng.below(8)).map(|_| rng.next() as u8).collect()),
        6 | 7 => Value::Map(
            (0..rng.below(6))
                .map(|_| {
                    (
                        Value::from(keys[rng.below(keys.len() as u64) as usize]),
                        random_value(rng, depth + 1),
                    )
                })
                .collect(),
        ),
        _ => Value::Array(
            (0..rng.below(5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
    }
}

#[test]
fn random_msgpack_trees_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..50_000 {
        let v = random_value(&mut rng, 0);
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).unwrap();
        check(&buf);
        for name in [
            "shell",
            "upload_file",
            "upload_directory",
            "download_file",
            "mkdir",
            "rmdir",
            "cpdir",
            "stat",
            "glob",
            "listdir",
            "rmfile",
        ] {
            let _ = CommandArgs::parse(name, &v);
        }
    }
}

#[test]
fn size_bound_is_checked_before_parsing() {
    let big = vec![0xc0u8; 1024];
    assert!(decode_bounded(&big, 1023).is_err());
    // Same bytes, within the bound: parsed (and rejected as trailing garbage, not a panic).
    assert!(decode_bounded(&big, 1024).is_err());
}
