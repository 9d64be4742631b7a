//! The trigger's YAML configuration file (`/etc/taskotron/trigger.yaml`).
//!
//! Every key has a default that suits a single-host install; see docs/trigger.md for the
//! reference. Relative paths are resolved against the config file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the config is wrong, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: {field}: {reason}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// fedmsg endpoints to connect a SUB socket to (`tcp://host:port`).
    pub endpoints: Vec<String>,
    /// Endpoints to bind a SUB socket on, for active publishers (like fedmsg-relay's inbound).
    pub bind_endpoints: Vec<String>,
    /// `org.fedoraproject`; topics are `<topic_prefix>.<environment>.<category>...`.
    pub topic_prefix: String,
    /// `prod`, `stg` or `dev`.
    pub environment: String,
    /// Pagure publishes under its own prefix.
    pub pagure_topic_prefix: String,
    /// Largest accepted message body in bytes; bigger ones are dropped with a warning.
    pub max_message_bytes: usize,
    pub master: MasterConfig,
    /// The `trigger_rules.yml` template.
    pub rules: PathBuf,
    /// Arches a job runs on when a reaction has no `arches`.
    pub valid_arches: Vec<String>,
    /// Seconds to collect repeated KojiTagChanged messages for one tag before acting once.
    pub fuse_delay: f64,
    /// JSON list (or pkgdb `{"pkgs": {...}}` answer) of critical-path package names.
    pub critpath_file: Option<PathBuf>,
    /// Outbox and seen-message database, fuse state.
    pub state_dir: PathBuf,
    /// Bare clones used by `discover`.
    pub git_cache_dir: PathBuf,
    /// Seconds during which a cached discover repo is not fetched again.
    pub discover_refresh_secs: u64,
    /// How many messages may run `discover` (git) at the same time.
    pub discover_concurrency: usize,
    /// Seconds one `discover` may take; git still running then is killed and the discover
    /// counts as failed.
    pub discover_timeout_secs: u64,
    /// Messages received but not yet processed that are kept; beyond it new messages are
    /// dropped with an error line (and counted).
    pub inbox_capacity: usize,
    /// Append accepted jobs to this CSV file (like Taskotron's jobs.csv).
    pub job_log: Option<PathBuf>,
    /// How many message ids are remembered for de-duplication.
    pub dedupe_capacity: usize,
    /// Base URLs used to build item strings.
    pub pagure_url: String,
    pub signatures: SignatureConfig,
    /// Metrics and health listener (`http: {listen: 127.0.0.1:8011}`); none when absent.
    pub http: Option<crate::health::HttpConfig>,
    /// fedora-messaging (AMQP) input; none when absent. Either or both inputs may be used.
    pub amqp: Option<crate::amqp::AmqpConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    /// Master base URL; jobs are POSTed to `<url>/change_hook/base`.
    pub url: String,
    /// Full change hook URL, if it is not `<url>/change_hook/base`.
    pub change_hook_url: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// HTTP basic credentials (Buildbot's `change_hook_auth`).
    pub username: Option<String>,
    pub password: Option<String>,
    pub project: String,
    pub timeout_secs: f64,
    /// Retry backoff while the master is unreachable or failing (milliseconds).
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignatureConfig {
    /// Drop messages whose x509 signature does not verify.
    pub validate: bool,
    /// CA certificate (PEM) the signer's certificate must chain to. Without it only the
    /// signature itself is checked (with the certificate embedded in the message).
    pub ca_cert: Option<PathBuf>,
    /// CRL (PEM) from that CA.
    pub crl: Option<PathBuf>,
    /// topic -> certificate CNs allowed to publish it.
    pub routing_policy: BTreeMap<String, Vec<String>>,
    /// Reject topics that are not in `routing_policy`.
    pub routing_nitpicky: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: vec![],
            bind_endpoints: vec![],
            topic_prefix: "org.fedoraproject".into(),
            environment: "prod".into(),
            pagure_topic_prefix: "io.pagure".into(),
            max_message_bytes: 1 << 20,
            master: MasterConfig::default(),
            rules: PathBuf::from("/etc/taskotron/trigger_rules.yml"),
            valid_arches: vec!["x86_64".into()],
            fuse_delay: 900.0,
            critpath_file: None,
            state_dir: PathBuf::from("/var/lib/taskotron-trigger"),
            git_cache_dir: PathBuf::from("/var/lib/taskotron-trigger/cache"),
            discover_refresh_secs: 60,
            discover_concurrency: 4,
            discover_timeout_secs: 120,
            inbox_capacity: 100_000,
            job_log: None,
            dedupe_capacity: 100_000,
            pagure_url: "https://pagure.io".into(),
            signatures: SignatureConfig::default(),
            http: None,
            amqp: None,
        }
    }
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            url: "http://127.0.0.1:8010".into(),
            change_hook_url: None,
            token: None,
            username: None,
            password: None,
            project: "rpmcheck".into(),
            timeout_secs: 30.0,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
        }
    }
}

