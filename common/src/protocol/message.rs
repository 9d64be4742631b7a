//! The envelope and every op of `msgpack_experimental_v7`, with encode/decode.
//!
//! Requests are `{op, seq_number, ...}`; replies are `{op: "response", seq_number, result}` plus
//! `is_exception: true` on failure (reference/buildbot.md §1.4–§1.6).

use rmpv::Value;

use super::error::ProtocolError;
use super::update::UpdateItem;
use super::value::{as_bytes, as_f64, as_text, map_get, type_name};
use super::WorkerSettings;

/// Default bound on one WebSocket message. Uploads use 256 KiB blocks; 16 MiB leaves headroom
/// for large `update` batches without letting a peer make us allocate without limit.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// One decoded WebSocket message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// A request from either side. `seq_number` is the sender's own counter (from 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub seq_number: u64,
    pub op: Op,
}

/// The reply to one request. On failure `is_exception` is true and `result` is the error text.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub seq_number: u64,
    pub result: Value,
    pub is_exception: bool,
}

/// Every op, both directions. `Unknown` keeps ops this crate does not know, so the receiver can
/// answer them with `"Command <op> does not exist."` ([`Response::unknown_op`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    // ---- master -> worker ----
    /// Log a message on the worker (`"attached"`, `"ping"`, ...).
    Print { message: String },
    /// Liveness check; the worker answers null.
    Keepalive,
    /// Ask for the worker's info map (see [`super::WorkerInfo`]).
    GetWorkerInfo,
    /// Line splitting and buffering settings for command output.
    SetWorkerSettings(WorkerSettings),
    /// Start a remote command. `args` is the command's argument map (parse it with
    /// [`super::CommandArgs::parse`], build it with [`super::CommandArgs::to_value`]).
    StartCommand {
        command_id: String,
        command_name: String,
        args: Value,
        builder_name: Option<String>,
    },
    /// Interrupt a running command.
    InterruptCommand {
        command_id: String,
        why: String,
        builder_name: Option<String>,
    },
    /// Ask the worker process to exit.
    Shutdown,
    // ---- worker -> master ----
    /// **Taskotron extension** (not in Buildbot): the worker asks to be drained: the master
    /// gives it no new builds, lets the running ones finish, then sends [`Op::Shutdown`].
    /// A stock Buildbot master answers `"Command graceful_shutdown does not exist."`, and the
    /// worker then falls back to finishing its running commands on its own (docs/worker.md).
    GracefulShutdown,
    /// Status/output of a running command.
    Update {
        command_id: String,
        args: Vec<UpdateItem>,
    },
    /// The command finished: `failure` is None on success, else the failure text.
    Complete {
        command_id: String,
        failure: Option<String>,
    },
    /// A block of an `upload_file` (bin).
    UploadFileWrite { command_id: String, data: Vec<u8> },
    /// End of an `upload_file`.
    UploadFileClose { command_id: String },
    /// Set the uploaded file's times (only with `keepstamp`).
    UploadFileUtime {
        command_id: String,
        access_time: f64,
        modified_time: f64,
    },
    /// A block of the tar stream of an `upload_directory`.
    UploadDirectoryWrite { command_id: String, data: Vec<u8> },
    /// End of the tar stream: the master unpacks it.
    UploadDirectoryUnpack { command_id: String },
    /// `download_file` pull: the master answers with up to `length` bytes (bin; empty = EOF).
    ReadFile { command_id: String, length: u64 },
    /// End of a `download_file`.
    ReadFileClose { command_id: String },
    /// An op this crate does not know; `fields` are the map minus `op` and `seq_number`.
    Unknown {
        op: String,
        fields: Vec<(Value, Value)>,
    },
}

impl Op {
    /// The wire name of the op.
    pub fn name(&self) -> &str {
        match self {
            Op::Print { .. } => "print",
            Op::Keepalive => "keepalive",
            Op::GetWorkerInfo => "get_worker_info",
            Op::SetWorkerSettings(_) => "set_worker_settings",
            Op::StartCommand { .. } => "start_command",
            Op::InterruptCommand { .. } => "interrupt_command",
            Op::Shutdown => "shutdown",
            Op::GracefulShutdown => "graceful_shutdown",
            Op::Update { .. } => "update",
            Op::Complete { .. } => "complete",
            Op::UploadFileWrite { .. } => "update_upload_file_write",
            Op::UploadFileClose { .. } => "update_upload_file_close",
            Op::UploadFileUtime { .. } => "update_upload_file_utime",
            Op::UploadDirectoryWrite { .. } => "update_upload_directory_write",
            Op::UploadDirectoryUnpack { .. } => "update_upload_directory_unpack",
            Op::ReadFile { .. } => "update_read_file",
            Op::ReadFileClose { .. } => "update_read_file_close",
            Op::Unknown { op, .. } => op,
        }
    }

