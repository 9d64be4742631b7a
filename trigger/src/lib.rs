//! taskotron-trigger: fedmsg and fedora-messaging in, jobs out.
//!
//! The trigger subscribes to the fedmsg bus ([`bus`]) and/or consumes fedora-messaging from
//! RabbitMQ ([`amqp`], converted to the same envelopes), parses and optionally verifies each
//! envelope ([`fedmsg`]), turns it into Taskotron's flat *message data* with one consumer per
//! topic family ([`jobtriggers`]), evaluates Taskotron's own `trigger_rules.yml` against it
//! ([`rules`], [`discover`]) and hands the resulting jobs to a durable outbox that submits them
//! to a Buildbot-compatible master's change hook ([`submit`]). [`pipeline`] glues the steps
//! together so that `run`, `check-rules` and `replay` behave identically.
//!
//! In `run`, receiving and processing are decoupled: the [`intake`] stores every valid message
//! in a durable [`inbox`] as it arrives, and the [`process`]or turns inbox messages into jobs,
//! running `discover` (git) on a bounded pool with a timeout, so a slow git server never stops
//! the bus from being read.

pub mod amqp;
pub mod bus;
pub mod cli;
pub mod config;
pub mod discover;
pub mod fedmsg;
pub mod fuse;
pub mod health;
pub mod inbox;
pub mod intake;
pub mod jobtriggers;
pub mod metrics;
pub mod pipeline;
pub mod process;
pub mod rules;
pub mod submit;