impl MasterConfig {
    /// The URL jobs are POSTed to.
    pub fn hook_url(&self) -> String {
        self.change_hook_url
            .clone()
            .unwrap_or_else(|| format!("{}/change_hook/base", self.url.trim_end_matches('/')))
    }
}

impl Config {
    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: Config =
            serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.check(path)?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.rules);
        fix(&mut self.state_dir);
        fix(&mut self.git_cache_dir);
        for p in [
            &mut self.critpath_file,
            &mut self.job_log,
            &mut self.signatures.ca_cert,
            &mut self.signatures.crl,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        if let Some(amqp) = &mut self.amqp {
            amqp.resolve_paths(base);
        }
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            reason: reason.to_string(),
        };
        if self.endpoints.is_empty() && self.bind_endpoints.is_empty() && self.amqp.is_none() {
            return Err(bad(
                "endpoints",
                "expected at least one input: endpoints (or bind_endpoints), e.g. tcp://127.0.0.1:9940, or an amqp: section",
            ));
        }
        if let Some(amqp) = &self.amqp {
            amqp.check()
                .map_err(|(field, reason)| bad(field, &reason))?;
        }
        for e in self.endpoints.iter().chain(&self.bind_endpoints) {
            if !e.starts_with("tcp://") {
                return Err(bad("endpoints", &format!("{e:?} is not a tcp:// endpoint")));
            }
        }
        if self.valid_arches.is_empty() {
            return Err(bad("valid_arches", "expected a non-empty list of arches"));
        }
        if self.fuse_delay.is_nan() || self.fuse_delay < 0.0 {
            return Err(bad("fuse_delay", "expected a number of seconds >= 0"));
        }
        if self.discover_concurrency == 0 {
            return Err(bad("discover_concurrency", "expected a number >= 1"));
        }
        if self.discover_timeout_secs == 0 {
            return Err(bad(
                "discover_timeout_secs",
                "expected a number of seconds >= 1",
            ));
        }
        if self.inbox_capacity == 0 {
            return Err(bad("inbox_capacity", "expected a number of messages >= 1"));
        }
        if !self.master.url.starts_with("http://") && !self.master.url.starts_with("https://") {
            return Err(bad("master.url", "expected an http:// or https:// URL"));
        }
        if self.master.password.is_some() && self.master.username.is_none() {
            return Err(bad("master.password", "set master.username too"));
        }
        if self.master.retry_initial_ms == 0
            || self.master.retry_max_ms < self.master.retry_initial_ms
        {
            return Err(bad(
                "master.retry_initial_ms",
                "expected 0 < retry_initial_ms <= retry_max_ms",
            ));
        }
        if self.signatures.crl.is_some() && self.signatures.ca_cert.is_none() {
            return Err(bad("signatures.crl", "a CRL needs signatures.ca_cert"));
        }
        Ok(())
    }

    /// The topic prefix for one fedmsg category, e.g. `org.fedoraproject.prod.buildsys.`.
    pub fn topic(&self, suffix: &str) -> String {
        format!("{}.{}.{}", self.topic_prefix, self.environment, suffix)
    }

    /// Loads the critical-path package list (empty when not configured).
    pub fn load_critpath(&self) -> anyhow::Result<Vec<String>> {
        let Some(path) = &self.critpath_file else {
            return Ok(vec![]);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read critpath file: {e}", path.display()))?;
        parse_critpath(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// Accepts a JSON list of names, pkgdb's `{"pkgs": {"<branch>": [names]}}` answer (all
/// branches merged), or one name per line.
pub fn parse_critpath(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("critpath JSON: {e}"))?;
        let mut out = vec![];
        let mut push_list = |l: &serde_json::Value| -> Result<(), String> {
            for x in l.as_array().ok_or("critpath: expected a list of names")? {
                out.push(
                    x.as_str()
                        .ok_or("critpath: expected names (strings)")?
                        .to_string(),
                );
            }
            Ok(())
        };
        match &v {
            serde_json::Value::Array(_) => push_list(&v)?,
            serde_json::Value::Object(m) => {
                let pkgs = m.get("pkgs").ok_or("critpath: expected key \"pkgs\"")?;
                for l in pkgs
                    .as_object()
                    .ok_or("critpath: \"pkgs\" must map branch -> list")?
                    .values()
                {
                    push_list(l)?;
                }
            }
            _ => unreachable!(),
        }
        out.sort();
        out.dedup();
        Ok(out)
    } else {
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }
}
