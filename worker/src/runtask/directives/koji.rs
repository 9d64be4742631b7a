//! `koji`: download RPMs from Koji (reference/taskotron.md §2.3).
//!
//! ```yaml
//! - name: download rpms from koji
//!   koji:
//!     action: download            # or download_tag, download_latest_stable
//!     koji_build: ${koji_build}   # download / download_latest_stable
//!     koji_tag: ${koji_tag}       # download_tag
//!     arch: ['all']               # string or list; all = supported_arches (+ noarch)
//!     arch_exclude: [noarch]      # optional
//!     src: True                   # default False
//!     debuginfo: False            # default False
//!     build_log: True             # default False; build.log.<arch> next to the RPMs
//!     target_dir: ${workdir}      # default ${workdir}
//! ```
//!
//! Returns `{downloaded_rpms: [...], downloaded_logs: [...], log_errors: [...]}` (absolute
//! paths, sorted; `log_errors` lists arches whose build.log was missing).

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::remote::{self, arches, http, koji::Hub, kojifetch};

pub struct Koji;

const ACTIONS: &[&str] = &["download", "download_tag", "download_latest_stable"];

fn paths(list: &[PathBuf]) -> Value {
    Value::Array(
        list.iter()
            .map(|p| Value::String(p.display().to_string()))
            .collect(),
    )
}

impl Directive for Koji {
    fn name(&self) -> &'static str {
        "koji"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&[
            "action",
            "koji_build",
            "koji_tag",
            "arch",
            "arch_exclude",
            "src",
            "debuginfo",
            "build_log",
            "target_dir",
        ])?;
        let action = p.req_str("action")?;
        if !ACTIONS.contains(&action.as_str()) {
            return Err(DirectiveError::param(
                "action",
                format!("'{action}' is not one of {}", ACTIONS.join(", ")),
            ));
        }
        // `arch` is required; an empty list is valid (SRPM only with `src: True`).
        if p.get("arch").is_none() {
            return Err(DirectiveError::param("arch", "missing (required)"));
        }
        let requested = p.str_list("arch")?;
        let exclude = p.str_list("arch_exclude")?;
        let src = p.bool_or("src", false)?;
        let sel = kojifetch::Selection {
            arches: arches::compute(&requested, &exclude, src, &ctx.config.supported_arches),
            debuginfo: p.bool_or("debuginfo", false)?,
        };
        let build_log = p.bool_or("build_log", false)?;
        let target_dir = match p.opt_str("target_dir")? {
            Some(t) => ctx.task_path(&t),
            None => ctx.workdir.to_path_buf(),
        };
        std::fs::create_dir_all(&target_dir)
            .map_err(|e| DirectiveError::io(format!("creating {}", target_dir.display()), e))?;
        let nvr = match action.as_str() {
            "download_tag" => None,
            _ => Some(p.req_str("koji_build")?),
        };
        let tag = match action.as_str() {
            "download_tag" => Some(p.req_str("koji_tag")?),
            _ => None,
        };
        tracing::info!(%action, arches = ?sel.arches, dest = %target_dir.display(), "koji");

        let settings = remote::settings(ctx.config);
        let config = ctx.config;
        let (rpms, logs) = remote::run(async {
            let client = http::client(&settings)?;
            let koji = kojifetch::Koji {
                hub: Hub {
                    url: config.koji_url.clone(),
                    client: client.clone(),
                    settings: settings.clone(),
                },
                pkg_url: config.pkg_url.clone(),
            };
            let wanted = match action.as_str() {
                "download_tag" => {
                    let tag = tag.unwrap_or_default();
                    let rpms = koji.download_tag(&tag, &sel, &target_dir).await?;
                    if build_log {
                        tracing::warn!("build_log is not supported for download_tag, ignoring");
                    }
                    return Ok((rpms, kojifetch::Logs::default()));
                }
                "download_latest_stable" => {
                    let nvr = nvr.unwrap_or_default();
                    match koji.latest_stable(&nvr).await? {
                        Some(stable) => stable,
                        None => {
                            tracing::info!("there is no previous stable build for {nvr}, skipping");
                            return Ok((Vec::new(), kojifetch::Logs::default()));
                        }
                    }
                }
                _ => nvr.unwrap_or_default(),
            };
            let (build, rpms) = koji.download_build(&wanted, &sel, &target_dir).await?;
            let logs = if build_log {
                koji.build_logs(&build, &sel.arches, &target_dir).await?
            } else {
                kojifetch::Logs::default()
            };
            Ok((rpms, logs))
        })?;
        tracing::info!(count = rpms.len(), "downloaded RPMs");
        Ok(json!({
            "downloaded_rpms": paths(&rpms),
            "downloaded_logs": paths(&logs.downloaded),
            "log_errors": logs.errors,
        }))
    }
}
