//! Running ansible-playbook and ansible-lint, and reading the PLAY RECAP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util;

/// The repo's `ansible/` directory (playbooks, roles, inventories).
pub fn ansible_dir() -> PathBuf {
    util::repo_root().join("ansible")
}

/// A command for a program of the test venv (ansible-playbook, ansible-lint), run in
/// `ansible/` with the repo's ansible.cfg and every Ansible scratch dir under `scratch`.
pub fn ansible_command(program: &str, scratch: &Path) -> Command {
    let venv_bin = util::venv().join("bin");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(util::venv_bin(program));
    cmd.current_dir(ansible_dir())
        .env("PATH", path)
        .env("ANSIBLE_CONFIG", ansible_dir().join("ansible.cfg"))
        .env("ANSIBLE_HOME", scratch.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", scratch.join("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", scratch.join("ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("NO_COLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0");
    cmd
}

/// One host's line of the PLAY RECAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recap {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
}

/// Parses `host : ok=N changed=N unreachable=N failed=N ...` lines after "PLAY RECAP".
pub fn parse_recap(stdout: &str) -> BTreeMap<String, Recap> {
    let mut out = BTreeMap::new();
    let Some(start) = stdout.rfind("PLAY RECAP") else {
        return out;
    };
    for line in stdout[start..].lines().skip(1) {
        let Some((host, counters)) = line.split_once(" : ") else {
            continue;
        };
        let mut recap = Recap::default();
        for field in counters.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let Ok(n) = value.parse::<u32>() else {
                continue;
            };
            match key {
                "ok" => recap.ok = n,
                "changed" => recap.changed = n,
                "unreachable" => recap.unreachable = n,
                "failed" => recap.failed = n,
                _ => {}
            }
        }
        out.insert(host.trim().to_string(), recap);
    }
    out
}

/// Output of a finished ansible-playbook run.
pub struct PlaybookRun {
    pub output: Output,
    pub stdout: String,
    pub recap: BTreeMap<String, Recap>,
}

impl PlaybookRun {
    /// Panics with the output's tail unless the run succeeded on every host.
    pub fn assert_ok(&self, what: &str) {
        let failed = self
            .recap
            .values()
            .any(|r| r.failed > 0 || r.unreachable > 0);
        if !self.output.status.success() || failed || self.recap.is_empty() {
            let stderr = String::from_utf8_lossy(&self.output.stderr);
            panic!(
                "{what}: ansible-playbook failed ({}):\n{}\n--- errors ---\n{}\n--- stderr ---\n{}",
                self.output.status,
                tail(&self.stdout, 60),
                error_lines(&format!("{}\n{stderr}", self.stdout)),
                tail(&stderr, 40)
            );
        }
    }

    pub fn changed(&self, host: &str) -> u32 {
        self.recap
            .get(host)
            .unwrap_or_else(|| panic!("{host} not in PLAY RECAP:\n{}", tail(&self.stdout, 40)))
            .changed
    }

    /// The names of the tasks that reported "changed" for `host` (for assertion messages).
    pub fn changed_tasks(&self, host: &str) -> Vec<String> {
        let mut current = String::new();
        let mut out = vec![];
        for line in self.stdout.lines() {
            if let Some(rest) = line.strip_prefix("TASK [") {
                current = rest.split(']').next().unwrap_or_default().to_string();
            } else if line.starts_with("RUNNING HANDLER [") {
                current = line.to_string();
            } else if line.starts_with(&format!("changed: [{host}]")) {
                out.push(current.clone());
            }
        }
        out
    }
}

/// Runs site.yml with the given inventories, extra-vars files and further arguments.
pub fn run_site(
    scratch: &Path,
    inventories: &[&Path],
    extra_vars: &[&Path],
    args: &[&str],
) -> PlaybookRun {
    let mut cmd = ansible_command("ansible-playbook", scratch);
    for inv in inventories {
        cmd.arg("-i").arg(inv);
    }
    for vars in extra_vars {
        cmd.arg("-e").arg(format!("@{}", vars.display()));
    }
    // After the vars files: a later -e wins.
    cmd.args(args).arg("site.yml");
    let output = cmd.output().expect("run ansible-playbook");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let recap = parse_recap(&stdout);
    PlaybookRun {
        output,
        stdout,
        recap,
    }
}

/// The lines reporting failures (`fatal:`, `failed:`, `[ERROR]`) and the few after each.
fn error_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("fatal:") || line.starts_with("failed:") || line.contains("[ERROR]") {
            out.extend(
                lines[i.saturating_sub(2)..(i + 4).min(lines.len())]
                    .iter()
                    .copied(),
            );
            out.push("...");
        }
    }
    out.join("\n")
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recap_lines_are_parsed() {
        let out = "TASK [x]\nchanged: [a.test]\n\nPLAY RECAP ****\n\
                   a.test   : ok=28   changed=3    unreachable=0    failed=0    skipped=24\n\
                   b.test   : ok=2   changed=0    unreachable=1    failed=2    skipped=0\n";
        let r = parse_recap(out);
        assert_eq!(r["a.test"].changed, 3);
        assert_eq!(r["a.test"].ok, 28);
        assert_eq!(r["b.test"].failed, 2);
        assert_eq!(r["b.test"].unreachable, 1);
    }
}
