//! taskotron-worker: the worker agent (`taskotron-worker`) and the formula runner (`runtask`).
//!
//! `runtask` is also exposed as a library module so the agent and the tests can parse and
//! validate formulas in-process.

pub mod runtask;

pub mod agent;
pub mod cli;
pub mod commands;
