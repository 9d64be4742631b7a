//! The worker agent: one long-lived connection to a Buildbot-compatible master, split like
//! Buildkite's agent so each concern reads on its own:
//!
//! * [`worker`]: lifecycle loop (connect → session → backoff → reconnect, stop/abort);
//! * [`connection`]: one WebSocket session (auth, reader, ordered writer);
//! * [`handler`]: answers to each master op;
//! * [`heartbeat`]: WebSocket pings and silent-master detection;
//! * [`graceful`]: SIGTERM's `graceful_shutdown` request (our protocol extension) and its
//!   fallback;
//! * [`backoff`]: jittered exponential reconnect delays;
//! * [`peer`]: request/response correlation for the worker's own requests;
//! * [`lines`]: output line splitting from `set_worker_settings`;
//! * [`info`]: the `get_worker_info` answer; [`config`]: `worker.yaml`;
//! * [`state`]: running commands and shutdown requests across reconnects.

pub mod backoff;
pub mod config;
pub mod connection;
pub mod graceful;
pub mod handler;
pub mod heartbeat;
pub mod info;
pub mod lines;
pub mod peer;
pub mod state;
pub mod tls;
pub mod worker;
