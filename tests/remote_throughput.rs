//! Measurement (not a pass/fail test; ignored by default): download throughput of the koji
//! directive for a build of 40 RPMs of 2 MiB each from the loopback stand-in, against
//! sequential `curl` of the same files. Run with
//!
//! ```text
//! cargo nextest run -p taskotron-e2e --test remote_throughput --run-ignored ignored-only --no-capture
//! ```
//!
//! It prints the median of three runs for each method, with no added latency and with 20 ms of
//! latency per file response (a far-away mirror).

mod remote_support;
mod util;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use remote_support::rpms::Spec;
use remote_support::server::{Data, Knobs, Server};
use remote_support::{add_build, custom_task, run_env, runtask};

const FILES: usize = 40;
const SIZE: usize = 2 * 1024 * 1024;

const FORMULA: &str = r#"
name: bulk-download
desc: download one big build
maintainer: tester
input:
  args: [koji_build]
actions:
  - name: download rpms from koji
    koji:
      action: download
      koji_build: ${koji_build}
      arch: noarch
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64()
}

#[test]
#[ignore = "measurement; run explicitly (see the file's doc comment)"]
fn koji_download_throughput_vs_sequential_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("bulk", "1", "1.fc27").sub("bulk", &[], SIZE);
    for i in 1..FILES {
        spec = spec.sub(&format!("bulk{i:02}"), &[], SIZE);
    }
    spec.noarch = true;
    let files = spec.build(&tmp.path().join("rpmbuild"), &[None]);
    let rpms: Vec<_> = files
        .into_iter()
        .filter(|f| !f.to_string_lossy().ends_with(".src.rpm"))
        .collect();
    assert_eq!(rpms.len(), FILES);
    let total: u64 = rpms.iter().map(|f| f.metadata().unwrap().len()).sum();
    let mut data = Data::default();
    data.hub.checksums = true;
    add_build(&mut data, "bulk", "1", "1.fc27", &["f27"], &rpms);
    let srv = Server::start(data);
    let urls: Vec<String> = rpms
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy();
            format!("{}/bulk/1/1.fc27/noarch/{name}", srv.pkg_url())
        })
        .collect();

    println!(
        "\n{FILES} RPMs, {:.1} MiB total, loopback stand-in, median of 3 runs",
        total as f64 / 1_048_576.0
    );
    for latency in [Duration::ZERO, Duration::from_millis(20)] {
        srv.set_knobs(Knobs {
            file_latency: latency,
            ..Knobs::default()
        });
        let mut koji = Vec::new();
        let mut curl_each = Vec::new();
        let mut curl_one = Vec::new();
        for round in 0..3 {
            // runtask with a fresh (empty) download cache each time.
            let dir = tmp
                .path()
                .join(format!("run-{}-{round}", latency.as_millis()));
            let env = run_env(&dir, &srv.base(), "");
            let formula = custom_task(&dir, "bulk", FORMULA);
            let t = Instant::now();
            let run = runtask(
                &util::bin("runtask"),
                &env,
                &formula,
                "bulk-1-1.fc27",
                "koji_build",
                "noarch",
                None,
            );
            koji.push(t.elapsed());
            assert_eq!(run.code(), 0, "{}", run.all());

            // One curl process per file, one after the other (a shell loop).
            let out = dir.join("curl-each");
            std::fs::create_dir_all(&out).unwrap();
            let t = Instant::now();
            for (i, url) in urls.iter().enumerate() {
                curl(&[url.as_str()], &out, i);
            }
            curl_each.push(t.elapsed());

            // One curl process fetching all files in sequence over one connection.
            let out = dir.join("curl-one");
            std::fs::create_dir_all(&out).unwrap();
            let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
            let t = Instant::now();
            curl(&refs, &out, 0);
            curl_one.push(t.elapsed());
            assert_eq!(dir_size(&out), total);
        }
        println!("per-file latency {} ms:", latency.as_millis());
        for (what, times) in [
            ("runtask koji directive (whole run, parallel)", koji),
            ("curl, one process per file, sequential", curl_each),
            ("curl, one process, all files sequential", curl_one),
        ] {
            let m = median(times);
            println!(
                "  {what:<48} {:>8.3} s  {:>8.1} MiB/s",
                m.as_secs_f64(),
                mb_per_s(total, m)
            );
        }
    }
}

fn curl(urls: &[&str], out: &Path, first: usize) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sSf"]);
    for (i, u) in urls.iter().enumerate() {
        cmd.arg("-o")
            .arg(out.join(format!("{}.rpm", first + i)))
            .arg(u);
    }
    let st = cmd.status().expect("run curl");
    assert!(st.success(), "curl failed");
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
