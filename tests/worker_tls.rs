//! TLS on the worker port (`worker_tls`): our worker over `wss://` with the master's CA, a
//! stock buildbot-worker 4.3 over Twisted's `tls:` endpoint, both running a job to success; a
//! worker trusting another CA, a plain `ws://` worker, and (with `client_ca`) a worker without
//! a client certificate are refused, and the master goes on serving.

mod master_support;
mod util;

use std::time::Duration;

use master_support::{Env, Opts};
use util::pki::TestPki;

const T: Duration = Duration::from_secs(120);

fn tls_env(pki: &TestPki, client_ca: bool) -> Env {
    let mut extra = format!(
        "worker_tls:\n  cert: {}\n  key: {}\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    if client_ca {
        extra.push_str(&format!("  client_ca: {}\n", pki.ca.display()));
    }
    Env::new(Opts {
        workers: vec![("w1", "pw1"), ("w2", "pw2"), ("bad1", "pw"), ("bad2", "pw")],
        extra,
        ..Opts::default()
    })
}

fn arg(s: impl std::fmt::Display) -> String {
    s.to_string()
}

#[test]
fn our_worker_and_a_stock_worker_run_jobs_over_tls_and_wrong_trust_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let pki = TestPki::make(certs.path(), "pki");
    let other = TestPki::make(certs.path(), "other");
    let env = tls_env(&pki, false);

    let _ours = env.our_worker_with("w1", "pw1", &[arg("--tls-ca"), arg(pki.ca.display())]);
    // Twisted's tls: endpoint takes a directory of trusted CA certificates.
    let roots = certs.path().join("roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::copy(&pki.ca, roots.join("ca.pem")).unwrap();
    let conn = format!(
        "tls:host=127.0.0.1:port={}:trustRoots={}",
        env.worker_port,
        roots.display()
    );
    let _stock = env.stock_worker_with("w2", "pw2", &[arg("--connection-string"), conn]);
    // Refused: a worker that trusts another CA, and one speaking plain ws:// to the TLS port.
    let _wrong_ca = env.our_worker_with("bad1", "pw", &[arg("--tls-ca"), arg(other.ca.display())]);
    let _plain = env.our_worker("bad2", "pw");
    env.wait_workers(2);

    for (uuid, item) in [("tls-1", "foo-1-1.fc40"), ("tls-2", "bar-1-1.fc40")] {
        let (s, body) = env.post_change(uuid, item);
        assert_eq!(s, 200, "{body}");
    }
    let mut ran_on = vec![];
    for uuid in ["tls-1", "tls-2"] {
        let done = env.wait_done(uuid, T);
        assert_eq!(done["results"], 0, "{uuid}: {}", env.master_log());
        ran_on.push(
            done["properties"]["workername"][0]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    eprintln!("jobs ran on {ran_on:?}");
    let log = std::fs::read_to_string(env.root().join("tw-bad1.out")).unwrap_or_default();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the wrong-CA worker says why: {log}"
    );
    assert!(
        env.master_log().contains("TLS handshake failed"),
        "{}",
        env.master_log()
    );
    let h = env.get("/healthz");
    assert_eq!(h["workers_connected"], 2, "{h}");
}

#[test]
fn with_client_ca_a_worker_needs_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let pki = TestPki::make(certs.path(), "pki");
    let env = tls_env(&pki, true);
    let _with_cert = env.our_worker_with(
        "w1",
        "pw1",
        &[
            arg("--tls-ca"),
            arg(pki.ca.display()),
            arg("--tls-cert"),
            arg(pki.client_cert.display()),
            arg("--tls-key"),
            arg(pki.client_key.display()),
        ],
    );
    let _without = env.our_worker_with("bad1", "pw", &[arg("--tls-ca"), arg(pki.ca.display())]);
    env.wait_workers(1);
    let (s, body) = env.post_change("mtls-1", "foo-1-1.fc40");
    assert_eq!(s, 200, "{body}");
    let done = env.wait_done("mtls-1", T);
    assert_eq!(done["results"], 0);
    assert_eq!(done["properties"]["workername"][0], "w1");
    util::wait_for("the refused handshake logged", T, || {
        env.master_log()
            .contains("TLS handshake failed")
            .then_some(())
    });
    assert_eq!(env.get("/healthz")["workers_connected"], 1);
}
