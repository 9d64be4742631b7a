//! What an item may look like for its item type.
//!
//! runtask substitutes the item into formulas the way libtaskotron did (`${koji_build}`), and
//! real formulas put it into shell strings (`shell: [sh, -c, "echo ${koji_build}"]`). An item
//! from the bus or the change hook is untrusted, so the trigger, the master's change hook and
//! `runtask -i` accept only items that are valid for their type: every grammar below leaves out
//! the shell's metacharacters, whitespace and a leading `-`. A task that really needs other
//! items can opt out (master: `trust_items: true` on the task; runtask: `--trust-item`).

/// Longest item accepted, any type.
pub const MAX_ITEM_LEN: usize = 1000;

/// Why an item is refused: names the type and what it must look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {item:?} is not a valid {item_type}: expected {expected}")]
pub struct ItemError {
    pub item: String,
    pub item_type: String,
    pub expected: &'static str,
}

/// Checks `item` against the grammar of `item_type`.
pub fn check(item_type: &str, item: &str) -> Result<(), ItemError> {
    let (ok, expected) = match item_type {
        "koji_build" => (
            is_nvr(item),
            "an NVR, name-version-release (letters, digits and ._+~^; the name may contain -), e.g. bash-5.2.26-3.fc40",
        ),
        "koji_tag" => (
            is_word(item, b"._+-"),
            "a Koji tag name (letters, digits and ._+-), e.g. f40-updates-testing-pending",
        ),
        "bodhi_update" => (
            // Bodhi 1 titles list the NVRs; each word is an NVR, so word splitting in a shell
            // only ever yields NVRs.
            is_bodhi_alias(item) || (!item.is_empty() && item.split([',', ' ']).all(is_nvr)),
            "a Bodhi update alias such as FEDORA-2024-1a2b3c4d5e (or a Bodhi 1 title: NVRs separated by commas or single spaces)",
        ),
        "compose" | "pull_request" => (
            is_url(item),
            "an http(s) URL (letters, digits and ._~%/+=,:@- in the path; no query string)",
        ),
        "dist_git_commit" => (
            is_repo_at_sha(item),
            "namespace/repo#sha (letters, digits and ._+- in the names, a 7-64 digit hex sha), e.g. rpms/bash#0123abc",
        ),
        "git_commit" => (
            is_git_commit(item),
            "repo#sha or repo#branch#sha, the repo an http(s) URL or namespace/repo, the sha 7-64 hex digits",
        ),
        "docker_image" => (
            is_word(item, b"._/:@+-"),
            "a registry reference (letters, digits and ._/:@+-), e.g. registry.fedoraproject.org/fedora:40",
        ),
        "module_build" => (
            is_word(item, b"._+:-"),
            "a module NSVC (letters, digits and ._+:-), e.g. nodejs-20-4020240101-abcdef12",
        ),
        _ => (
            is_word(item, b"._+~^:@/#=,%-"),
            "letters, digits and ._+~^:@/#=,%- (not starting with one of them), for an item type without a grammar of its own",
        ),
    };
    if ok && item.len() <= MAX_ITEM_LEN {
        Ok(())
    } else {
        Err(ItemError {
            item: item.chars().take(200).collect(),
            item_type: item_type.to_string(),
            expected,
        })
    }
}

