//! The `mirror:` section of the master's config and the list of configured task sources.
//!
//! Every key has a default that works on a single host, so an empty `mirror: {}` (or no section
//! at all) is valid. [`MirrorConfig::validate`] does the checks serde cannot do (globs, names,
//! URL shapes) and names the offending field in its error.

use serde::Deserialize;

use super::error::MirrorError;

/// Settings of the task-repository mirror (`mirror:` in master.yaml).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// Folder under `<data_dir>/mirror/` that holds the configured tasks' mirrors
    /// (Taskotron used `fedoraqa`). Manifest paths are `/<namespace>/<name>.git`.
    pub namespace: String,
    /// Seconds between two periodic refresh passes (0 disables the periodic refresh; webhooks
    /// and `taskotron-master mirror refresh` still work).
    pub refresh_interval: u64,
    /// How many repositories are checked/fetched at the same time.
    pub concurrency: usize,
    /// Seconds a fetch may wait on a silent server (connect: at most 30) before it fails.
    pub fetch_timeout: u64,
    /// Follow mode: URL of an upstream GrokMirror manifest (`http(s)://…/manifest.js.gz` or
    /// `file:///…`). Every repo it lists (after include/exclude) is mirrored at the same path.
    pub upstream_manifest: Option<String>,
    /// Follow mode: base that upstream repo paths are appended to for cloning (GrokMirror's
    /// `[remote] site`). Default: the manifest URL without its file name.
    pub upstream_site: Option<String>,
    /// Follow mode: fnmatch-style globs over manifest paths (`/fedoraqa/*`); default `["*"]`.
    pub include: Vec<String>,
    /// Follow mode: globs over manifest paths that are never mirrored.
    pub exclude: Vec<String>,
    /// URL prefixes that ad-hoc tasks (a job's `git_repo` that is not a configured task) may come
    /// from. Empty: ad-hoc repositories are refused.
    pub adhoc_allow: Vec<String>,
    /// HMAC secret of GitHub push webhooks (`X-Hub-Signature-256`). Unset: GitHub hooks refused.
    pub github_secret: Option<String>,
    /// Token GitLab sends in `X-Gitlab-Token`. Unset: GitLab hooks refused.
    pub gitlab_token: Option<String>,
    /// Pagure project web-hook key (HMAC of `X-Pagure-Signature[-256]`). Unset: refused.
    pub pagure_token: Option<String>,
    /// Token for the generic `{"repo": …}` hook, sent as `Authorization: Bearer <token>` or
    /// `X-Taskotron-Token`. Unset: generic hooks refused.
    pub generic_token: Option<String>,
    /// `owner` published in manifest.js.gz for configured tasks (GrokMirror's gitweb.owner).
    pub owner: Option<String>,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            namespace: "fedoraqa".into(),
            refresh_interval: 60,
            concurrency: 4,
            fetch_timeout: 300,
            upstream_manifest: None,
            upstream_site: None,
            include: vec!["*".into()],
            exclude: Vec::new(),
            adhoc_allow: Vec::new(),
            github_secret: None,
            gitlab_token: None,
            pagure_token: None,
            generic_token: None,
            owner: None,
        }
    }
}

/// One configured task: where its git repository lives and which branch jobs run.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskSource {
    /// Task name (`rpmlint`); also the mirror's file name.
    pub name: String,
    /// git URL (https, git, ssh, file) or absolute local path.
    pub url: String,
    /// Branch whose head a job pins.
    #[serde(default = "default_branch")]
    pub branch: String,
}

fn default_branch() -> String {
    "master".into()
}

/// A name usable as one path component: letters, digits, `.`, `_`, `-`, not starting with `.`,
/// `_` or `-` (leading `_` is reserved for ad-hoc keys).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !s.ends_with(".git")
}

/// True for URL forms libgit2 can fetch: scheme://…, scp-like `user@host:path`, absolute path.
pub fn valid_url(s: &str) -> bool {
    if s.trim() != s || s.is_empty() {
        return false;
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        return matches!(scheme, "http" | "https" | "git" | "ssh" | "file") && !rest.is_empty();
    }
    if s.starts_with('/') {
        return true;
    }
    // scp-like: user@host:path
    matches!(s.split_once(':'), Some((host, path)) if host.contains('@') && !path.is_empty())
}

