//! taskotron-trigger binary: see `taskotron_trigger::cli`.

fn main() {
    std::process::exit(taskotron_trigger::cli::main());
}