    /// The command this op belongs to, for ops that carry a `command_id`.
    pub fn command_id(&self) -> Option<&str> {
        match self {
            Op::StartCommand { command_id, .. }
            | Op::InterruptCommand { command_id, .. }
            | Op::Update { command_id, .. }
            | Op::Complete { command_id, .. }
            | Op::UploadFileWrite { command_id, .. }
            | Op::UploadFileClose { command_id }
            | Op::UploadFileUtime { command_id, .. }
            | Op::UploadDirectoryWrite { command_id, .. }
            | Op::UploadDirectoryUnpack { command_id }
            | Op::ReadFile { command_id, .. }
            | Op::ReadFileClose { command_id } => Some(command_id),
            _ => None,
        }
    }

    /// The op's own keys (everything except `op` and `seq_number`), in Buildbot's order.
    fn fields(&self) -> Vec<(Value, Value)> {
        fn kv(k: &str, v: Value) -> (Value, Value) {
            (Value::from(k), v)
        }
        fn s(v: &str) -> Value {
            Value::from(v)
        }
        match self {
            Op::Print { message } => vec![kv("message", s(message))],
            Op::Keepalive | Op::GetWorkerInfo | Op::Shutdown | Op::GracefulShutdown => vec![],
            Op::SetWorkerSettings(ws) => vec![kv("args", ws.to_value())],
            Op::StartCommand {
                command_id,
                command_name,
                args,
                builder_name,
            } => {
                let mut f = Vec::new();
                if let Some(b) = builder_name {
                    f.push(kv("builder_name", s(b)));
                }
                f.push(kv("command_id", s(command_id)));
                f.push(kv("command_name", s(command_name)));
                f.push(kv("args", args.clone()));
                f
            }
            Op::InterruptCommand {
                command_id,
                why,
                builder_name,
            } => {
                let mut f = Vec::new();
                if let Some(b) = builder_name {
                    f.push(kv("builder_name", s(b)));
                }
                f.push(kv("command_id", s(command_id)));
                f.push(kv("why", s(why)));
                f
            }
            Op::Update { command_id, args } => vec![
                kv(
                    "args",
                    Value::Array(args.iter().map(UpdateItem::to_value).collect()),
                ),
                kv("command_id", s(command_id)),
            ],
            Op::Complete {
                command_id,
                failure,
            } => vec![
                kv("args", failure.as_deref().map_or(Value::Nil, s)),
                kv("command_id", s(command_id)),
            ],
            Op::UploadFileWrite { command_id, data }
            | Op::UploadDirectoryWrite { command_id, data } => vec![
                kv("args", Value::Binary(data.clone())),
                kv("command_id", s(command_id)),
            ],
            Op::UploadFileClose { command_id }
            | Op::UploadDirectoryUnpack { command_id }
            | Op::ReadFileClose { command_id } => vec![kv("command_id", s(command_id))],
            Op::UploadFileUtime {
                command_id,
                access_time,
                modified_time,
            } => vec![
                kv("access_time", Value::F64(*access_time)),
                kv("modified_time", Value::F64(*modified_time)),
                kv("command_id", s(command_id)),
            ],
            Op::ReadFile { command_id, length } => vec![
                kv("length", Value::from(*length)),
                kv("command_id", s(command_id)),
            ],
            Op::Unknown { fields, .. } => fields.clone(),
        }
    }
}

impl Response {
    /// A successful reply.
    pub fn ok(seq_number: u64, result: Value) -> Response {
        Response {
            seq_number,
            result,
            is_exception: false,
        }
    }

    /// A failure reply carrying `message` as its result.
    pub fn exception(seq_number: u64, message: impl Into<String>) -> Response {
        Response {
            seq_number,
            result: Value::from(message.into()),
            is_exception: true,
        }
    }

    /// Buildbot's reply to an op it does not know.
    pub fn unknown_op(seq_number: u64, op: &str) -> Response {
        Response::exception(seq_number, format!("Command {op} does not exist."))
    }

    /// The error text of an exception reply.
    pub fn error_text(&self) -> Option<String> {
        if !self.is_exception {
            return None;
        }
        Some(as_text(&self.result).unwrap_or_else(|| self.result.to_string()))
    }
}

impl Message {
    pub fn request(seq_number: u64, op: Op) -> Message {
        Message::Request(Request { seq_number, op })
    }

    pub fn seq_number(&self) -> u64 {
        match self {
            Message::Request(r) => r.seq_number,
            Message::Response(r) => r.seq_number,
        }
    }

