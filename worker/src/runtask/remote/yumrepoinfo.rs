//! `yumrepoinfo.conf`: Fedora's description of its YUM repositories (an INI file read with
//! Python's ConfigParser: a `[DEFAULT]` section, `%(key)s` interpolation, an implicit `arch`
//! default). Each section is a repo with `url`, `tag` (its Koji tag) and `parent`; the
//! yumrepoinfo directive walks from a tag up through the parents.

use std::collections::BTreeMap;
use std::path::Path;

/// A problem with the config file or a lookup in it.
#[derive(Debug, thiserror::Error)]
pub enum RepoInfoError {
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("yumrepoinfo: section [{section}] key '{key}': {message}")]
    Value {
        section: String,
        key: String,
        message: String,
    },
    #[error("yumrepoinfo: repo with tag '{0}' not found")]
    UnknownTag(String),
    #[error("yumrepoinfo: parent loop through [{0}]")]
    Loop(String),
}

/// The parsed file, before interpolation.
#[derive(Debug, Clone, Default)]
pub struct RepoInfo {
    defaults: BTreeMap<String, String>,
    /// Sections in file order.
    sections: Vec<(String, BTreeMap<String, String>)>,
}

/// Interpolation depth limit (ConfigParser's MAX_INTERPOLATION_DEPTH).
const MAX_DEPTH: usize = 10;

