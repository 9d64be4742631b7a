//! N(E)VR strings: splitting, dropping the epoch, the dist tag, and rpm's version ordering
//! (`rpmvercmp`), used to pick the newest of several builds.

use std::cmp::Ordering;

/// A parsed `name-[epoch:]version-release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nevr {
    pub name: String,
    pub epoch: Option<String>,
    pub version: String,
    pub release: String,
}

impl Nevr {
    /// Parses `foo-1.0-1.fc27` or `foo-2:1.0-1.fc27`; None if it has fewer than three parts.
    pub fn parse(s: &str) -> Option<Nevr> {
        let (rest, release) = s.rsplit_once('-')?;
        let (name, ev) = rest.rsplit_once('-')?;
        if name.is_empty() || ev.is_empty() || release.is_empty() {
            return None;
        }
        let (epoch, version) = match ev.split_once(':') {
            Some((e, v)) => (Some(e.to_string()), v.to_string()),
            None => (None, ev.to_string()),
        };
        Some(Nevr {
            name: name.to_string(),
            epoch,
            version,
            release: release.to_string(),
        })
    }

    /// `name-version-release` (epoch dropped: Koji builds are looked up by NVR).
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// The Fedora dist tag in the release (`fc27` in `1.fc27`), if any.
    pub fn dist_tag(&self) -> Option<String> {
        self.release.split('.').find_map(|part| {
            let digits = part.strip_prefix("fc")?;
            (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
                .then(|| part.to_string())
        })
    }
}

/// rpm's `rpmvercmp` for one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let is_sep = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.first().is_some_and(is_sep) {
            a = &a[1..];
        }
        while b.first().is_some_and(is_sep) {
            b = &b[1..];
        }
        // Tilde sorts before everything, even the end of the string.
        match (a.first() == Some(&b'~'), b.first() == Some(&b'~')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        // Caret sorts after the end of the string but before anything else.
        match (a.first() == Some(&b'^'), b.first() == Some(&b'^')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) => {
                return if b.is_empty() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                return if a.is_empty() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {}
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let take = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (la, lb) = (take(a), take(b));
        let (sa, sb) = (&a[..la], &b[..lb]);
        if lb == 0 {
            // Different segment types: numeric is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let ta = trim_zeros(sa);
            let tb = trim_zeros(sb);
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[la..];
        b = &b[lb..];
    }
    a.len().cmp(&b.len())
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n..]
}

/// Orders two N(E)VRs of the same package the way rpm does (epoch, version, release).
pub fn cmp_nevr(a: &Nevr, b: &Nevr) -> Ordering {
    let epoch = |n: &Nevr| {
        n.epoch
            .as_deref()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
    };
    epoch(a)
        .cmp(&epoch(b))
        .then_with(|| rpmvercmp(&a.version, &b.version))
        .then_with(|| rpmvercmp(&a.release, &b.release))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_drops_epoch() {
        let n = Nevr::parse("xchat-0:2.8.8-19.fc19").unwrap();
        assert_eq!(n.name, "xchat");
        assert_eq!(n.epoch.as_deref(), Some("0"));
        assert_eq!(n.nvr(), "xchat-2.8.8-19.fc19");
        assert_eq!(n.dist_tag().as_deref(), Some("fc19"));
        let n = Nevr::parse("python-foo-bar-1.0-1.el7").unwrap();
        assert_eq!(n.name, "python-foo-bar");
        assert_eq!(n.dist_tag(), None);
        assert!(Nevr::parse("nodashes").is_none());
        assert!(Nevr::parse("one-dash").is_none());
    }

    #[test]
    fn rpmvercmp_matches_rpm() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("1.10", "1.9", Greater),
            ("1.0a", "1.0", Greater),
            ("a", "1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("001", "1", Equal),
            ("5.fc27", "10.fc27", Less),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn epoch_wins() {
        let a = Nevr::parse("f-1:1.0-1").unwrap();
        let b = Nevr::parse("f-9.0-1").unwrap();
        assert_eq!(cmp_nevr(&a, &b), Ordering::Greater);
    }
}
