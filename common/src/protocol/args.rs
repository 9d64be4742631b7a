//! Typed `args` of `set_worker_settings`, `get_worker_info`'s result and every
//! `start_command` (reference/buildbot.md §1.5, §1.7, §1.8).
//!
//! Decoding is lenient like buildbot-worker (unknown keys are ignored); required keys are
//! enforced. Encoding writes every key the 4.3 master sends, including the nulls that
//! buildbot-worker indexes directly (`maxsize`, `mode`, `compress`).

use std::collections::BTreeMap;

use rmpv::Value;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::error::ArgsError;
use super::value::{as_f64, as_text, map_get, type_name};

/// `set_worker_settings` args: how the worker splits and batches command output.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    /// Python regex; each match becomes a `\n`.
    pub newline_re: String,
    pub max_line_length: u64,
    /// Seconds before buffered output is flushed.
    pub buffer_timeout: f64,
    /// Bytes of buffered output before a flush.
    pub buffer_size: u64,
}

impl Default for WorkerSettings {
    /// What the 4.3 master sends.
    fn default() -> Self {
        WorkerSettings {
            newline_re: r"(\r\n|\r(?=.)|\033\[u|\033\[[0-9]+;[0-9]+[Hf]|\033\[2J|\x08+)".into(),
            max_line_length: 4096,
            buffer_timeout: 5.0,
            buffer_size: 65536,
        }
    }
}

impl WorkerSettings {
    pub fn to_value(&self) -> Value {
        let timeout = if self.buffer_timeout.fract() == 0.0 && self.buffer_timeout >= 0.0 {
            Value::from(self.buffer_timeout as u64)
        } else {
            Value::F64(self.buffer_timeout)
        };
        Value::Map(vec![
            (
                Value::from("newline_re"),
                Value::from(self.newline_re.as_str()),
            ),
            (
                Value::from("max_line_length"),
                Value::from(self.max_line_length),
            ),
            (Value::from("buffer_timeout"), timeout),
            (Value::from("buffer_size"), Value::from(self.buffer_size)),
        ])
    }

    /// All four keys are mandatory, as on buildbot-worker.
    pub fn from_value(v: &Value) -> Result<WorkerSettings, String> {
        let pairs = v
            .as_map()
            .ok_or_else(|| format!("args: expected a map, got {}", type_name(v)))?;
        let get = |k: &str| map_get(pairs, k).ok_or_else(|| format!("args: missing key {k:?}"));
        let uint = |k: &str| {
            get(k)?
                .as_u64()
                .ok_or_else(|| format!("args.{k}: expected a non-negative int"))
        };
        Ok(WorkerSettings {
            newline_re: as_text(get("newline_re")?)
                .ok_or_else(|| "args.newline_re: expected str".to_string())?,
            max_line_length: uint("max_line_length")?,
            buffer_timeout: as_f64(get("buffer_timeout")?)
                .ok_or_else(|| "args.buffer_timeout: expected a number".to_string())?,
            buffer_size: uint("buffer_size")?,
        })
    }
}

/// The command names buildbot-worker 4.3 advertises, all at version "3.3".
pub const WORKER_COMMANDS: &[&str] = &[
    "shell",
    "uploadFile",
    "upload_file",
    "uploadDirectory",
    "upload_directory",
    "downloadFile",
    "download_file",
    "mkdir",
    "rmdir",
    "cpdir",
    "stat",
    "glob",
    "listdir",
    "rmfile",
];

/// The result of `get_worker_info`. Known keys are typed; every other key (the `info/` files
/// such as `admin`, `host`, `arch`, `access_uri`, and the `os_*` keys) is in `extra`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerInfo {
    pub basedir: String,
    /// `os.name`: "posix" or "nt".
    pub system: String,
    pub numcpus: u64,
    pub version: String,
    pub worker_commands: BTreeMap<String, String>,
    pub delete_leftover_dirs: bool,
    pub environ: BTreeMap<String, String>,
    pub extra: BTreeMap<String, Value>,
}

