//! Overhead of runtask (ignored by default; it prints numbers and asserts no times):
//!
//!   cargo build --release --workspace --bins
//!   cargo test --release -p taskotron-e2e --test runtask_bench -- --ignored --nocapture
//!
//! A formula of five trivial shell actions run by `runtask` versus the same five commands
//! run by `sh`, median of repeated runs of each, and their ratio.

mod runtask_support;
mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use runtask_support::TaskDir;

const RUNS: usize = 31;
const COMMANDS: [&str; 5] = ["true", "echo hello", "test -d /", "printf x", "echo done"];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(mut cmd: impl FnMut() -> Command) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = cmd().output().unwrap();
        samples.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    median(samples)
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn runtask_overhead_vs_sh_on_five_shell_actions() {
    let t = TaskDir::new();
    let mut formula = String::from("name: bench\ndesc: d\nmaintainer: m\nactions:\n");
    for (i, c) in COMMANDS.iter().enumerate() {
        formula.push_str(&format!("  - name: step {i}\n    shell:\n      - '{c}'\n"));
    }
    t.write("runtask.yml", &formula);
    let script = t.write("five.sh", &format!("{}\n", COMMANDS.join("\n")));
    // sh runs true/echo/test/printf as builtins; runtask starts processes. So also time sh
    // running the same commands as external programs.
    let external: Vec<String> = COMMANDS
        .iter()
        .map(|c| {
            let (prog, rest) = c.split_once(' ').unwrap_or((c, ""));
            format!("/usr/bin/{prog} {rest}")
        })
        .collect();
    let script_ext = t.write("five-ext.sh", &format!("{}\n", external.join("\n")));
    let runtask = util::bin("runtask");
    let mut n = 0;
    let rt = time(|| {
        n += 1;
        let mut c = Command::new(&runtask);
        c.arg("--config")
            .arg(t.config_path())
            .args(["--uuid", &format!("b{n}"), "runtask.yml"])
            .current_dir(t.task());
        c
    });
    let sh = time(|| {
        let mut c = Command::new("sh");
        c.arg(&script).current_dir(t.task());
        c
    });
    let sh_ext = time(|| {
        let mut c = Command::new("sh");
        c.arg(&script_ext).current_dir(t.task());
        c
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("runtask: {} ({RUNS} runs each, medians)", runtask.display());
    println!(
        "runtask {:.2} ms; sh (builtins) {:.2} ms -> ratio {:.1}x; sh (external programs) {:.2} ms -> ratio {:.1}x",
        ms(rt),
        ms(sh),
        ms(rt) / ms(sh),
        ms(sh_ext),
        ms(rt) / ms(sh_ext)
    );
}