/// Starts with a letter or digit; the rest letters, digits or `extra`.
fn is_word(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Koji's NVR: the last two `-` separate version and release.
fn is_nvr(s: &str) -> bool {
    let mut parts = s.rsplitn(3, '-');
    let (Some(release), Some(version), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    is_word(name, b"._+-") && is_word(version, b"._+~^") && is_word(release, b"._+~^")
}

/// `FEDORA-2024-1a2b3c4d5e`, `FEDORA-EPEL-2024-…`, `FEDORA-MODULAR-2019-…`.
fn is_bodhi_alias(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        && parts[parts.len() - 2].len() == 4
        && parts[parts.len() - 2].bytes().all(|c| c.is_ascii_digit())
        && is_hex(parts[parts.len() - 1], 1, 64)
}

fn is_hex(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// `http(s)://host[:port][/path]`, nothing a shell would act on.
fn is_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    is_word(host, b".-")
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
        && path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._~%/+=,:@-".contains(&c))
}

/// `namespace/repo` (one or more `/`-separated names).
fn is_repo_path(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() >= 2 && parts.iter().all(|p| is_word(p, b"._+-"))
}

/// `namespace/repo#sha`.
fn is_repo_at_sha(s: &str) -> bool {
    match s.split_once('#') {
        Some((repo, sha)) => is_repo_path(repo) && is_hex(sha, 7, 64),
        None => false,
    }
}

/// `repo#sha` or `repo#branch#sha`; the repo a URL or a namespace/repo path.
fn is_git_commit(s: &str) -> bool {
    let parts: Vec<&str> = s.split('#').collect();
    let repo_ok = |r: &str| is_url(r) || is_repo_path(r);
    match parts.as_slice() {
        [repo, sha] => repo_ok(repo) && is_hex(sha, 7, 64),
        [repo, branch, sha] => repo_ok(repo) && is_word(branch, b"._/+-") && is_hex(sha, 7, 64),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Values an attacker would send: each must be refused for every type.
    const HOSTILE: &[&str] = &[
        "$(touch /tmp/pwned)",
        "a;touch /tmp/pwned",
        "`id`",
        "a|b",
        "a&&b",
        "a b",
        "a\nb",
        "--help",
        "-rf",
        "a>b",
        "a<b",
        "'a'",
        "\"a\"",
        "a\\b",
        "*",
        "a?b",
        "${HOME}",
        "",
        "bash-5.0-1.fc32;id",
        "https://example.com/$(id)",
        "https://example.com/a?x=1&y=2",
        "rpms/bash#0123abc;id",
    ];

    const TYPES: &[&str] = &[
        "koji_build",
        "koji_tag",
        "bodhi_update",
        "compose",
        "pull_request",
        "dist_git_commit",
        "git_commit",
        "docker_image",
        "module_build",
        "some_new_type",
    ];

    #[test]
    fn hostile_values_are_refused_for_every_type() {
        for t in TYPES {
            for v in HOSTILE {
                let e = check(t, v).expect_err(&format!("{t}: {v:?} accepted"));
                assert!(e.to_string().contains(t), "{e}");
            }
        }
        assert!(check("koji_build", &format!("a-1-{}", "1".repeat(1000))).is_err());
    }

    #[test]
    fn good_values_pass() {
        for (t, v) in [
            ("koji_build", "bash-5.2.26-3.fc40"),
            ("koji_build", "python-ply-3.9-4.module_bd16c34d"),
            ("koji_build", "chromium-80.0.3987.132-1.fc33"),
            ("koji_build", "gcc-c++-14.1.1-1.fc41"),
            ("koji_build", "vim-9.1.0~rc1-1.fc41"),
            ("koji_build", "foo-1-1"),
            ("koji_tag", "f32-updates-testing-pending"),
            ("bodhi_update", "FEDORA-2021-53a7dfa185"),
            ("bodhi_update", "FEDORA-EPEL-2024-0123abcdef"),
            ("bodhi_update", "bash-5.0-1.fc30,zsh-5.8-1.fc30"),
            (
                "bodhi_update",
                "gnome-settings-daemon-3.6.1-1.fc18 control-center-3.6.1-1.fc18",
            ),
            (
                "compose",
                "https://kojipkgs.fedoraproject.org/compose/Fedora-Rawhide-20200201.n.0/compose",
            ),
            ("compose", "http://127.0.0.1:8080/compose/x"),
            (
                "pull_request",
                "https://github.com/fedora-infra/bodhi/pull/1234",
            ),
            (
                "dist_git_commit",
                "rpms/php-simplepie#81e09b9c83e8550b54a64c7bdb4e5d7b534df058",
            ),
            ("dist_git_commit", "modules/testmodule#0123abc"),
            (
                "git_commit",
                "https://pagure.io/taskotron/task-x#master#0123abcdef",
            ),
            ("git_commit", "fork/user/repo#0123abc"),
            (
                "docker_image",
                "registry.fedoraproject.org/f33/httpd:latest",
            ),
            ("docker_image", "quay.io/fedora/fedora@sha256:0123abcd"),
            ("module_build", "nodejs-20-4020240101-abcdef12"),
            ("yum_repository", "fedora-40-x86_64"),
        ] {
            assert_eq!(check(t, v), Ok(()), "{t}: {v}");
        }
    }

    #[test]
    fn wrong_shapes_are_refused_with_the_grammar() {
        for (t, v) in [
            ("koji_build", "bash"),
            ("koji_build", "bash-5.0"),
            ("koji_build", "bash--1"),
            ("bodhi_update", "FEDORA-2021"),
            ("compose", "ftp://example.com/x"),
            ("compose", "https://"),
            ("dist_git_commit", "rpms/bash"),
            ("dist_git_commit", "bash#0123abc"),
            ("dist_git_commit", "rpms/bash#xyz"),
            ("git_commit", "https://pagure.io/x#a#b#0123abc"),
        ] {
            let e = check(t, v).expect_err(&format!("{t}: {v:?} accepted"));
            assert!(e.to_string().contains("expected"), "{e}");
        }
        let e = check("koji_build", "a;b").unwrap_err().to_string();
        assert!(
            e.contains("koji_build") && e.contains("name-version-release"),
            "{e}"
        );
    }
}