impl WorkerInfo {
    /// A string entry of `extra` (e.g. `"admin"`, `"host"`, `"arch"`), as sent (trailing
    /// newline included).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }

    pub fn to_value(&self) -> Value {
        let mut pairs: Vec<(Value, Value)> = self
            .extra
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
            .collect();
        let strmap = |m: &BTreeMap<String, String>| {
            Value::Map(
                m.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                    .collect(),
            )
        };
        pairs.push((Value::from("environ"), strmap(&self.environ)));
        pairs.push((Value::from("system"), Value::from(self.system.as_str())));
        pairs.push((Value::from("basedir"), Value::from(self.basedir.as_str())));
        pairs.push((Value::from("numcpus"), Value::from(self.numcpus)));
        pairs.push((Value::from("version"), Value::from(self.version.as_str())));
        pairs.push((
            Value::from("worker_commands"),
            strmap(&self.worker_commands),
        ));
        pairs.push((
            Value::from("delete_leftover_dirs"),
            Value::from(u8::from(self.delete_leftover_dirs)),
        ));
        Value::Map(pairs)
    }

    /// Lenient: missing keys get defaults (old or foreign workers send fewer keys).
    pub fn from_value(v: &Value) -> Result<WorkerInfo, String> {
        let pairs = v
            .as_map()
            .ok_or_else(|| format!("worker info: expected a map, got {}", type_name(v)))?;
        let mut info = WorkerInfo::default();
        let strmap = |v: &Value| -> BTreeMap<String, String> {
            v.as_map()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((as_text(k)?, as_text(v)?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        for (k, v) in pairs {
            let Some(key) = as_text(k) else { continue };
            match key.as_str() {
                "basedir" => info.basedir = as_text(v).unwrap_or_default(),
                "system" => info.system = as_text(v).unwrap_or_default(),
                "numcpus" => info.numcpus = v.as_u64().unwrap_or(1),
                "version" => info.version = as_text(v).unwrap_or_default(),
                "worker_commands" => info.worker_commands = strmap(v),
                "environ" => info.environ = strmap(v),
                "delete_leftover_dirs" => {
                    info.delete_leftover_dirs = v.as_bool().unwrap_or(v.as_u64().unwrap_or(0) != 0)
                }
                _ => {
                    info.extra.insert(key, v.clone());
                }
            }
        }
        Ok(info)
    }
}

/// A shell command: an argv list (exec'd directly) or a string (run by `/bin/sh -c`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Argv(Vec<String>),
    Shell(String),
}

/// An `env` value: a string (`${VAR}` expanded from the worker's environment), a list (joined
/// with the path separator `:`); a null value (the `Option` around it) removes the variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Text(String),
    List(Vec<String>),
}

/// A `logfiles` entry: a file name, or `{filename, follow}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogfileSpec {
    Name(String),
    Spec {
        filename: String,
        #[serde(default)]
        follow: bool,
    },
}

impl LogfileSpec {
    pub fn filename(&self) -> &str {
        match self {
            LogfileSpec::Name(n) => n,
            LogfileSpec::Spec { filename, .. } => filename,
        }
    }
    pub fn follow(&self) -> bool {
        matches!(self, LogfileSpec::Spec { follow: true, .. })
    }
}

/// The signal used to interrupt: a name such as `"KILL"`/`"TERM"` or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalSpec {
    Name(String),
    Number(i32),
}

/// A list of paths, or a single path (older masters sent one string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Paths {
    List(Vec<String>),
    One(String),
}

impl Paths {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Paths::List(l) => l.clone(),
            Paths::One(p) => vec![p.clone()],
        }
    }
}

fn yes() -> bool {
    true
}

