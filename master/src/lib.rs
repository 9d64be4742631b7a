//! taskotron-master as a library: the binary in main.rs and the end-to-end tests use these
//! modules.
//!
//! Layout: [`config`] (master.yaml), [`db`] (SQLite, Buildbot's entity model), [`submit`] (job →
//! build request), [`scheduler`] (queue → workers), [`workers`] (msgpack WebSocket port),
//! [`build`] (the step sequence of one job), [`http`] (change hook, REST API v2, artifacts),
//! [`mirror`] (task repositories), [`server`] (process lifecycle), [`cli`] (admin commands).

pub mod admin;
pub mod build;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod janitor;
pub mod metrics;
pub mod mirror;
pub mod scheduler;
pub mod server;
pub mod state;
pub mod submit;
pub mod workers;
