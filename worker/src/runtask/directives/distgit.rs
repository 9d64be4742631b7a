//! `distgit`: fetch files from a dist-git repository (reference/taskotron.md §2.5).
//!
//! ```yaml
//! - name: download the modulemd file
//!   distgit:
//!     package: ${c.name}        # or nvr: ${koji_build} (package, gitref and namespace from it)
//!     gitref: ${c.gitref}       # default master
//!     namespace: modules        # default rpms
//!     baseurl: https://src.fedoraproject.org   # default: config distgit_baseurl
//!     path: [foo.yaml]          # files in the repo
//!     localpath: [download/foo.yaml]           # optional, same length as path
//!     target_dir: ${workdir}    # default ${workdir}
//!     ignore_missing: False     # True: a 404 is skipped
//! ```
//!
//! Returns `{downloaded_files: [...]}`.

use serde_json::{json, Value};

use super::{Directive, DirectiveContext, DirectiveError, Params};
use crate::runtask::remote::{self, distgit, http, nvr::Nevr, yumrepoinfo::RepoInfo};

pub struct DistGit;

impl Directive for DistGit {
    fn name(&self) -> &'static str {
        "distgit"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&[
            "package",
            "nvr",
            "gitref",
            "namespace",
            "path",
            "localpath",
            "target_dir",
            "baseurl",
            "ignore_missing",
        ])?;
        // `nvr` gives package, the branch of its dist tag (fc27 → f27, rawhide → master) and
        // namespace rpms; explicit parameters win.
        let (mut package, mut gitref, mut namespace) = (None, None, None);
        if let Some(nvr) = p.opt_str("nvr")? {
            let parsed = Nevr::parse(&nvr).ok_or_else(|| {
                DirectiveError::param("nvr", format!("'{nvr}' is not a name-version-release"))
            })?;
            let branch = parsed.dist_tag().map(|d| d.replace('c', ""));
            gitref = branch.map(|b| {
                if Some(&b) == rawhide_tag(ctx).as_ref() {
                    "master".to_string()
                } else {
                    b
                }
            });
            package = Some(parsed.name);
            namespace = Some("rpms".to_string());
        }
        let package = match p.opt_str("package")?.or(package) {
            Some(pkg) => pkg,
            None => {
                return Err(DirectiveError::param(
                    "package/nvr",
                    "one of them is required",
                ))
            }
        };
        if p.get("path").is_none() {
            return Err(DirectiveError::param("path", "missing (required)"));
        }
        let paths = p.str_list("path")?;
        let localpaths = match p.get("localpath") {
            None => paths.clone(),
            Some(_) => p.str_list("localpath")?,
        };
        if paths.len() != localpaths.len() {
            return Err(DirectiveError::param(
                "localpath",
                format!(
                    "has {} entries but path has {}; they must be of the same length",
                    localpaths.len(),
                    paths.len()
                ),
            ));
        }
        let repo = distgit::Repo {
            baseurl: p
                .opt_str("baseurl")?
                .unwrap_or_else(|| ctx.config.distgit_baseurl.clone()),
            namespace: p
                .opt_str("namespace")?
                .or(namespace)
                .unwrap_or_else(|| "rpms".into()),
            package,
            gitref: p
                .opt_str("gitref")?
                .or(gitref)
                .unwrap_or_else(|| "master".into()),
        };
        let ignore_missing = p.bool_or("ignore_missing", false)?;
        let target_dir = match p.opt_str("target_dir")? {
            Some(t) => ctx.task_path(&t),
            None => ctx.workdir.to_path_buf(),
        };
        let files: Vec<_> = paths
            .iter()
            .zip(localpaths.iter().map(|l| target_dir.join(l)))
            .map(|(path, dest)| (remote::rewrite_url(ctx.config, &repo.raw_url(path)), dest))
            .collect();
        tracing::info!(
            repo = %format!("{}/{}#{}", repo.namespace, repo.package, repo.gitref),
            count = files.len(),
            "distgit"
        );
        let settings = remote::settings(ctx.config);
        let got = remote::run(async {
            let client = http::client(&settings)?;
            distgit::fetch_files(&client, &settings, &files, ignore_missing).await
        })?;
        let list: Vec<String> = got.iter().map(|p| p.display().to_string()).collect();
        Ok(json!({ "downloaded_files": list }))
    }
}

/// Rawhide's Koji tag from yumrepoinfo.conf, if that file is there.
fn rawhide_tag(ctx: &DirectiveContext<'_>) -> Option<String> {
    let info = RepoInfo::load(&ctx.config.yumrepoinfo).ok()?;
    info.get("rawhide", "tag", "x86_64").ok()
}
