//! Which Koji arches a download asks for (libtaskotron's `arch_utils.Arches` and
//! `KojiClient._compute_arches`): `all` means the configured supported arches plus `noarch`, a
//! base arch adds its concrete binary arches (i386 → i386..i686, armhfp → armv7hl), `noarch` is
//! added to any non-empty selection, `src` is included only when asked for, and `arch_exclude`
//! removes arches last.

use std::collections::BTreeSet;

use taskotron_common::arch::{binary_arches, BASE};

/// Whether `arch` is a base arch (`x86_64`, `i386`, ...).
pub fn is_base(arch: &str) -> bool {
    BASE.contains(&arch)
}

/// The arches to query Koji for.
///
/// * `requested`: the directive's `arch` (already a list). An explicit `src` in it is treated
///   like `src: true`: the 2014 csmock formula downloads its SRPM with `arch: [src]`.
/// * `supported`: config `supported_arches`, used for `all`.
pub fn compute(
    requested: &[String],
    exclude: &[String],
    src: bool,
    supported: &[String],
) -> BTreeSet<String> {
    let mut arches: BTreeSet<String> = requested.iter().cloned().collect();
    let mut src = src;
    if arches.remove("src") {
        src = true;
    }
    if !arches.is_empty() {
        arches.insert("noarch".into());
    }
    if arches.remove("all") {
        arches.extend(supported.iter().cloned());
    }
    for arch in arches.clone() {
        if is_base(&arch) {
            arches.extend(binary_arches(&arch).iter().map(|s| s.to_string()));
        }
    }
    if src {
        arches.insert("src".into());
    }
    for ex in exclude {
        arches.remove(ex);
    }
    arches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }
    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_expands_to_supported_plus_noarch() {
        let got = compute(&v(&["all"]), &[], false, &v(&["x86_64", "armhfp"]));
        assert_eq!(got, set(&["x86_64", "armhfp", "armv7hl", "noarch"]));
    }

    #[test]
    fn base_arch_expands_and_src_is_opt_in() {
        let got = compute(&v(&["i386"]), &[], true, &v(&["x86_64"]));
        assert_eq!(got, set(&["i386", "i486", "i586", "i686", "noarch", "src"]));
    }

    #[test]
    fn empty_arch_list_means_srpm_only() {
        assert_eq!(compute(&[], &[], true, &v(&["x86_64"])), set(&["src"]));
        assert!(compute(&[], &[], false, &v(&["x86_64"])).is_empty());
    }

    #[test]
    fn explicit_src_in_arch_list_downloads_srpm() {
        let got = compute(&v(&["src"]), &[], false, &v(&["x86_64"]));
        assert_eq!(got, set(&["src"]));
    }

    #[test]
    fn exclude_wins() {
        let got = compute(&v(&["all"]), &v(&["noarch"]), false, &v(&["x86_64"]));
        assert_eq!(got, set(&["x86_64"]));
    }
}
