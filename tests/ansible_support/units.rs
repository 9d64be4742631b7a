//! Starting a deployed program exactly as its systemd unit would: the unit's ExecStart,
//! Environment= lines and WorkingDirectory, with `%i` replaced for template instances.
//! (User= is not applied: the test deploys with taskotron_manage_users=false.)

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the test needs from a unit file's [Service] section.
#[derive(Debug, Clone)]
pub struct Unit {
    pub path: PathBuf,
    pub exec_start: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<PathBuf>,
    pub user: Option<String>,
}

/// Reads a unit file; `instance` fills `%i` of a template unit (`name@.service`).
pub fn read_unit(path: &Path, instance: Option<&str>) -> Unit {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read unit {}: {e}", path.display()));
    let mut unit = Unit {
        path: path.to_path_buf(),
        exec_start: vec![],
        environment: vec![],
        working_directory: None,
        user: None,
    };
    for line in text.lines() {
        let line = match instance {
            Some(i) => line.replace("%i", i),
            None => line.to_string(),
        };
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            assert!(
                !cmd.contains('"') && !cmd.contains('\''),
                "{}: the test splits ExecStart on whitespace; quoting is not supported: {cmd}",
                path.display()
            );
            assert!(
                !cmd.contains('%'),
                "{}: unresolved specifier in ExecStart: {cmd}",
                path.display()
            );
            unit.exec_start = cmd.split_whitespace().map(String::from).collect();
        } else if let Some(env) = line.strip_prefix("Environment=") {
            let (k, v) = env
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad Environment= {env}", path.display()));
            unit.environment.push((k.to_string(), v.to_string()));
        } else if let Some(dir) = line.strip_prefix("WorkingDirectory=") {
            unit.working_directory = Some(PathBuf::from(dir));
        } else if let Some(user) = line.strip_prefix("User=") {
            unit.user = Some(user.to_string());
        }
    }
    assert!(
        !unit.exec_start.is_empty(),
        "{}: no ExecStart=",
        path.display()
    );
    unit
}

impl Unit {
    /// The unit's command with its environment and working directory; output goes to `log`.
    pub fn command(&self, log: &Path) -> Command {
        let mut cmd = Command::new(&self.exec_start[0]);
        cmd.args(&self.exec_start[1..]);
        for (k, v) in &self.environment {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.working_directory {
            cmd.current_dir(dir);
        }
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd
    }
}
