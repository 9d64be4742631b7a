//! runtask: runs a Taskotron task formula (`runtask.yml`) on this machine.
//!
//! Flow (reference/taskotron.md §4.3): [`config`] is loaded, the artifacts dir
//! `<artifactsdir>/<uuid>/taskotron/` is created, the formula is parsed and validated
//! (`taskotron_common::formula`), `environment.rpm` is provisioned ([`provision`]), then
//! [`runner`] runs the actions in order: parameters are substituted
//! (`taskotron_common::template`), the [`directives`] registry dispatches each action, and an
//! `export` stores the return value as a variable for later actions.

pub mod config;
pub mod directives;
pub mod process;
pub mod provision;
pub mod python;
pub mod remote;
pub mod runner;
