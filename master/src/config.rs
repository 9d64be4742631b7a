//! The master's YAML configuration (`/etc/taskotron/master.yaml` by default).
//!
//! Every key has a default that makes a single-host install work; `docs/master.md` documents
//! each of them. Unknown keys are refused so a typo does not silently fall back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::mirror::MirrorConfig;

/// Default step timeout for `runtask` (Taskotron's buildmaster used 20 minutes).
pub const DEFAULT_TASK_TIMEOUT: u64 = 20 * 60;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("config {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, artifacts, logs and mirrors.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Interface the worker (msgpack WebSocket) port binds to.
    #[serde(default = "default_worker_host")]
    pub worker_host: String,
    /// Port of the worker protocol listener (Buildbot's default is 9989; 0 = pick a free one).
    #[serde(default = "default_worker_port")]
    pub worker_port: u16,
    /// TLS on the worker port (`wss://`); plain WebSocket when absent.
    #[serde(default)]
    pub worker_tls: Option<WorkerTlsConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub workers: Vec<WorkerConfig>,
    #[serde(default)]
    pub tasks: Vec<TaskConfig>,
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub build: BuildConfig,
    #[serde(default)]
    pub runtask: RuntaskConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub mirror: MirrorConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP listener (change hook, REST API, artifacts, mirrors).
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_http_listen(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub name: String,
    /// Plain password (Buildbot-style configs).
    #[serde(default)]
    pub password: Option<String>,
    /// `sha256$<salt>$<hex>` as written by `taskotron-master worker add`.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Arch used when the worker has no `info/arch` file.
    #[serde(default = "default_arch")]
    pub arch: String,
    /// How many builds this worker runs at once.
    #[serde(default = "one")]
    pub max_builds: u32,
}

impl WorkerConfig {
    /// Checks a password against the plain or hashed one.
    pub fn check_password(&self, given: &str) -> bool {
        if let Some(h) = &self.password_hash {
            if verify_hash(h, given) {
                return true;
            }
        }
        match &self.password {
            Some(p) => constant_eq(p.as_bytes(), given.as_bytes()),
            None => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub name: String,
    /// Git URL or local path of the task repository.
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Timeout (seconds without output) of the runtask step for this task.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Accept items that do not match their item type's grammar (taskotron_common::item).
    /// Only for trusted local use: formulas put items into shell strings.
    #[serde(default)]
    pub trust_items: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerTlsConfig {
    /// Server certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Workers must present a client certificate issued by this CA (PEM) when set.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Seconds between `keepalive` requests to each worker.
    #[serde(default = "five")]
    pub interval: f64,
    /// Seconds without a keepalive reply before a worker is declared lost.
    #[serde(default = "fifteen")]
    pub timeout: f64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: 5.0,
            timeout: 15.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts a request gets (worker loss / master restart) before it ends as EXCEPTION.
    #[serde(default = "three")]
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 3 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens accepted on write endpoints.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Accept `/change_hook` without a token (Buildbot's default behaviour).
    #[serde(default)]
    pub open_change_hook: bool,
    /// Accept the REST control calls (force/stop/cancel/worker control) without a token.
    #[serde(default)]
    pub open_control: bool,
    /// Users accepted with HTTP Basic auth on write endpoints (what Buildbot's
    /// `change_hook_auth` / `www.auth` clients send).
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    #[serde(default)]
    pub password: Option<String>,
    /// `sha256$<salt>$<hex>` (same format as workers' `password_hash`).
    #[serde(default)]
    pub password_hash: Option<String>,
}

impl AuthConfig {
    /// True if `name`/`password` match one of `users`.
    pub fn user_ok(&self, name: &str, password: &str) -> bool {
        self.users.iter().any(|u| {
            u.name == name
                && (u
                    .password_hash
                    .as_deref()
                    .is_some_and(|h| verify_hash(h, password))
                    || u.password
                        .as_deref()
                        .is_some_and(|p| constant_eq(p.as_bytes(), password.as_bytes())))
        })
    }

    pub fn token_ok(&self, token: &str) -> bool {
        self.tokens
            .iter()
            .any(|t| constant_eq(t.as_bytes(), token.as_bytes()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Collapse a new request into an identical pending one (task, item, item_type, arch).
    #[serde(default)]
    pub collapse: bool,
    /// Change-hook projects that create builds (Taskotron used `rpmcheck`).
    #[serde(default = "default_projects")]
    pub projects: Vec<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            collapse: false,
            projects: default_projects(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// Default runtask step timeout in seconds (per-task `timeout` overrides it).
    #[serde(default = "default_task_timeout")]
    pub timeout: u64,
    /// Largest artifacts upload accepted from a worker, in bytes.
    #[serde(default = "default_artifacts_max")]
    pub max_artifacts_bytes: u64,
    /// Seconds SIGTERM waits for running builds before the master exits anyway.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: u64,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            timeout: DEFAULT_TASK_TIMEOUT,
            max_artifacts_bytes: default_artifacts_max(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

/// How long finished jobs keep their step logs and artifacts (the janitor, `janitor.rs`).
/// Like Buildbot's `JanitorConfigurator`, nothing is deleted unless configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after a build ends before its step logs' content is deleted (0 = keep forever).
    #[serde(default)]
    pub logs_days: f64,
    /// Days after a job ends before `<data_dir>/artifacts/<uuid>/` is deleted (0 = keep forever).
    #[serde(default)]
    pub artifacts_days: f64,
    /// Hours between two janitor passes (the first runs a minute after start).
    #[serde(default = "default_janitor_hours")]
    pub interval_hours: f64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            logs_days: 0.0,
            artifacts_days: 0.0,
            interval_hours: default_janitor_hours(),
        }
    }
}

impl RetentionConfig {
    pub fn enabled(&self) -> bool {
        self.logs_days > 0.0 || self.artifacts_days > 0.0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntaskConfig {
    /// Program (or argv prefix) run on the worker; looked up in the worker's PATH.
    #[serde(default = "default_runtask_command")]
    pub command: CommandSpec,
    /// Extra environment for the runtask shell step (e.g. TASKOTRON_CONFIG).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Default for RuntaskConfig {
    fn default() -> Self {
        RuntaskConfig {
            command: default_runtask_command(),
            env: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    Program(String),
    Argv(Vec<String>),
}

impl CommandSpec {
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandSpec::Program(p) => vec![p.clone()],
            CommandSpec::Argv(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest WebSocket message accepted from a worker, in bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Largest HTTP request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_frame_bytes: default_max_frame(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/taskotron-master")
}
fn default_worker_host() -> String {
    "0.0.0.0".into()
}
fn default_worker_port() -> u16 {
    9989
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8010))
}
fn default_arch() -> String {
    "x86_64".into()
}
fn default_branch() -> String {
    "master".into()
}
fn default_projects() -> Vec<String> {
    vec!["rpmcheck".into()]
}
fn default_task_timeout() -> u64 {
    DEFAULT_TASK_TIMEOUT
}
fn default_artifacts_max() -> u64 {
    1 << 30
}
fn default_shutdown_grace() -> u64 {
    60
}
fn default_runtask_command() -> CommandSpec {
    CommandSpec::Program("runtask".into())
}
fn default_janitor_hours() -> f64 {
    24.0
}
fn default_max_frame() -> usize {
    16 << 20
}
fn default_max_body() -> usize {
    1 << 20
}
fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn five() -> f64 {
    5.0
}
fn fifteen() -> f64 {
    15.0
}

impl Config {
    /// Reads and validates the config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            serde_yaml_ng::from_str("{}")
        } else {
            serde_yaml_ng::from_str(text)
        }
        .map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        cfg.validate().map_err(|msg| ConfigError::Invalid {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(tls) = &self.worker_tls {
            for (field, p) in [
                ("cert", Some(&tls.cert)),
                ("key", Some(&tls.key)),
                ("client_ca", tls.client_ca.as_ref()),
            ] {
                if let Some(p) = p {
                    if !p.is_file() {
                        return Err(format!("worker_tls.{field}: {}: no such file", p.display()));
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, w) in self.workers.iter().enumerate() {
            if w.name.is_empty() || w.name.contains(':') {
                return Err(format!(
                    "workers[{i}].name: expected a non-empty name without ':'"
                ));
            }
            if !seen.insert(&w.name) {
                return Err(format!("workers[{i}].name: duplicate worker {:?}", w.name));
            }
            if w.password.is_none() && w.password_hash.is_none() {
                return Err(format!(
                    "workers[{i}] ({}): expected `password` or `password_hash`",
                    w.name
                ));
            }
            if let Some(h) = &w.password_hash {
                if parse_hash(h).is_none() {
                    return Err(format!(
                        "workers[{i}].password_hash: expected `sha256$<salt>$<64 hex digits>`"
                    ));
                }
            }
            if w.max_builds == 0 {
                return Err(format!("workers[{i}].max_builds: expected at least 1"));
            }
        }
        let mut tasks = std::collections::HashSet::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if t.name.is_empty() || t.name.contains('/') || t.name.starts_with('.') {
                return Err(format!(
                    "tasks[{i}].name: expected a plain name (no '/', no leading '.')"
                ));
            }
            if !tasks.insert(&t.name) {
                return Err(format!("tasks[{i}].name: duplicate task {:?}", t.name));
            }
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.heartbeat.interval) || !positive(self.heartbeat.timeout) {
            return Err(
                "heartbeat.interval and heartbeat.timeout: expected positive seconds".into(),
            );
        }
        for (i, u) in self.auth.users.iter().enumerate() {
            if u.password.is_none() && u.password_hash.is_none() {
                return Err(format!(
                    "auth.users[{i}] ({}): expected `password` or `password_hash`",
                    u.name
                ));
            }
            if u.password_hash
                .as_deref()
                .is_some_and(|h| parse_hash(h).is_none())
            {
                return Err(format!(
                    "auth.users[{i}].password_hash: expected `sha256$<salt>$<64 hex digits>`"
                ));
            }
        }
        let r = &self.retention;
        if ![r.logs_days, r.artifacts_days]
            .iter()
            .all(|d| d.is_finite() && *d >= 0.0)
        {
            return Err(
                "retention.logs_days and retention.artifacts_days: expected days >= 0 (0 keeps forever)"
                    .into(),
            );
        }
        if !positive(r.interval_hours) {
            return Err("retention.interval_hours: expected positive hours".into());
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts: expected at least 1".into());
        }
        if self.runtask.command.argv().is_empty() {
            return Err("runtask.command: expected a program or a non-empty list".into());
        }
        Ok(())
    }

    pub fn worker(&self, name: &str) -> Option<&WorkerConfig> {
        self.workers.iter().find(|w| w.name == name)
    }

    pub fn task(&self, name: &str) -> Option<&TaskConfig> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("master.sqlite")
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}

/// `sha256$<salt>$<hex(sha256(salt + password))>`.
pub fn hash_password(password: &str) -> String {
    use rand::Rng;
    let salt: [u8; 12] = rand::rng().random();
    let salt = hex::encode(salt);
    format!(
        "sha256${salt}${}",
        hex::encode(Sha256::digest(format!("{salt}{password}")))
    )
}

fn parse_hash(h: &str) -> Option<(&str, Vec<u8>)> {
    let mut parts = h.splitn(3, '$');
    let (algo, salt, digest) = (parts.next()?, parts.next()?, parts.next()?);
    if algo != "sha256" {
        return None;
    }
    let digest = hex::decode(digest).ok()?;
    (digest.len() == 32).then_some((salt, digest))
}

fn verify_hash(h: &str, password: &str) -> bool {
    match parse_hash(h) {
        Some((salt, digest)) => constant_eq(&Sha256::digest(format!("{salt}{password}")), &digest),
        None => false,
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random password for `worker add` (24 url-safe characters).
pub fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_defaults() {
        let c = Config::parse(Path::new("x.yaml"), "").unwrap();
        assert_eq!(c.worker_port, 9989);
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8010");
        assert_eq!(c.heartbeat.timeout, 15.0);
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.build.timeout, 1200);
    }

    #[test]
    fn hashed_and_plain_passwords() {
        let h = hash_password("s3cret");
        let text = format!(
            "workers:\n - {{name: a, password_hash: '{h}'}}\n - {{name: b, password: pw, arch: i386}}\n"
        );
        let c = Config::parse(Path::new("x.yaml"), &text).unwrap();
        assert!(c.worker("a").unwrap().check_password("s3cret"));
        assert!(!c.worker("a").unwrap().check_password("s3cret2"));
        assert!(c.worker("b").unwrap().check_password("pw"));
        assert_eq!(c.worker("b").unwrap().arch, "i386");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse(Path::new("m.yaml"), "workers: [{name: a}]").unwrap_err();
        assert!(e.to_string().contains("workers[0]"), "{e}");
        let e = Config::parse(Path::new("m.yaml"), "worker_prot: 1").unwrap_err();
        assert!(e.to_string().contains("m.yaml"), "{e}");
        assert!(e.to_string().contains("worker_prot"), "{e}");
    }
}