impl MirrorConfig {
    /// Checks what serde cannot; the error names the field (`mirror.include[1]`, ...).
    pub fn validate(&self) -> Result<(), MirrorError> {
        let bad =
            |field: &str, what: String| MirrorError::Config(format!("mirror.{field}: {what}"));
        if !valid_name(&self.namespace) {
            return Err(bad(
                "namespace",
                format!(
                    "{:?} is not a plain folder name (letters, digits, . _ -)",
                    self.namespace
                ),
            ));
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err(bad("concurrency", "expected a number from 1 to 256".into()));
        }
        if self.fetch_timeout == 0 || self.fetch_timeout > 86_400 {
            return Err(bad(
                "fetch_timeout",
                "expected seconds from 1 to 86400".into(),
            ));
        }
        for (field, globs) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, g) in globs.iter().enumerate() {
                if let Err(e) = globset::Glob::new(g) {
                    return Err(bad(
                        &format!("{field}[{i}]"),
                        format!("bad glob {g:?}: {e}"),
                    ));
                }
            }
        }
        if let Some(u) = &self.upstream_manifest {
            if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:///"))
            {
                return Err(bad(
                    "upstream_manifest",
                    format!("{u:?}: expected an http://, https:// or file:/// URL"),
                ));
            }
        }
        if let Some(s) = &self.upstream_site {
            if !valid_url(s) {
                return Err(bad(
                    "upstream_site",
                    format!("{s:?} is not a git URL or absolute path"),
                ));
            }
        }
        for (i, p) in self.adhoc_allow.iter().enumerate() {
            if !valid_url(p) {
                return Err(bad(
                    &format!("adhoc_allow[{i}]"),
                    format!("{p:?}: expected a URL prefix such as https://pagure.io/taskotron/"),
                ));
            }
        }
        for (field, v) in [
            ("github_secret", &self.github_secret),
            ("gitlab_token", &self.gitlab_token),
            ("pagure_token", &self.pagure_token),
            ("generic_token", &self.generic_token),
        ] {
            if v.as_deref().is_some_and(str::is_empty) {
                return Err(bad(
                    field,
                    "empty secret; remove the key to disable that hook".into(),
                ));
            }
        }
        Ok(())
    }

    /// The follow-mode clone base: `upstream_site`, else the manifest URL minus its file name.
    pub fn upstream_site(&self) -> Option<String> {
        if let Some(s) = &self.upstream_site {
            return Some(s.trim_end_matches('/').to_string());
        }
        let m = self.upstream_manifest.as_ref()?;
        let base = m.rsplit_once('/').map(|(b, _)| b).unwrap_or(m);
        Some(base.strip_prefix("file://").unwrap_or(base).to_string())
    }
}

/// Checks the configured task list: valid unique names and fetchable URLs.
pub fn validate_tasks(tasks: &[TaskSource]) -> Result<(), MirrorError> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tasks.iter().enumerate() {
        let field = format!("tasks[{i}]");
        if !valid_name(&t.name) {
            return Err(MirrorError::Config(format!(
                "{field}.name: {:?} is not a plain name (letters, digits, . _ -; no .git suffix)",
                t.name
            )));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(MirrorError::Config(format!(
                "{field}.name: duplicate task {:?}",
                t.name
            )));
        }
        if !valid_url(&t.url) {
            return Err(MirrorError::Config(format!(
                "{field}.url: {:?} is not a git URL (https/git/ssh/file) or absolute path",
                t.url
            )));
        }
        if !git2::Reference::is_valid_name(&format!("refs/heads/{}", t.branch)) {
            return Err(MirrorError::Config(format!(
                "{field}.branch: {:?} is not a valid branch name",
                t.branch
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let e = serde_yaml_ng::from_str::<MirrorConfig>("refresh_intervall: 5\n").unwrap_err();
        assert!(e.to_string().contains("refresh_intervall"), "{e}");
    }

    #[test]
    fn defaults_and_validation() {
        let c: MirrorConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert_eq!(c, MirrorConfig::default());
        c.validate().unwrap();
        let c = MirrorConfig {
            include: vec!["[".into()],
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("mirror.include[0]"));
        let c = MirrorConfig {
            github_secret: Some(String::new()),
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("github_secret"));
    }

    #[test]
    fn urls_and_names() {
        assert!(valid_url("https://pagure.io/taskotron/task-rpmlint.git"));
        assert!(valid_url("git@github.com:fedoraqa/rpmlint.git"));
        assert!(valid_url("/srv/git/rpmlint"));
        assert!(!valid_url("relative/path"));
        assert!(!valid_url("ftp://x/y"));
        assert!(valid_name("task-rpmlint_2.x"));
        assert!(!valid_name("../x"));
        assert!(!valid_name("_adhoc"));
        assert!(!valid_name("x.git"));
    }

    #[test]
    fn upstream_site_default() {
        let c = MirrorConfig {
            upstream_manifest: Some("http://h/grok/manifest.js.gz".into()),
            ..Default::default()
        };
        assert_eq!(c.upstream_site().as_deref(), Some("http://h/grok"));
        let c = MirrorConfig {
            upstream_manifest: Some("file:///srv/origin/manifest.js.gz".into()),
            ..Default::default()
        };
        assert_eq!(c.upstream_site().as_deref(), Some("/srv/origin"));
    }

    #[test]
    fn tasks_checked() {
        let t = |n: &str, u: &str| TaskSource {
            name: n.into(),
            url: u.into(),
            branch: "main".into(),
        };
        validate_tasks(&[t("a", "/x"), t("b", "https://h/b.git")]).unwrap();
        assert!(validate_tasks(&[t("a", "/x"), t("a", "/y")])
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        assert!(validate_tasks(&[t("a", "x")])
            .unwrap_err()
            .to_string()
            .contains("tasks[0].url"));
    }
}
