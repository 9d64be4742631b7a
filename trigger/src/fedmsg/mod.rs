//! fedmsg messages: the JSON envelope carried in ZeroMQ frame 2, and its x509 signature.

pub mod envelope;
pub mod signature;

pub use envelope::{Envelope, EnvelopeError};
pub use signature::{SignatureError, Verifier};