    /// The message as a msgpack map (`op` first, as Buildbot sends it).
    pub fn to_value(&self) -> Value {
        let mut pairs = Vec::new();
        match self {
            Message::Request(r) => {
                pairs.push((Value::from("op"), Value::from(r.op.name())));
                pairs.extend(r.op.fields());
                pairs.push((Value::from("seq_number"), Value::from(r.seq_number)));
            }
            Message::Response(r) => {
                pairs.push((Value::from("op"), Value::from("response")));
                pairs.push((Value::from("seq_number"), Value::from(r.seq_number)));
                pairs.push((Value::from("result"), r.result.clone()));
                if r.is_exception {
                    pairs.push((Value::from("is_exception"), Value::Boolean(true)));
                }
            }
        }
        Value::Map(pairs)
    }

    /// Reads a message from an already decoded msgpack value.
    pub fn from_value(v: &Value) -> Result<Message, ProtocolError> {
        let pairs = match v {
            Value::Map(p) => p,
            other => return Err(ProtocolError::NotAMap(type_name(other))),
        };
        let op = map_get(pairs, "op")
            .and_then(as_text)
            .ok_or(ProtocolError::MissingEnvelopeKey("op"))?;
        let seq_number = map_get(pairs, "seq_number")
            .and_then(Value::as_u64)
            .ok_or(ProtocolError::MissingEnvelopeKey("seq_number"))?;
        if op == "response" {
            return Ok(Message::Response(Response {
                seq_number,
                result: map_get(pairs, "result").cloned().unwrap_or(Value::Nil),
                // Buildbot checks only whether the key is present.
                is_exception: map_get(pairs, "is_exception").is_some(),
            }));
        }
        let f = Fields {
            pairs,
            op: &op,
            seq_number,
        };
        let op = match op.as_str() {
            "print" => Op::Print {
                message: f.text_or_repr("message")?,
            },
            "keepalive" => Op::Keepalive,
            "get_worker_info" => Op::GetWorkerInfo,
            "set_worker_settings" => {
                let args = f.required("args")?;
                Op::SetWorkerSettings(WorkerSettings::from_value(args).map_err(|d| f.bad(d))?)
            }
            "start_command" => Op::StartCommand {
                command_id: f.text("command_id")?,
                command_name: f.text("command_name")?,
                args: f.required("args")?.clone(),
                builder_name: f.opt_text("builder_name")?,
            },
            "interrupt_command" => Op::InterruptCommand {
                command_id: f.text("command_id")?,
                why: f.opt_text("why")?.unwrap_or_default(),
                builder_name: f.opt_text("builder_name")?,
            },
            "shutdown" => Op::Shutdown,
            "graceful_shutdown" => Op::GracefulShutdown,
            "update" => {
                let list = f
                    .required("args")?
                    .as_array()
                    .ok_or_else(|| f.bad("args: expected a list of [key, value] pairs"))?;
                let args = list
                    .iter()
                    .map(|p| {
                        UpdateItem::from_value(p)
                            .ok_or_else(|| f.bad("args: each entry must be a [key, value] pair"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Op::Update {
                    command_id: f.text("command_id")?,
                    args,
                }
            }
            "complete" => Op::Complete {
                command_id: f.text("command_id")?,
                failure: match map_get(pairs, "args") {
                    None | Some(Value::Nil) => None,
                    Some(v) => Some(as_text(v).unwrap_or_else(|| v.to_string())),
                },
            },
            "update_upload_file_write" => Op::UploadFileWrite {
                command_id: f.text("command_id")?,
                data: f.bytes("args")?,
            },
            "update_upload_file_close" => Op::UploadFileClose {
                command_id: f.text("command_id")?,
            },
            "update_upload_file_utime" => Op::UploadFileUtime {
                command_id: f.text("command_id")?,
                access_time: f.number("access_time")?,
                modified_time: f.number("modified_time")?,
            },
            "update_upload_directory_write" => Op::UploadDirectoryWrite {
                command_id: f.text("command_id")?,
                data: f.bytes("args")?,
            },
            "update_upload_directory_unpack" => Op::UploadDirectoryUnpack {
                command_id: f.text("command_id")?,
            },
            "update_read_file" => Op::ReadFile {
                command_id: f.text("command_id")?,
                length: f
                    .required("length")?
                    .as_u64()
                    .ok_or_else(|| f.bad("length: expected a non-negative int"))?,
            },
            "update_read_file_close" => Op::ReadFileClose {
                command_id: f.text("command_id")?,
            },
            _ => Op::Unknown {
                op: op.clone(),
                fields: pairs
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), Some("op") | Some("seq_number")))
                    .cloned()
                    .collect(),
            },
        };
        Ok(Message::Request(Request { seq_number, op }))
    }
}

/// Field access for one request map, producing [`ProtocolError::BadField`] with context.
struct Fields<'a> {
    pairs: &'a [(Value, Value)],
    op: &'a str,
    seq_number: u64,
}

