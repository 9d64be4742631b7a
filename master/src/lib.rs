//! taskotron-master as a library: the binary in main.rs and the end-to-end tests use these
//! modules.

pub mod mirror;
