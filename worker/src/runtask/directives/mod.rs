//! The directive framework: what a formula action calls (`shell:`, `python:`, `koji:`, ...).
//!
//! # Writing a directive
//! 1. Add a file `directives/<name>.rs` with a unit struct implementing [`Directive`].
//! 2. Add one line to [`registry`].
//!
//! `run` receives the action's parameters **after** variable substitution (a JSON value: for most
//! directives a mapping, for `shell` a list) and a [`DirectiveContext`]. It returns the value an
//! `export:` stores (use `Value::Null` when there is nothing to return; a dict stays a dict, a
//! string stays a string). Parameter access with one-line errors: [`Params`].
//!
//! Errors are [`DirectiveError`]s; the runner prefixes them with the formula file, the action
//! (`actions[2] 'download rpms'`) and the directive name, and stops the run (exit code 1).
//!
//! Logging: use `tracing` (`tracing::info!`, `debug!`, `warn!`). The runner sends INFO and up to
//! the console (DEBUG with `-d`) and everything to `<artifactsdir>/taskotron/taskotron.log`;
//! it opens a span naming the action, so messages need not repeat it.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

use super::config::Config;
use taskotron_common::formula::{kind, Formula};
use taskotron_common::resultyaml::CheckDetail;
use taskotron_common::template::Variables;

mod bodhi;
mod createrepo;
mod distgit;
mod dummy;
mod exitcode;
mod koji;
mod python;
mod resultsdb;
mod shell;
mod xunit;
mod yumrepoinfo;

/// A formula directive.
pub trait Directive {
    /// The key used in formulas (`shell`, `koji`, ...).
    fn name(&self) -> &'static str;

    /// Runs the directive with substituted `params`; returns the value for `export`.
    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError>;
}

/// Every directive runtask knows. **One line per directive.** The unknown-directive error
/// lists these names.
pub fn registry() -> Vec<Box<dyn Directive>> {
    vec![
        Box::new(createrepo::Createrepo),
        Box::new(dummy::Dummy),
        Box::new(exitcode::ExitCode),
        Box::new(python::Python),
        Box::new(resultsdb::ResultsDb),
        Box::new(shell::Shell),
        Box::new(xunit::Xunit),
        Box::new(koji::Koji),
        Box::new(bodhi::Bodhi),
        Box::new(distgit::DistGit),
        Box::new(yumrepoinfo::YumRepoInfo),
    ]
}

/// The directive called `name`, if it is registered.
pub fn find(name: &str) -> Option<Box<dyn Directive>> {
    registry().into_iter().find(|d| d.name() == name)
}

/// The registered names, sorted, for messages.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = registry().iter().map(|d| d.name()).collect();
    names.sort_unstable();
    names
}

/// State that outlives one action: what later actions and the end of the run need.
#[derive(Debug, Default)]
pub struct RunState {
    /// Every result that went through the `resultsdb` directive (written to `results.yml`).
    pub reported: Vec<CheckDetail>,
    /// The worst code set by `exitcode` directives, if any ran.
    pub exit_code: Option<i32>,
}

/// What a directive can see and change while it runs.
pub struct DirectiveContext<'a> {
    /// The runtask configuration (service URLs, timeouts, commands).
    pub config: &'a Config,
    /// The formula being run (name, namespace, ...).
    pub formula: &'a Formula,
    /// Path of the formula file.
    pub formula_path: &'a Path,
    /// The directory holding the formula: cwd for commands, base of relative paths.
    pub taskdir: &'a Path,
    /// Scratch dir of this run (`${workdir}`).
    pub workdir: &'a Path,
    /// `<config artifactsdir>/<uuid>` (`${artifactsdir}`).
    pub artifactsdir: &'a Path,
    /// All variables (built-ins, overrides, exports) as the formula sees them (`arg_data`).
    pub variables: &'a Variables,
    /// Cross-action state (reported results, exit code).
    pub state: &'a mut RunState,
}

