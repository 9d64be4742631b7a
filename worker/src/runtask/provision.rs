//! `environment.rpm`: makes sure the formula's RPM dependencies are installed.
//!
//! Each spec (a name, a file path like `/usr/bin/xz`, anything dnf accepts) is checked with
//! the config's `provision.rpm_query` argv (spec appended; exit 0 = present; the default
//! `rpm -q --whatprovides` also understands file paths and capabilities). Missing specs are
//! installed in one `provision.dnf_install` call when `--local` or `provision.allow_install`
//! permits it, else the run fails listing them. After installing, every spec is checked again.

use std::path::Path;

use super::config::Provision;
use super::process;

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("missing RPM dependencies: {} (installing them needs --local or provision.allow_install: true)", .0.join(", "))]
    NotAllowed(Vec<String>),
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("installing RPM dependencies {} failed ({status}): {detail}", .missing.join(", "))]
    InstallFailed {
        missing: Vec<String>,
        status: String,
        detail: String,
    },
    #[error("RPM dependencies still missing after installation: {}", .0.join(", "))]
    StillMissing(Vec<String>),
}

/// Checks and, if permitted, installs `specs`. `cwd` is where the commands run.
pub fn provision(
    specs: &[String],
    cfg: &Provision,
    local: bool,
    cwd: &Path,
) -> Result<(), ProvisionError> {
    if specs.is_empty() {
        return Ok(());
    }
    tracing::info!("checking RPM dependencies: {}", specs.join(", "));
    let missing = query_missing(specs, cfg, cwd)?;
    if missing.is_empty() {
        tracing::info!("all RPM dependencies are installed");
        return Ok(());
    }
    if !(local || cfg.allow_install) {
        return Err(ProvisionError::NotAllowed(missing));
    }
    let mut argv = cfg.dnf_install.clone();
    argv.extend(missing.iter().cloned());
    let shown = process::display(&argv);
    tracing::info!("installing missing RPM dependencies: {shown}");
    let out = process::run_logged(&argv, cwd, &[]).map_err(|source| ProvisionError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(ProvisionError::InstallFailed {
            missing,
            status: out.status.to_string(),
            detail: dnf_problem(&out.stdout, &out.stderr),
        });
    }
    let still = query_missing(specs, cfg, cwd)?;
    if !still.is_empty() {
        return Err(ProvisionError::StillMissing(still));
    }
    tracing::info!("RPM dependencies installed");
    Ok(())
}

fn query_missing(
    specs: &[String],
    cfg: &Provision,
    cwd: &Path,
) -> Result<Vec<String>, ProvisionError> {
    let mut missing = Vec::new();
    for spec in specs {
        let mut argv = cfg.rpm_query.clone();
        argv.push(spec.clone());
        let shown = process::display(&argv);
        tracing::debug!("running: {shown}");
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| ProvisionError::Spawn {
                command: shown.clone(),
                source,
            })?;
        let answer = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            tracing::debug!("{spec}: installed ({})", answer.trim());
        } else {
            tracing::info!("{spec}: not installed");
            missing.push(spec.clone());
        }
    }
    Ok(missing)
}

/// dnf's explanation, on one line: the `No match for argument` / `Error:` lines if any, else
/// the last lines of its output.
fn dnf_problem(stdout: &str, stderr: &str) -> String {
    let all = format!("{stdout}\n{stderr}");
    let key: Vec<&str> = all
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("No match for argument") || l.starts_with("Error"))
        .collect();
    if key.is_empty() {
        process::tail_lines(&all, 3)
    } else {
        key.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnf_problem_lines() {
        let err = "Last metadata expiration check\nNo match for argument: nope\nError: Unable to find a match: nope\n";
        assert_eq!(
            dnf_problem("", err),
            "No match for argument: nope | Error: Unable to find a match: nope"
        );
        assert_eq!(dnf_problem("a\nb\n", "c\n"), "a | b | c");
    }

    #[test]
    fn not_allowed_lists_missing() {
        let cfg = Provision {
            rpm_query: vec!["false".into()],
            dnf_install: vec!["true".into()],
            allow_install: false,
        };
        let e = provision(&["a".into(), "b".into()], &cfg, false, Path::new("/")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing RPM dependencies: a, b (installing them needs --local or provision.allow_install: true)"
        );
        // Installing "succeeds" but the query still fails: named as still missing.
        let e = provision(&["a".into()], &cfg, true, Path::new("/")).unwrap_err();
        assert!(
            matches!(e, ProvisionError::StillMissing(ref m) if m == &["a"]),
            "{e}"
        );
    }
}
