//! `BASEDIR/worker.yaml`: where the master is, who we are, and the connection tunables.
//! Written by `taskotron-worker create-worker`, read by `taskotron-worker start`.

use std::path::Path;

use serde::{Deserialize, Serialize};

fn default_path() -> String {
    "/".into()
}
fn default_keepalive() -> f64 {
    10.0
}
fn default_ping_timeout() -> f64 {
    10.0
}
fn default_maxdelay() -> f64 {
    30.0
}
fn default_graceful_timeout() -> f64 {
    5.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// `HOST:PORT` of the master's worker port (msgpack over WebSocket).
    pub master: String,
    /// URL path of the WebSocket (Buildbot ignores it; `/` by default).
    #[serde(default = "default_path")]
    pub path: String,
    /// Worker name and password, as configured on the master.
    pub name: String,
    pub password: String,
    /// Seconds between WebSocket pings to the master.
    #[serde(default = "default_keepalive")]
    pub keepalive: f64,
    /// Seconds without any frame from the master, after a ping was due, before the master is
    /// considered gone and we reconnect.
    #[serde(default = "default_ping_timeout")]
    pub ping_timeout: f64,
    /// Cap of the reconnect backoff, seconds.
    #[serde(default = "default_maxdelay")]
    pub maxdelay: f64,
    /// Seconds to wait for the master's answer to `graceful_shutdown` (sent on SIGTERM) before
    /// falling back to "finish the running commands, then exit".
    #[serde(default = "default_graceful_timeout")]
    pub graceful_timeout: f64,
    /// CPU count to report (default: what the OS says).
    #[serde(default)]
    pub numcpus: Option<u64>,
    /// Ask the master to delete builder dirs it no longer knows.
    #[serde(default)]
    pub delete_leftover_dirs: bool,
    /// Connect with TLS (`wss://`), for a master with `worker_tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// `tls:` in worker.yaml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) (PEM) the master's certificate must chain to; the public web PKI
    /// roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a master with `worker_tls.client_ca`; needs `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<std::path::PathBuf>,
}

impl WorkerConfig {
    pub fn new(master: String, name: String, password: String) -> WorkerConfig {
        WorkerConfig {
            master,
            path: default_path(),
            name,
            password,
            keepalive: default_keepalive(),
            ping_timeout: default_ping_timeout(),
            maxdelay: default_maxdelay(),
            graceful_timeout: default_graceful_timeout(),
            numcpus: None,
            delete_leftover_dirs: false,
            tls: None,
        }
    }

    /// Reads and checks `worker.yaml`; errors name the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<WorkerConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let cfg: WorkerConfig = serde_yaml_ng::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        cfg.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Field-level validation.
    pub fn check(&self) -> Result<(), String> {
        let (host, port) = self
            .master
            .rsplit_once(':')
            .ok_or_else(|| format!("master: expected HOST:PORT, got {:?}", self.master))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!(
                "master: expected HOST:PORT with a numeric port, got {:?}",
                self.master
            ));
        }
        if self.name.is_empty() || self.name.contains(':') {
            return Err("name: must be non-empty and contain no ':'".into());
        }
        for (k, v) in [
            ("keepalive", self.keepalive),
            ("ping_timeout", self.ping_timeout),
            ("maxdelay", self.maxdelay),
            ("graceful_timeout", self.graceful_timeout),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "{k}: expected a positive number of seconds, got {v}"
                ));
            }
        }
        if !self.path.starts_with('/') {
            return Err(format!("path: must start with '/', got {:?}", self.path));
        }
        if let Some(tls) = &self.tls {
            if tls.cert.is_some() != tls.key.is_some() {
                return Err("tls: cert and key go together".into());
            }
            for (field, p) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                if let Some(p) = p {
                    if !p.is_file() {
                        return Err(format!("tls.{field}: {}: no such file", p.display()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The WebSocket URL to dial.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.master, self.path)
    }
}
