//! taskotron-common: the formats every component of the pipeline shares.
//!
//! No I/O policy lives here: the master, the worker (and its `runtask`) and the trigger parse and
//! emit the same task formulas, ResultYAML documents, Buildbot protocol messages and canonical JSON
//! through these modules, so the wire and file formats are defined exactly once.

pub mod arch;
pub mod formula;
pub mod item;
pub mod itemtype;
pub mod resultyaml;
pub mod template;

pub mod json_canon;
pub mod prometheus_text;
pub mod protocol;
pub mod pyrepr;
