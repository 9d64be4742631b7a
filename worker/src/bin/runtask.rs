//! runtask: run a Taskotron formula (being built).
fn main() {}
