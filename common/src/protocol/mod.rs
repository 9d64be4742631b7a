//! Buildbot's `msgpack_experimental_v7` worker protocol, sans I/O (reference/buildbot.md §1).
//!
//! Both our master and our worker use this module; it never touches a socket. One WebSocket
//! binary message carries one msgpack map. This module turns such a payload into a typed
//! [`Message`] and back.
//!
//! # API at a glance
//!
//! * [`decode`]`(&[u8]) -> Result<Message, ProtocolError>`: one frame, bounded by
//!   [`DEFAULT_MAX_FRAME`]; [`decode_bounded`] takes your own limit. Never panics.
//!   On `Err(e)`: if [`ProtocolError::reply_to`] is `Some(seq)`, answer
//!   `Response::exception(seq, e.to_string())`; otherwise log and drop the frame (what Buildbot
//!   does with maps lacking `op`/`seq_number`).
//! * [`encode`]`(&Message) -> Vec<u8>`: the payload to send as one binary WebSocket message.
//! * [`Message`] = [`Request`] `{seq_number, op: Op}` | [`Response`] `{seq_number, result,
//!   is_exception}`. Build replies with [`Response::ok`], [`Response::exception`], and
//!   [`Response::unknown_op`] for [`Op::Unknown`] (Buildbot's `"Command <op> does not exist."`).
//!   `seq_number`s are per side, per connection, from 0; every request gets one response.
//! * [`Op`]: every op in both directions. Master → worker: `Print`, `Keepalive`,
//!   `GetWorkerInfo`, `SetWorkerSettings`, `StartCommand`, `InterruptCommand`, `Shutdown`.
//!   Worker → master: `Update`, `Complete`, `UploadFileWrite/Close/Utime`,
//!   `UploadDirectoryWrite/Unpack`, `ReadFile` (answer with `Value::Binary(bytes)`, empty = EOF),
//!   `ReadFileClose`, and our extension `GracefulShutdown` (drain me, then send `shutdown`;
//!   a stock Buildbot master answers it with `"Command graceful_shutdown does not exist."`).
//! * Command args: [`CommandArgs`] (`Shell(ShellArgs)`, `UploadFile(..)`, ...).
//!   Master: `CommandArgs::Shell(ShellArgs::new(workdir, CommandLine::Argv(..)))
//!   .start_command("7", Some("x86_64".into()))` gives an [`Op::StartCommand`]. Worker:
//!   [`CommandArgs::parse`]`(command_name, &args)` checks required keys (→ [`ArgsError`]).
//! * Output streaming: an `update`'s args are a `Vec<`[`UpdateItem`]`>` (`Stdout`, `Stderr`,
//!   `Header`, `Log(name, ..)` carry a [`LogChunk`] = `[text, newline offsets, timestamps]`;
//!   `Rc`, `Elapsed`, `FailureReason`, `Files`, `Stat`, `Other`). Build chunks with
//!   [`LogChunk::from_lines`] / [`LogChunk::from_text`]; read them with `chunk.text`
//!   or [`LogChunk::lines`].
//! * [`WorkerSettings`] (`set_worker_settings`; `Default` = what Buildbot 4.3 sends) and
//!   [`WorkerInfo`] (`get_worker_info`'s result; `info.text("arch")` reads `info/arch`).
//!
//! Key order inside a map is not significant (Buildbot's varies); [`semantically_equal`]
//! compares values the way a Python receiver would.

mod args;
mod error;
mod message;
mod update;
mod value;

pub use args::{
    CommandArgs, CommandLine, CpdirArgs, DownloadFileArgs, EnvValue, GlobArgs, LogfileSpec,
    MkdirArgs, PathArgs, Paths, RmdirArgs, ShellArgs, SignalSpec, UploadDirectoryArgs,
    UploadFileArgs, WorkerInfo, WorkerSettings, WORKER_COMMANDS,
};
pub use error::{ArgsError, ProtocolError};
pub use message::{
    decode, decode_bounded, decode_value, encode, Message, Op, Request, Response, DEFAULT_MAX_FRAME,
};
pub use rmpv::Value;
pub use update::{LogChunk, UpdateItem};
pub use value::{as_text, map_get, semantically_equal};

/// Protocol name a buildbot-worker passes as `--protocol`.
pub const PROTOCOL_NAME: &str = "msgpack_experimental_v7";
/// Version string our worker reports in `worker_commands` (same as buildbot-worker 4.3).
pub const COMMAND_VERSION: &str = "3.3";

#[cfg(test)]
mod transcript_tests;