impl DirectiveContext<'_> {
    /// A path from the formula, resolved against the task directory when relative.
    pub fn task_path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.taskdir.join(path)
        }
    }

    /// A string variable (`uuid`, `item`, `checkname`, ...), or "" when unset or not a string.
    pub fn var_str(&self, name: &str) -> &str {
        self.variables
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Why a directive failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectiveError {
    /// A parameter is missing, unknown or has the wrong type/value.
    #[error("parameter `{param}`: {message}")]
    Param { param: String, message: String },
    /// The directive ran and failed (command exit code, bad input data, ...).
    #[error("{0}")]
    Failed(String),
    /// A remote service failed or answered something unusable.
    #[error("remote error: {0}")]
    Remote(String),
    /// A local file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl DirectiveError {
    pub fn param(param: &str, message: impl Into<String>) -> Self {
        DirectiveError::Param {
            param: param.to_string(),
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DirectiveError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A ResultYAML parameter (`results:`, `result_worst:`, ...): YAML text, usually an exported
/// variable, or an already parsed `{results: [...]}` mapping.
pub fn results_param(param: &str, value: &Value) -> Result<Vec<CheckDetail>, DirectiveError> {
    use taskotron_common::resultyaml::{import_value, import_yaml};
    match value {
        Value::String(text) => import_yaml(text),
        Value::Object(_) => import_value(value),
        other => {
            return Err(DirectiveError::param(
                param,
                format!("expected ResultYAML text, found {}", kind(other)),
            ))
        }
    }
    .map_err(|e| DirectiveError::param(param, e.to_string()))
}

/// Typed access to a mapping of directive parameters, with one-line errors.
///
/// ```ignore
/// let p = Params::new(params)?;          // must be a mapping (null = empty)
/// p.allow(&["action", "koji_build", "arch"])?;  // unknown keys are errors
/// let build = p.req_str("koji_build")?;
/// let src = p.bool_or("src", false)?;
/// ```
pub struct Params<'a> {
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Params<'a> {
    /// Wraps the parameters; they must be a mapping (null counts as empty).
    pub fn new(params: &'a Value) -> Result<Self, DirectiveError> {
        match params {
            Value::Object(m) => Ok(Params { map: Some(m) }),
            Value::Null => Ok(Params { map: None }),
            other => Err(DirectiveError::param(
                "(all)",
                format!("expected a mapping of parameters, found {}", kind(other)),
            )),
        }
    }

    /// Fails on keys outside `allowed`, listing the allowed ones.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), DirectiveError> {
        for key in self.map.into_iter().flat_map(|m| m.keys()) {
            if !allowed.contains(&key.as_str()) {
                return Err(DirectiveError::param(
                    key,
                    format!("unknown parameter; known: {}", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The raw value (None when absent or null).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// All parameters (for directives that pass the rest on, like `python`'s kwargs).
    pub fn map(&self) -> Map<String, Value> {
        self.map.cloned().unwrap_or_default()
    }

    /// A required string (numbers are accepted and turned into text).
    pub fn req_str(&self, key: &str) -> Result<String, DirectiveError> {
        self.opt_str(key)?
            .ok_or_else(|| DirectiveError::param(key, "missing (required)"))
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, DirectiveError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(DirectiveError::param(
                key,
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    /// An optional boolean with a default.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, DirectiveError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(DirectiveError::param(
                key,
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    /// A list of strings; a single string counts as a one-item list; absent = empty.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, DirectiveError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(DirectiveError::param(
                        &format!("{key}[{i}]"),
                        format!("expected a string, found {}", kind(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(DirectiveError::param(
                key,
                format!("expected a list of strings, found {}", kind(other)),
            )),
        }
    }

    /// Exactly one of `a` / `b` must be present; returns which one and its value.
    pub fn one_of(
        &self,
        a: &'static str,
        b: &'static str,
    ) -> Result<(&'static str, &'a Value), DirectiveError> {
        match (self.get(a), self.get(b)) {
            (Some(v), None) => Ok((a, v)),
            (None, Some(v)) => Ok((b, v)),
            (Some(_), Some(_)) => Err(DirectiveError::param(
                &format!("{a}/{b}"),
                "give only one of them",
            )),
            (None, None) => Err(DirectiveError::param(
                &format!("{a}/{b}"),
                "one of them is required",
            )),
        }
    }
}
