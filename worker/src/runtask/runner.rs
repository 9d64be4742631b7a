//! One run of a formula: set-up, validation, provisioning, the action loop, and results.
//!
//! [`Run::prepare`] loads the config and creates `<artifactsdir>/<uuid>/taskotron/` (so the
//! binary can open `taskotron.log` there before anything else is logged); [`Run::execute`]
//! does the rest and returns the process exit code (0, or the `exitcode` directive's value).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::{Config, ConfigError, Source};
use super::directives::{self, DirectiveContext, DirectiveError, RunState};
use super::provision::{self, ProvisionError};
use taskotron_common::formula::{Formula, FormulaError};
use taskotron_common::resultyaml::export_yaml;
use taskotron_common::template::{self, TemplateError, Variables};

/// What the command line asks for (see `runtask --help`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub formula: PathBuf,
    pub item: Option<String>,
    pub item_type: Option<String>,
    pub arch: String,
    pub jobid: String,
    /// None: a fresh time-based id.
    pub uuid: Option<String>,
    /// Run on this machine and approve system changes (installing RPM dependencies).
    pub local: bool,
    /// Overrides the config's `artifactsdir` (the root; the run writes `<root>/<uuid>/`).
    pub artifactsdir: Option<PathBuf>,
    /// Explicit config file (else `$TASKOTRON_CONFIG`, else the default path).
    pub config: Option<PathBuf>,
    /// `--override NAME=VALUE`, applied after the built-in variables.
    pub overrides: Vec<(String, String)>,
    /// Keep the work dir after the run (and log DEBUG to the console).
    pub debug: bool,
}

/// A runner failure; displays as one line naming the file and field where it applies.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Formula(#[from] FormulaError),
    #[error("{0}")]
    Invalid(String),
    #[error("{file}: environment.rpm: {source}")]
    Provision {
        file: String,
        source: ProvisionError,
    },
    #[error("{file}: {source}")]
    Template { file: String, source: TemplateError },
    #[error(transparent)]
    Action(Box<ActionFailure>),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// A directive failed; names the formula, action and directive.
#[derive(Debug, thiserror::Error)]
#[error("{file}: actions[{index}] '{name}' ({directive}): {source}")]
pub struct ActionFailure {
    pub file: String,
    pub index: usize,
    pub name: String,
    pub directive: String,
    pub source: DirectiveError,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let context = context.into();
    move |source| RunError::Io { context, source }
}

/// A prepared run.
pub struct Run {
    pub opts: Options,
    pub config: Config,
    pub config_source: Source,
    pub uuid: String,
    /// `<artifacts root>/<uuid>` — `${artifactsdir}`.
    pub artifactsdir: PathBuf,
}

/// A fresh time-based job id, as libtaskotron made them: `YYYYmmdd_HHMMSS_ffffff` (UTC).
pub fn time_uuid() -> String {
    chrono::Utc::now().format("%Y%m%d_%H%M%S_%6f").to_string()
}

/// A uuid is used as a directory name: it must be one plain path component.
pub fn check_uuid(uuid: &str) -> Result<(), String> {
    if uuid.is_empty() || uuid == "." || uuid == ".." || uuid.contains(['/', '\\', '\0']) {
        Err(format!("`{uuid}` cannot be used as a directory name"))
    } else {
        Ok(())
    }
}

impl Run {
    /// Loads the config and creates `<artifactsdir>/<uuid>/taskotron/`.
    pub fn prepare(opts: Options) -> Result<Run, RunError> {
        let (config, config_source) = Config::load(opts.config.as_deref())?;
        let uuid = opts.uuid.clone().unwrap_or_else(time_uuid);
        check_uuid(&uuid).map_err(|m| RunError::Invalid(format!("--uuid: {m}")))?;
        let root = opts
            .artifactsdir
            .clone()
            .unwrap_or_else(|| config.artifactsdir.clone());
        let artifactsdir = absolute(&root).join(&uuid);
        let logdir = artifactsdir.join("taskotron");
        std::fs::create_dir_all(&logdir)
            .map_err(io_err(format!("cannot create {}", logdir.display())))?;
        Ok(Run {
            opts,
            config,
            config_source,
            uuid,
            artifactsdir,
        })
    }

