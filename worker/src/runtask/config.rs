//! The runtask configuration file (YAML; default `/etc/taskotron/taskotron.yaml`).
//!
//! Which file: `--config FILE` if given (it must exist), else `$TASKOTRON_CONFIG` if set (it
//! must exist), else the default path; a missing default file means built-in defaults, which
//! are Fedora-like values for a development machine. Unknown keys are an error naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the config is read from when neither `--config` nor `$TASKOTRON_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/taskotron/taskotron.yaml";

/// Environment variable naming the config file when `--config` is not given.
pub const ENV_VAR: &str = "TASKOTRON_CONFIG";

/// Every setting of runtask and its directives. See docs/runtask.md for the reference.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Root of the artifacts dirs; one run writes `<artifactsdir>/<uuid>/`.
    pub artifactsdir: PathBuf,
    /// Parent of the per-run scratch dir (`${workdir}`).
    pub tmpdir: PathBuf,
    /// Whether the `resultsdb` directive posts results (false: only logs them).
    pub report_to_resultsdb: bool,
    /// ResultsDB API base URL, e.g. `http://127.0.0.1:5001/api/v2.0`.
    pub resultsdb_server: String,
    /// Result `ref_url` = `<artifacts_baseurl>/<uuid>[/<artifact>]`.
    pub artifacts_baseurl: String,
    /// Group `ref_url` = `<execdb_server>/jobs/<uuid>`.
    pub execdb_server: String,
    /// Koji hub XML-RPC URL (koji directive).
    pub koji_url: String,
    /// Koji package download base URL (koji directive).
    pub pkg_url: String,
    /// Bodhi server URL (bodhi directive).
    pub bodhi_server: String,
    /// dist-git base URL (distgit directive default `baseurl`).
    pub distgit_baseurl: String,
    /// What `arch: all` means for the download directives.
    pub supported_arches: Vec<String>,
    /// Path of `yumrepoinfo.conf` (yumrepoinfo directive).
    pub yumrepoinfo: PathBuf,
    /// Cache of downloaded RPMs ("" disables it).
    pub download_cache_dir: PathBuf,
    /// Timeout of one remote request, in seconds.
    pub remote_timeout: u64,
    /// Retries of a failed transient remote operation.
    pub remote_retries: u32,
    /// URL prefix rewrites for the remote directives (`{from: to}`, longest match wins), like
    /// git's `insteadOf`: sends a formula's hard-coded dist-git `baseurl` to a mirror.
    pub url_rewrites: std::collections::BTreeMap<String, String>,
    /// Python 3 interpreter for the `python` directive.
    pub python: String,
    /// argv prefix of the `createrepo` directive (the repo dir is appended).
    pub createrepo: Vec<String>,
    /// How `environment.rpm` is checked and installed.
    pub provision: Provision,
}

/// `provision:` — the commands that check and install a formula's RPM dependencies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Provision {
    /// argv prefix; one package spec is appended per call; exit 0 = present.
    pub rpm_query: Vec<String>,
    /// argv prefix; all missing specs are appended to one call.
    pub dnf_install: Vec<String>,
    /// Install missing packages even without `--local`.
    pub allow_install: bool,
}

impl Default for Provision {
    fn default() -> Self {
        Provision {
            rpm_query: vec!["rpm".into(), "-q".into(), "--whatprovides".into()],
            dnf_install: vec!["dnf".into(), "-y".into(), "install".into()],
            allow_install: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            artifactsdir: "/var/lib/taskotron/artifacts".into(),
            tmpdir: "/var/tmp/taskotron".into(),
            report_to_resultsdb: false,
            resultsdb_server: "http://localhost:5001/api/v2.0".into(),
            artifacts_baseurl: "http://localhost/artifacts".into(),
            execdb_server: "http://localhost:5003".into(),
            koji_url: "https://koji.fedoraproject.org/kojihub".into(),
            pkg_url: "https://kojipkgs.fedoraproject.org/packages".into(),
            bodhi_server: "https://bodhi.fedoraproject.org/".into(),
            distgit_baseurl: "https://src.fedoraproject.org".into(),
            supported_arches: taskotron_common::arch::DEFAULT_SUPPORTED
                .iter()
                .map(|s| s.to_string())
                .collect(),
            yumrepoinfo: "/etc/taskotron/yumrepoinfo.conf".into(),
            download_cache_dir: "/var/cache/taskotron".into(),
            remote_timeout: 60,
            remote_retries: 3,
            url_rewrites: Default::default(),
            python: "python3".into(),
            createrepo: vec!["createrepo_c".into()],
            provision: Provision::default(),
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Which file was used, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// The default path did not exist: built-in defaults.
    Defaults(PathBuf),
}

impl Config {
    /// Loads the config as the CLI does: explicit path, else `$TASKOTRON_CONFIG`, else default.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Source), ConfigError> {
        let chosen = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(ENV_VAR).map(PathBuf::from));
        match chosen {
            Some(path) => Ok((Config::from_file(&path)?, Source::File(path))),
            None => {
                let path = PathBuf::from(DEFAULT_PATH);
                if path.exists() {
                    Ok((Config::from_file(&path)?, Source::File(path)))
                } else {
                    Ok((Config::default(), Source::Defaults(path)))
                }
            }
        }
    }

    /// Reads one config file; it must exist.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text; an empty document means all defaults.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.provision.rpm_query.is_empty() {
            return Err("provision.rpm_query: must not be empty".into());
        }
        if self.provision.dnf_install.is_empty() {
            return Err("provision.dnf_install: must not be empty".into());
        }
        if self.createrepo.is_empty() {
            return Err("createrepo: must not be empty".into());
        }
        if self.python.is_empty() {
            return Err("python: must not be empty".into());
        }
        Ok(())
    }

    /// The ResultsDB base URL without a trailing slash.
    pub fn resultsdb_api(&self) -> &str {
        self.resultsdb_server.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.provision.dnf_install, ["dnf", "-y", "install"]);
        let c = Config::parse("report_to_resultsdb: true\nprovision:\n  allow_install: true\n")
            .unwrap();
        assert!(c.report_to_resultsdb && c.provision.allow_install);
        assert_eq!(c.provision.rpm_query[0], "rpm");
    }

    #[test]
    fn unknown_and_wrong_keys_are_named() {
        let e = Config::parse("artifactdir: /x\n").unwrap_err();
        assert!(e.contains("unknown field `artifactdir`"), "{e}");
        let e = Config::parse("provision: {rpm_qery: [a]}\n").unwrap_err();
        assert!(e.contains("rpm_qery"), "{e}");
        let e = Config::parse("remote_timeout: soon\n").unwrap_err();
        assert!(e.contains("remote_timeout"), "{e}");
        let e = Config::parse("provision: {dnf_install: []}\n").unwrap_err();
        assert!(e.contains("provision.dnf_install"), "{e}");
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/t.yaml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/t.yaml"), "{e}");
    }
}
