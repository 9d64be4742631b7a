//! `yumrepoinfo`: YUM repo URLs for a Koji tag, from `yumrepoinfo.conf` (config `yumrepoinfo`;
//! reference/taskotron.md §2.7).
//!
//! ```yaml
//! - name: get repo urls
//!   yumrepoinfo:
//!     koji_tag: ${koji_tag}     # a -pending suffix is stripped; rawhide is an alias
//!     arch: ${arch}             # string or list; only base arches count (all/src/noarch ignored)
//!   export: yumrepoinfo_output
//! ```
//!
//! Returns `{repo: {arch: url}}` for the tag's repo and all its parents (`f27-updates` also
//! gives `f27`).

use serde_json::{Map, Value};

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::remote::{arches, yumrepoinfo::RepoInfo};

pub struct YumRepoInfo;

impl Directive for YumRepoInfo {
    fn name(&self) -> &'static str {
        "yumrepoinfo"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["koji_tag", "arch"])?;
        let tag = p.req_str("koji_tag")?;
        if p.get("arch").is_none() {
            return Err(DirectiveError::param("arch", "missing (required)"));
        }
        let requested = p.str_list("arch")?;
        let base: Vec<&String> = requested.iter().filter(|a| arches::is_base(a)).collect();
        if base.is_empty() {
            return Err(DirectiveError::param(
                "arch",
                format!("no base arch among {requested:?} (all, src and noarch are ignored)"),
            ));
        }
        let info = RepoInfo::load(&ctx.config.yumrepoinfo)
            .map_err(|e| DirectiveError::Failed(e.to_string()))?;
        let mut out: Map<String, Value> = Map::new();
        for arch in base {
            let repos = info
                .repos_for_tag(&tag, arch)
                .map_err(|e| DirectiveError::Failed(e.to_string()))?;
            for (repo, url) in repos {
                let entry = out.entry(repo).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(arch.clone(), Value::String(url));
                }
            }
        }
        tracing::info!(koji_tag = %tag, repos = out.len(), "yumrepoinfo");
        Ok(Value::Object(out))
    }
}