impl RepoInfo {
    pub fn load(path: &Path) -> Result<RepoInfo, RepoInfoError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RepoInfoError::Read {
            file: file.clone(),
            source,
        })?;
        RepoInfo::parse(&text, &file)
    }

    /// Parses INI text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<RepoInfo, RepoInfoError> {
        let mut info = RepoInfo::default();
        // Which map receives keys: None = DEFAULT, Some(i) = sections[i].
        let mut current: Option<Option<usize>> = None;
        let mut last_key: Option<String> = None;
        let syntax = |line: usize, message: &str| RepoInfoError::Syntax {
            file: file.to_string(),
            line,
            message: message.to_string(),
        };
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                if trimmed.is_empty() {
                    last_key = None;
                }
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                // Continuation of the previous value.
                let key = last_key
                    .clone()
                    .ok_or_else(|| syntax(lineno, "indented line does not continue a value"))?;
                let map = info.map_mut(current.flatten());
                if let Some(v) = map.get_mut(&key) {
                    v.push('\n');
                    v.push_str(trimmed);
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[') {
                let name = name
                    .strip_suffix(']')
                    .ok_or_else(|| syntax(lineno, "section header lacks ']'"))?
                    .trim();
                if name == "DEFAULT" {
                    current = Some(None);
                } else if info.sections.iter().any(|(n, _)| n == name) {
                    return Err(syntax(lineno, &format!("duplicate section [{name}]")));
                } else {
                    info.sections.push((name.to_string(), BTreeMap::new()));
                    current = Some(Some(info.sections.len() - 1));
                }
                last_key = None;
                continue;
            }
            let Some(target) = current else {
                return Err(syntax(lineno, "key outside of any [section]"));
            };
            let pos = trimmed
                .find(['=', ':'])
                .ok_or_else(|| syntax(lineno, "expected 'key = value'"))?;
            let key = trimmed[..pos].trim().to_ascii_lowercase();
            if key.is_empty() {
                return Err(syntax(lineno, "empty key"));
            }
            let value = trimmed[pos + 1..].trim().to_string();
            info.map_mut(target).insert(key.clone(), value);
            last_key = Some(key);
        }
        Ok(info)
    }

    fn map_mut(&mut self, which: Option<usize>) -> &mut BTreeMap<String, String> {
        match which {
            None => &mut self.defaults,
            Some(i) => &mut self.sections[i].1,
        }
    }

    /// Repo (section) names in file order.
    pub fn repos(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    fn raw(&self, section: &str, key: &str) -> Option<&String> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .and_then(|(_, m)| m.get(key))
            .or_else(|| self.defaults.get(key))
    }

    /// The interpolated value of `key` in `section` for `arch` (a base arch). Mirrors
    /// libtaskotron's baseurl switch: for an arch in the repo's `alternate_arches`, `baseurl`
    /// means `baseurl_altarch`.
    pub fn get(&self, section: &str, key: &str, arch: &str) -> Result<String, RepoInfoError> {
        self.lookup(section, key, arch, 0)
    }

    fn lookup(
        &self,
        section: &str,
        key: &str,
        arch: &str,
        depth: usize,
    ) -> Result<String, RepoInfoError> {
        let err = |message: String| RepoInfoError::Value {
            section: section.to_string(),
            key: key.to_string(),
            message,
        };
        if depth > MAX_DEPTH {
            return Err(err("interpolation too deep (a loop?)".into()));
        }
        let key = if key == "baseurl" && self.is_alternate(section, arch) {
            "baseurl_altarch"
        } else {
            key
        };
        let raw = match self.raw(section, key) {
            Some(v) => v.clone(),
            None if key == "arch" => arch.to_string(),
            None => return Err(err("no such key".into())),
        };
        let mut out = String::new();
        let mut rest = raw.as_str();
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push('%');
                rest = r;
            } else if let Some(r) = after.strip_prefix('(') {
                let end = r
                    .find(")s")
                    .ok_or_else(|| err(format!("bad interpolation syntax in {raw:?}")))?;
                let name = r[..end].to_ascii_lowercase();
                out.push_str(&self.lookup(section, &name, arch, depth + 1)?);
                rest = &r[end + 2..];
            } else {
                return Err(err(format!(
                    "'%' must be followed by '%' or '(' in {raw:?}"
                )));
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn is_alternate(&self, section: &str, arch: &str) -> bool {
        self.raw(section, "alternate_arches")
            .is_some_and(|v| v.split(',').any(|a| a.trim() == arch))
    }

    /// The repo whose `tag` is `tag` (a `-candidate` suffix is ignored, as libtaskotron does).
    pub fn repo_by_tag(&self, tag: &str, arch: &str) -> Result<Option<String>, RepoInfoError> {
        let tag = tag.strip_suffix("-candidate").unwrap_or(tag);
        for name in self.repos() {
            if self.get(name, "tag", arch)? == tag {
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }

    /// `{repo name: url}` for the repo of `koji_tag` and all its parents, for one base arch.
    /// `-pending` is stripped; `rawhide` means the rawhide section's tag.
    pub fn repos_for_tag(
        &self,
        koji_tag: &str,
        arch: &str,
    ) -> Result<BTreeMap<String, String>, RepoInfoError> {
        let mut tag = koji_tag
            .strip_suffix("-pending")
            .unwrap_or(koji_tag)
            .to_string();
        if tag == "rawhide" {
            tag = self.get("rawhide", "tag", arch)?;
        }
        let mut out = BTreeMap::new();
        let mut repo = self
            .repo_by_tag(&tag, arch)?
            .ok_or_else(|| RepoInfoError::UnknownTag(tag.clone()))?;
        loop {
            if out.contains_key(&repo) {
                return Err(RepoInfoError::Loop(repo));
            }
            out.insert(repo.clone(), self.get(&repo, "url", arch)?);
            let parent = self.get(&repo, "parent", arch).unwrap_or_default();
            if parent.is_empty() {
                break;
            }
            if !self.repos().any(|r| r == parent) {
                return Err(RepoInfoError::Value {
                    section: repo,
                    key: "parent".into(),
                    message: format!("names unknown repo [{parent}]"),
                });
            }
            repo = parent;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "\
# Fedora-like
[DEFAULT]
baseurl = http://mirror.example/pub/fedora/linux
baseurl_altarch = http://mirror.example/pub/fedora-secondary
goldurl = %(baseurl)s/releases/%(path)s/Everything/%(arch)s/os
updatesurl = %(baseurl)s/updates/%(path)s/%(arch)s
rawhideurl = %(baseurl)s/%(path)s/%(arch)s/os
primary_arches = armhfp, x86_64
alternate_arches = aarch64, i386, ppc64le
parent =
tag =
release_status =

[rawhide]
url = %(rawhideurl)s
path = development/rawhide
tag = f28
release_status = rawhide

[f27]
url = %(goldurl)s
path = 27
tag = f27
release_status = stable

[f27-updates]
url = %(updatesurl)s
path = 27
parent = f27
tag = f27-updates

[f27-updates-testing]
url = %(updatesurl)s
path = testing/27
parent = f27-updates
tag = f27-updates-testing
";

    #[test]
    fn walks_parents_and_strips_pending() {
        let info = RepoInfo::parse(CONF, "t.conf").unwrap();
        let got = info
            .repos_for_tag("f27-updates-testing-pending", "x86_64")
            .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got["f27"],
            "http://mirror.example/pub/fedora/linux/releases/27/Everything/x86_64/os"
        );
        assert_eq!(
            got["f27-updates-testing"],
            "http://mirror.example/pub/fedora/linux/updates/testing/27/x86_64"
        );
    }

    #[test]
    fn alternate_arch_uses_altarch_baseurl_and_rawhide_alias() {
        let info = RepoInfo::parse(CONF, "t.conf").unwrap();
        let got = info.repos_for_tag("rawhide", "aarch64").unwrap();
        assert_eq!(
            got["rawhide"],
            "http://mirror.example/pub/fedora-secondary/development/rawhide/aarch64/os"
        );
        assert_eq!(info.repos_for_tag("f28", "x86_64").unwrap().len(), 1);
    }

    #[test]
    fn errors_name_file_line_and_tag() {
        let e = RepoInfo::parse("[a]\nno equals sign\n", "x.conf").unwrap_err();
        assert_eq!(e.to_string(), "x.conf:2: expected 'key = value'");
        let info = RepoInfo::parse(CONF, "t.conf").unwrap();
        let e = info.repos_for_tag("f99-updates", "x86_64").unwrap_err();
        assert!(e.to_string().contains("'f99-updates' not found"), "{e}");
        let looped = RepoInfo::parse(
            "[a]\nurl=u\ntag=a\nparent=b\n[b]\nurl=v\ntag=b\nparent=a\n",
            "l",
        )
        .unwrap();
        assert!(matches!(
            looped.repos_for_tag("a", "x86_64"),
            Err(RepoInfoError::Loop(_))
        ));
        let bad = RepoInfo::parse("[a]\nurl=%(nope)s\ntag=a\n", "b").unwrap();
        assert!(bad
            .repos_for_tag("a", "x86_64")
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }
}
