//! `bodhi`: download the RPMs of every build in a Bodhi update (reference/taskotron.md §2.4).
//!
//! ```yaml
//! - name: download update from Bodhi
//!   bodhi:
//!     action: download          # the only action
//!     update_id: ${bodhi_id}    # e.g. FEDORA-2014-7485
//!     arch: ${arch}             # string or list; all = supported_arches (+ noarch)
//!     src: False                # default False
//!     target_dir: ${workdir}    # default ${workdir}
//! ```
//!
//! The update's builds come from Bodhi's REST API (`bodhi_server`), their RPMs from Koji
//! exactly as the koji directive's `download` action fetches them. Returns
//! `{downloaded_rpms: [...]}`.

use serde_json::{json, Value};

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::remote::{self, arches, bodhi, http, koji::Hub, kojifetch};

pub struct Bodhi;

impl Directive for Bodhi {
    fn name(&self) -> &'static str {
        "bodhi"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["action", "update_id", "arch", "src", "target_dir"])?;
        let action = p.req_str("action")?;
        if action != "download" {
            return Err(DirectiveError::param(
                "action",
                format!("'{action}' is not a valid action (only: download)"),
            ));
        }
        let update_id = p.req_str("update_id")?;
        if p.get("arch").is_none() {
            return Err(DirectiveError::param("arch", "missing (required)"));
        }
        let requested = p.str_list("arch")?;
        let src = p.bool_or("src", false)?;
        if requested.is_empty() && !src {
            return Err(DirectiveError::param(
                "arch",
                "an empty arch list with src: False leaves nothing to download",
            ));
        }
        let sel = kojifetch::Selection {
            arches: arches::compute(&requested, &[], src, &ctx.config.supported_arches),
            debuginfo: false,
        };
        let target_dir = match p.opt_str("target_dir")? {
            Some(t) => ctx.task_path(&t),
            None => ctx.workdir.to_path_buf(),
        };
        std::fs::create_dir_all(&target_dir)
            .map_err(|e| DirectiveError::io(format!("creating {}", target_dir.display()), e))?;
        tracing::info!(%update_id, arches = ?sel.arches, dest = %target_dir.display(), "bodhi");

        let settings = remote::settings(ctx.config);
        let config = ctx.config;
        let rpms = remote::run(async {
            let client = http::client(&settings)?;
            let nvrs =
                bodhi::update_builds(&client, &settings, &config.bodhi_server, &update_id).await?;
            tracing::info!(builds = ?nvrs, "update {update_id}");
            let koji = kojifetch::Koji {
                hub: Hub {
                    url: config.koji_url.clone(),
                    client: client.clone(),
                    settings: settings.clone(),
                },
                pkg_url: config.pkg_url.clone(),
            };
            let mut all = Vec::new();
            for nvr in &nvrs {
                all.extend(koji.download_build(nvr, &sel, &target_dir).await?.1);
            }
            Ok(all)
        })?;
        let list: Vec<String> = rpms.iter().map(|p| p.display().to_string()).collect();
        Ok(json!({ "downloaded_rpms": list }))
    }
}