/// `shell` args.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellArgs {
    pub workdir: String,
    pub command: CommandLine,
    #[serde(default)]
    pub env: Option<BTreeMap<String, Option<EnvValue>>>,
    #[serde(default = "yes")]
    pub want_stdout: bool,
    #[serde(default = "yes")]
    pub want_stderr: bool,
    #[serde(default)]
    pub logfiles: Option<BTreeMap<String, LogfileSpec>>,
    /// Seconds without output before the command is killed.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds of total run time before the command is killed.
    #[serde(default, rename = "maxTime")]
    pub max_time: Option<f64>,
    #[serde(default)]
    pub max_lines: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when interrupting (None: kill at once).
    #[serde(default, rename = "sigtermTime")]
    pub sigterm_time: Option<f64>,
    #[serde(default, rename = "usePTY")]
    pub use_pty: Option<bool>,
    #[serde(default = "yes", rename = "logEnviron")]
    pub log_environ: bool,
    #[serde(default)]
    pub initial_stdin: Option<String>,
    #[serde(default, rename = "interruptSignal")]
    pub interrupt_signal: Option<SignalSpec>,
}

impl ShellArgs {
    /// Args with the 4.3 master's defaults for a command in `workdir`.
    pub fn new(workdir: impl Into<String>, command: CommandLine) -> ShellArgs {
        ShellArgs {
            workdir: workdir.into(),
            command,
            env: None,
            want_stdout: true,
            want_stderr: true,
            logfiles: Some(BTreeMap::new()),
            timeout: Some(1200.0),
            max_time: None,
            max_lines: None,
            sigterm_time: None,
            use_pty: Some(false),
            log_environ: true,
            initial_stdin: None,
            interrupt_signal: Some(SignalSpec::Name("KILL".into())),
        }
    }
}

/// `upload_file` args (FileUpload; blocksize 262144, or 16384 for MultipleFileUpload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadFileArgs {
    /// Absolute worker path of the file.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workersrc: Option<String>,
    pub maxsize: Option<u64>,
    pub blocksize: u64,
    #[serde(default)]
    pub keepstamp: bool,
}

/// `upload_directory` args: the worker sends a tar stream (`compress`: None, "gz" or "bz2").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadDirectoryArgs {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workersrc: Option<String>,
    pub maxsize: Option<u64>,
    pub blocksize: u64,
    pub compress: Option<String>,
}

/// `download_file` args: the worker pulls blocks with `update_read_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadFileArgs {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workerdest: Option<String>,
    pub maxsize: Option<u64>,
    pub blocksize: u64,
    /// File mode to set (e.g. 0o755), or None.
    pub mode: Option<u32>,
}

/// `mkdir` args (creates parents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MkdirArgs {
    pub paths: Paths,
}

/// `rmdir` args (runs `rm -rf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmdirArgs {
    pub paths: Paths,
    #[serde(
        default,
        rename = "logEnviron",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_environ: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(default, rename = "maxTime", skip_serializing_if = "Option::is_none")]
    pub max_time: Option<f64>,
}

/// `cpdir` args (runs `cp -R -P -p -v`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpdirArgs {
    pub from_path: String,
    pub to_path: String,
    #[serde(
        default,
        rename = "logEnviron",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_environ: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(default, rename = "maxTime", skip_serializing_if = "Option::is_none")]
    pub max_time: Option<f64>,
}

/// `stat`, `listdir` and `rmfile` args: one absolute path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathArgs {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// `glob` args: an absolute pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobArgs {
    pub path: String,
    #[serde(
        default,
        rename = "logEnviron",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_environ: Option<bool>,
}

/// The args of every command the master can start, keyed by command name.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandArgs {
    Shell(ShellArgs),
    UploadFile(UploadFileArgs),
    UploadDirectory(UploadDirectoryArgs),
    DownloadFile(DownloadFileArgs),
    Mkdir(MkdirArgs),
    Rmdir(RmdirArgs),
    Cpdir(CpdirArgs),
    Stat(PathArgs),
    Glob(GlobArgs),
    Listdir(PathArgs),
    Rmfile(PathArgs),
}

