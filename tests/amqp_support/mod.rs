//! A real RabbitMQ for the trigger's AMQP tests (Debian's `rabbitmq-server`, installed by
//! scripts/test-deps), started on free loopback ports with its data, logs, Erlang cookie and
//! its own epmd in a temp dir, and a publisher that uses the real fedora-messaging library
//! (tests/amqp_support/fm_publish.py in the test venv).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util;
pub use crate::util::pki::TestPki;

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// One broker node. Stopped (and its epmd killed) on drop.
pub struct RabbitMq {
    pub port: u16,
    /// The TLS listener's port, when started with [`RabbitMq::start_tls`].
    pub tls_port: Option<u16>,
    dir: PathBuf,
    dist_port: u16,
    epmd_port: u16,
    node: String,
    child: Option<Child>,
}

impl RabbitMq {
    /// Starts a node with its state under `dir` and waits until it accepts AMQP connections.
    pub fn start(dir: &Path) -> RabbitMq {
        RabbitMq::start_with(dir, None)
    }

    /// Also listens for `amqps://` with `tls` (its server certificate, requiring client
    /// certificates from the CA).
    pub fn start_tls(dir: &Path, tls: &TestPki) -> RabbitMq {
        RabbitMq::start_with(dir, Some(tls))
    }

    fn start_with(dir: &Path, tls: Option<&TestPki>) -> RabbitMq {
        assert!(
            Path::new(RABBITMQ_SERVER).exists(),
            "{RABBITMQ_SERVER} missing; run scripts/test-deps (make test does this)"
        );
        let dir = dir.join("rabbitmq");
        std::fs::create_dir_all(&dir).unwrap();
        // Guest may log in over loopback only by default, which is where we are; no plugins.
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        let mut conf = "log.console = false\n".to_string();
        let tls_port = tls.map(|pki| {
            let port = util::free_port();
            conf.push_str(&format!(
                "listeners.ssl.1 = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n",
                pki.ca.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            ));
            port
        });
        std::fs::write(dir.join("rabbitmq.conf"), conf).unwrap();
        let port = util::free_port();
        let mut mq = RabbitMq {
            port,
            tls_port,
            dist_port: util::free_port(),
            epmd_port: util::free_port(),
            node: format!("rabbit-test-{port}@localhost"),
            dir,
            child: None,
        };
        mq.boot();
        mq
    }

    fn boot(&mut self) {
        let d = &self.dir;
        let mut cmd = Command::new(RABBITMQ_SERVER);
        cmd.env("HOME", d)
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("server.out")).unwrap())
            .stderr(Stdio::inherit())
            // Its own process group, so stopping it reaches the Erlang VM too.
            .process_group(0);
        self.child = Some(cmd.spawn().expect("start rabbitmq-server"));
        let port = self.port;
        let log = d.join("server.out");
        util::wait_for(
            &format!("rabbitmq on port {port} (see {})", log.display()),
            Duration::from_secs(120),
            || util::port_open(port).then_some(()),
        );
        if let Some(tls_port) = self.tls_port {
            util::wait_for("rabbitmq's TLS listener", Duration::from_secs(60), || {
                util::port_open(tls_port).then_some(())
            });
        }
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2F`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2F", self.port)
    }

    /// Stops the node: SIGTERM (a clean shutdown that keeps durable queues and persistent
    /// messages), SIGKILL for the whole group if it takes too long.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id() as i32;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let exited = (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.try_wait().ok().flatten().is_some()
        });
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if !exited {
            let _ = child.wait();
        }
        let port = self.port;
        util::wait_for("rabbitmq port closed", Duration::from_secs(30), || {
            (!util::port_open(port)).then_some(())
        });
    }

    /// Stops and starts the node again with the same data and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// Messages ready in a queue, by `rabbitmqctl list_queues`.
    pub fn queue_depth(&self, queue: &str) -> Option<u64> {
        let out = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
            .env("HOME", &self.dir)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .args(["-n", &self.node, "list_queues", "-q", "name", "messages"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(queue))
                .then(|| parts.next()?.parse().ok())
                .flatten()
        })
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs tests/amqp_support/fm_publish.py with `actions` (see the script) and waits for it.
pub fn fm_publish(dir: &Path, url: &str, actions: &serde_json::Value) {
    let spec = dir.join(format!(
        "fm-spec-{}.json",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&spec, actions.to_string()).unwrap();
    let out = Command::new(util::venv_bin("python"))
        .arg(util::repo_root().join("tests/amqp_support/fm_publish.py"))
        .arg(url)
        .arg(&spec)
        .output()
        .expect("run fm_publish.py");
    assert!(
        out.status.success(),
        "fm_publish.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A trigger config section for the AMQP input; `queue` None: an exclusive server-named one.
pub fn amqp_section(url: &str, queue: Option<&str>) -> String {
    let mut s =
        format!("amqp:\n  url: \"{url}\"\n  reconnect_initial_ms: 100\n  reconnect_max_ms: 500\n");
    if let Some(q) = queue {
        s.push_str(&format!("  queue: {q}\n"));
    }
    s
}

/// A Koji build-complete body in today's form (koji-fedoramessaging-messages schema keys).
pub fn koji_body(i: usize) -> serde_json::Value {
    serde_json::json!({
        "attribute": "state", "build_id": i, "completion_time": "2023-06-09T07:35:14+00:00",
        "creation_time": "2023-06-09T07:16:27+00:00", "epoch": null, "instance": "primary",
        "name": format!("pkg{i}"), "new": 1, "old": 0, "owner": "x", "release": "1.fc40",
        "request": [], "task": null, "task_id": null,
        "url": format!("https://koji.fedoraproject.org/koji/buildinfo?buildID={i}"),
        "version": "1.0"
    })
}
