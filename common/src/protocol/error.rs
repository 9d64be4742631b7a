//! Typed decode errors. Every way a frame can be wrong maps to one variant, so a connection
//! handler can decide what to do (answer with an exception, log and drop, close) without parsing
//! error strings.

use thiserror::Error;

/// Why a frame could not be turned into a [`super::Message`].
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProtocolError {
    /// The frame is larger than the caller's limit; it was not parsed at all.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// The bytes are not one valid msgpack value (truncated, bad marker, too deeply nested).
    #[error("invalid msgpack: {0}")]
    InvalidMsgpack(String),
    /// Valid msgpack followed by more bytes; a frame holds exactly one map.
    #[error("{0} trailing bytes after the msgpack value")]
    TrailingBytes(usize),
    /// The value is not a map (Buildbot only ever sends maps).
    #[error("expected a msgpack map, got {0}")]
    NotAMap(&'static str),
    /// A map without `op` or `seq_number` (Buildbot logs and drops these).
    #[error("message has no {0:?} key")]
    MissingEnvelopeKey(&'static str),
    /// A known op whose fields are missing or of the wrong type. `seq_number` is known, so the
    /// receiver should answer with an exception reply carrying this error's text.
    #[error("bad {op:?} message: {detail}")]
    BadField {
        seq_number: u64,
        op: String,
        detail: String,
    },
}

impl ProtocolError {
    /// The sequence number to answer with an exception reply, when the envelope was readable
    /// (only for [`ProtocolError::BadField`]; the other errors are logged and dropped).
    pub fn reply_to(&self) -> Option<u64> {
        match self {
            ProtocolError::BadField { seq_number, .. } => Some(*seq_number),
            _ => None,
        }
    }
}

/// A command's `args` map could not be read as the expected type (missing required key,
/// wrong type). The text names the command and the key.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("invalid arguments for command {command:?}: {detail}")]
pub struct ArgsError {
    pub command: String,
    pub detail: String,
}