impl CommandArgs {
    /// The `command_name` to send with these args.
    pub fn name(&self) -> &'static str {
        match self {
            CommandArgs::Shell(_) => "shell",
            CommandArgs::UploadFile(_) => "upload_file",
            CommandArgs::UploadDirectory(_) => "upload_directory",
            CommandArgs::DownloadFile(_) => "download_file",
            CommandArgs::Mkdir(_) => "mkdir",
            CommandArgs::Rmdir(_) => "rmdir",
            CommandArgs::Cpdir(_) => "cpdir",
            CommandArgs::Stat(_) => "stat",
            CommandArgs::Glob(_) => "glob",
            CommandArgs::Listdir(_) => "listdir",
            CommandArgs::Rmfile(_) => "rmfile",
        }
    }

    /// Reads a `start_command`'s args for `command_name` (the camelCase PB aliases
    /// `uploadFile`, `uploadDirectory`, `downloadFile` are accepted too).
    pub fn parse(command_name: &str, args: &Value) -> Result<CommandArgs, ArgsError> {
        fn de<T: DeserializeOwned>(name: &str, v: &Value) -> Result<T, ArgsError> {
            rmpv::ext::from_value(v.clone()).map_err(|e| ArgsError {
                command: name.to_string(),
                detail: e.to_string(),
            })
        }
        let n = command_name;
        Ok(match n {
            "shell" => CommandArgs::Shell(de(n, args)?),
            "upload_file" | "uploadFile" => CommandArgs::UploadFile(de(n, args)?),
            "upload_directory" | "uploadDirectory" => CommandArgs::UploadDirectory(de(n, args)?),
            "download_file" | "downloadFile" => CommandArgs::DownloadFile(de(n, args)?),
            "mkdir" => CommandArgs::Mkdir(de(n, args)?),
            "rmdir" => CommandArgs::Rmdir(de(n, args)?),
            "cpdir" => CommandArgs::Cpdir(de(n, args)?),
            "stat" => CommandArgs::Stat(de(n, args)?),
            "glob" => CommandArgs::Glob(de(n, args)?),
            "listdir" => CommandArgs::Listdir(de(n, args)?),
            "rmfile" => CommandArgs::Rmfile(de(n, args)?),
            _ => {
                return Err(ArgsError {
                    command: n.to_string(),
                    detail: "unknown command".into(),
                })
            }
        })
    }

    /// The args as a msgpack map, ready for [`super::Op::StartCommand`].
    pub fn to_value(&self) -> Value {
        fn enc<T: Serialize>(t: &T) -> Value {
            // Serialising these plain structs into a Vec cannot fail; Nil is never reached.
            rmp_serde::to_vec_named(t)
                .ok()
                .and_then(|b| rmpv::decode::read_value(&mut b.as_slice()).ok())
                .unwrap_or(Value::Nil)
        }
        match self {
            CommandArgs::Shell(a) => enc(a),
            CommandArgs::UploadFile(a) => enc(a),
            CommandArgs::UploadDirectory(a) => enc(a),
            CommandArgs::DownloadFile(a) => enc(a),
            CommandArgs::Mkdir(a) => enc(a),
            CommandArgs::Rmdir(a) => enc(a),
            CommandArgs::Cpdir(a) => enc(a),
            CommandArgs::Stat(a) | CommandArgs::Listdir(a) | CommandArgs::Rmfile(a) => enc(a),
            CommandArgs::Glob(a) => enc(a),
        }
    }

    /// A complete `start_command` op for these args.
    pub fn start_command(
        &self,
        command_id: impl Into<String>,
        builder_name: Option<String>,
    ) -> super::Op {
        super::Op::StartCommand {
            command_id: command_id.into(),
            command_name: self.name().to_string(),
            args: self.to_value(),
            builder_name,
        }
    }
}