    /// `<artifactsdir>/taskotron/taskotron.log`.
    pub fn log_file(&self) -> PathBuf {
        self.artifactsdir.join("taskotron").join("taskotron.log")
    }

    /// `<artifactsdir>/taskotron/results.yml`.
    pub fn results_file(&self) -> PathBuf {
        self.artifactsdir.join("taskotron").join("results.yml")
    }

    /// Runs the formula; returns the exit code (0 or the `exitcode` directive's value).
    pub fn execute(&self) -> Result<i32, RunError> {
        let o = &self.opts;
        tracing::info!(
            "runtask {}: formula {} item={} type={} arch={} jobid={} uuid={}",
            env!("CARGO_PKG_VERSION"),
            o.formula.display(),
            o.item.as_deref().unwrap_or("-"),
            o.item_type.as_deref().unwrap_or("-"),
            o.arch,
            o.jobid,
            self.uuid
        );
        if !taskotron_common::arch::is_known(&o.arch) {
            tracing::warn!("arch `{}` is not a known architecture", o.arch);
        }
        match &self.config_source {
            Source::File(p) => tracing::info!("config: {}", p.display()),
            Source::Defaults(p) => {
                tracing::debug!(
                    "config: {} does not exist; using built-in defaults",
                    p.display()
                )
            }
        }
        tracing::info!("artifacts: {}", self.artifactsdir.display());

        let formula_path = absolute(&o.formula);
        let file = o.formula.display().to_string();
        let formula = Formula::from_path(&o.formula)?;
        check_directives(&formula, &file)?;
        let taskdir = formula_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));

        std::fs::create_dir_all(&self.config.tmpdir).map_err(io_err(format!(
            "cannot create tmpdir {}",
            self.config.tmpdir.display()
        )))?;
        let workdir = tempfile::Builder::new()
            .prefix(&format!("runtask-{}-", self.uuid))
            .tempdir_in(&self.config.tmpdir)
            .map_err(io_err(format!(
                "cannot create a work dir in {}",
                self.config.tmpdir.display()
            )))?;
        let mut variables = self.variables(&formula, &formula_path, &taskdir, workdir.path());
        check_input_args(&formula, &variables, &file)?;

        provision::provision(
            &formula.environment.rpm,
            &self.config.provision,
            o.local,
            &taskdir,
        )
        .map_err(|source| RunError::Provision {
            file: file.clone(),
            source,
        })?;

        let mut state = RunState::default();
        let outcome = self.run_actions(
            &formula,
            &file,
            &formula_path,
            &taskdir,
            workdir.path(),
            &mut variables,
            &mut state,
        );
        // Results that went through `resultsdb` are kept even when a later action failed.
        if !state.reported.is_empty() {
            let path = self.results_file();
            std::fs::write(&path, export_yaml(&state.reported))
                .map_err(io_err(format!("cannot write {}", path.display())))?;
            tracing::info!("results: {}", path.display());
        }
        if o.debug {
            let kept = workdir.keep();
            tracing::info!("work dir kept (--debug): {}", kept.display());
        }
        outcome?;
        let code = state.exit_code.unwrap_or(0);
        tracing::info!("task {} finished, exit code {code}", formula.name);
        Ok(code)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_actions(
        &self,
        formula: &Formula,
        file: &str,
        formula_path: &Path,
        taskdir: &Path,
        workdir: &Path,
        variables: &mut Variables,
        state: &mut RunState,
    ) -> Result<(), RunError> {
        let total = formula.actions.len();
        for action in &formula.actions {
            let span = tracing::info_span!("action", n = action.index + 1);
            let _enter = span.enter();
            tracing::info!(
                "[{}/{total}] {} ({})",
                action.index + 1,
                action.name,
                action.directive
            );
            let field = format!("{}.{}", action.field(), action.directive);
            let params =
                template::substitute(&action.params, variables, &field).map_err(|source| {
                    RunError::Template {
                        file: file.to_string(),
                        source,
                    }
                })?;
            tracing::debug!("params: {params}");
            // The registry was checked in check_directives; a miss here is a bug, reported anyway.
            let directive = directives::find(&action.directive).ok_or_else(|| {
                RunError::Invalid(format!("{file}: unknown directive `{}`", action.directive))
            })?;
            let started = Instant::now();
            let mut ctx = DirectiveContext {
                config: &self.config,
                formula,
                formula_path,
                taskdir,
                workdir,
                artifactsdir: &self.artifactsdir,
                variables,
                state,
            };
            let value = directive.run(&params, &mut ctx).map_err(|source| {
                tracing::error!("action failed: {source}");
                RunError::Action(Box::new(ActionFailure {
                    file: file.to_string(),
                    index: action.index,
                    name: action.name.clone(),
                    directive: action.directive.clone(),
                    source,
                }))
            })?;
            tracing::debug!("done in {:.3}s", started.elapsed().as_secs_f64());
            if let Some(var) = &action.export {
                tracing::debug!("export {var} = {}", short(&value));
                variables.insert(var.clone(), value);
            }
        }
        Ok(())
    }

    /// The built-in variables (`arg_data`), then the `--override`s.
    fn variables(
        &self,
        formula: &Formula,
        formula_path: &Path,
        taskdir: &Path,
        workdir: &Path,
    ) -> Variables {
        let o = &self.opts;
        let mut v = Variables::new();
        let s = |x: &str| Value::String(x.to_string());
        let p = |x: &Path| Value::String(x.display().to_string());
        if let Some(item) = &o.item {
            v.insert("item".into(), s(item));
            if let Some(t) = o
                .item_type
                .as_deref()
                .filter(|t| taskotron_common::itemtype::is_valid(t))
            {
                v.insert(t.to_string(), s(item));
            }
        }
        if let Some(t) = &o.item_type {
            v.insert("type".into(), s(t));
        }
        v.insert("arch".into(), s(&o.arch));
        v.insert("jobid".into(), s(&o.jobid));
        v.insert("uuid".into(), s(&self.uuid));
        v.insert("workdir".into(), p(workdir));
        v.insert("artifactsdir".into(), p(&self.artifactsdir));
        v.insert("checkname".into(), s(&formula.name));
        v.insert("task".into(), p(formula_path));
        v.insert("taskdir".into(), p(taskdir));
        v.insert(
            "namespace".into(),
            s(formula.namespace.as_deref().unwrap_or("")),
        );
        for (name, value) in &o.overrides {
            tracing::info!("override: {name}={value}");
            v.insert(name.clone(), s(value));
        }
        v
    }
}

/// Every directive must be registered; all unknown ones are named in one line.
pub fn check_directives(formula: &Formula, file: &str) -> Result<(), RunError> {
    let known = directives::names();
    let unknown: Vec<String> = formula
        .actions
        .iter()
        .filter(|a| !known.contains(&a.directive.as_str()))
        .map(|a| format!("`{}` ({})", a.directive, a.field()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(RunError::Invalid(format!(
        "{file}: unknown directive{} {}; known directives: {}",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.join(", "),
        known.join(", ")
    )))
}

/// Every `input.args` variable must be defined (by `-i/-t`, a built-in or `--override`).
fn check_input_args(formula: &Formula, vars: &Variables, file: &str) -> Result<(), RunError> {
    let missing: Vec<&str> = formula
        .input_args
        .iter()
        .filter(|a| !vars.contains_key(a.as_str()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(RunError::Invalid(format!(
        "{file}: input.args: missing input argument{} {}; give the item with `-t {} -i ITEM` or use --override NAME=VALUE",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        missing[0]
    )))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out.replace('\n', "\\n")
}