impl Fields<'_> {
    fn bad(&self, detail: impl Into<String>) -> ProtocolError {
        ProtocolError::BadField {
            seq_number: self.seq_number,
            op: self.op.to_string(),
            detail: detail.into(),
        }
    }

    fn required(&self, key: &str) -> Result<&Value, ProtocolError> {
        map_get(self.pairs, key).ok_or_else(|| self.bad(format!("missing key {key:?}")))
    }

    fn text(&self, key: &str) -> Result<String, ProtocolError> {
        let v = self.required(key)?;
        as_text(v).ok_or_else(|| self.bad(format!("{key}: expected str, got {}", type_name(v))))
    }

    /// A str, or any other value rendered as text (Buildbot prints whatever it gets).
    fn text_or_repr(&self, key: &str) -> Result<String, ProtocolError> {
        let v = self.required(key)?;
        Ok(as_text(v).unwrap_or_else(|| v.to_string()))
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, ProtocolError> {
        match map_get(self.pairs, key) {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => as_text(v)
                .map(Some)
                .ok_or_else(|| self.bad(format!("{key}: expected str, got {}", type_name(v)))),
        }
    }

    fn bytes(&self, key: &str) -> Result<Vec<u8>, ProtocolError> {
        let v = self.required(key)?;
        as_bytes(v).ok_or_else(|| self.bad(format!("{key}: expected bin, got {}", type_name(v))))
    }

    fn number(&self, key: &str) -> Result<f64, ProtocolError> {
        let v = self.required(key)?;
        as_f64(v).ok_or_else(|| self.bad(format!("{key}: expected a number, got {}", type_name(v))))
    }
}

/// Encodes a message as one msgpack map (the payload of one binary WebSocket message).
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut buf, &msg.to_value());
    buf
}

/// Decodes one frame with the [`DEFAULT_MAX_FRAME`] bound.
pub fn decode(frame: &[u8]) -> Result<Message, ProtocolError> {
    decode_bounded(frame, DEFAULT_MAX_FRAME)
}

/// Decodes one frame, refusing frames larger than `max_len` before parsing them. Never panics:
/// every malformed input becomes a [`ProtocolError`].
pub fn decode_bounded(frame: &[u8], max_len: usize) -> Result<Message, ProtocolError> {
    let value = decode_value(frame, max_len)?;
    Message::from_value(&value)
}

/// Decodes one frame into a raw msgpack value (bounded size, nesting depth limited to 64).
pub fn decode_value(frame: &[u8], max_len: usize) -> Result<Value, ProtocolError> {
    if frame.len() > max_len {
        return Err(ProtocolError::TooLarge {
            size: frame.len(),
            max: max_len,
        });
    }
    let mut rd = frame;
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, 64)
        .map_err(|e| ProtocolError::InvalidMsgpack(e.to_string()))?;
    if !rd.is_empty() {
        return Err(ProtocolError::TrailingBytes(rd.len()));
    }
    if !strings_are_utf8(&value) {
        // Python's msgpack (raw=False) refuses such frames too.
        return Err(ProtocolError::InvalidMsgpack(
            "a str value is not valid UTF-8".into(),
        ));
    }
    Ok(value)
}

fn strings_are_utf8(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_str(),
        Value::Array(a) => a.iter().all(strings_are_utf8),
        Value::Map(m) => m
            .iter()
            .all(|(k, v)| strings_are_utf8(k) && strings_are_utf8(v)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graceful_shutdown_encodes_and_parses() {
        // {"op": "graceful_shutdown", "seq_number": 3}, op first like every request we send.
        let mut want = vec![0x82, 0xa2, b'o', b'p', 0xb1];
        want.extend_from_slice(b"graceful_shutdown");
        want.push(0xaa);
        want.extend_from_slice(b"seq_number");
        want.push(0x03);
        let bytes = encode(&Message::request(3, Op::GracefulShutdown));
        assert_eq!(bytes, want);
        assert_eq!(
            decode(&bytes).unwrap(),
            Message::request(3, Op::GracefulShutdown)
        );
        assert_eq!(Op::GracefulShutdown.name(), "graceful_shutdown");
        assert_eq!(Op::GracefulShutdown.command_id(), None);

        // Key order does not matter, and extra keys are ignored (as for other bodiless ops).
        let v = Value::Map(vec![
            (Value::from("seq_number"), Value::from(9u64)),
            (Value::from("reason"), Value::from("SIGTERM")),
            (Value::from("op"), Value::from("graceful_shutdown")),
        ]);
        assert_eq!(
            Message::from_value(&v).unwrap(),
            Message::request(9, Op::GracefulShutdown)
        );

        // A master that does not know the op answers like Buildbot does.
        let r = Response::unknown_op(3, Op::GracefulShutdown.name());
        assert_eq!(
            r.error_text().as_deref(),
            Some("Command graceful_shutdown does not exist.")
        );
    }
}
