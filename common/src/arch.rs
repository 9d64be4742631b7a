//! Architectures, libtaskotron's `arch_utils.Arches` (reference/taskotron.md §3.4).

/// Base architectures (what `-a` and `supported_arches` name).
pub const BASE: &[&str] = &[
    "x86_64", "armhfp", "ppc64le", "aarch64", "ppc64", "s390x", "i386",
];

/// Meta architectures: not machines, but RPM arch values.
pub const META: &[&str] = &["noarch", "src"];

/// The default `supported_arches` of the runtask config.
pub const DEFAULT_SUPPORTED: &[&str] = &["x86_64", "armhfp"];

/// Concrete RPM arches of a base arch: `i386` → i386..i686, `armhfp` → armhfp, armv7hl.
/// Anything else maps to itself.
pub fn binary_arches(base: &str) -> Vec<&str> {
    match base {
        "i386" => vec!["i386", "i486", "i586", "i686"],
        "armhfp" => vec!["armhfp", "armv7hl"],
        other => vec![other],
    }
}

/// The base arch a concrete arch belongs to (`i686` → `i386`, `armv7hl` → `armhfp`).
pub fn base_of(arch: &str) -> &str {
    match arch {
        "i486" | "i586" | "i686" => "i386",
        "armv7hl" => "armhfp",
        other => other,
    }
}

/// True for base and meta arches and their concrete variants.
pub fn is_known(arch: &str) -> bool {
    META.contains(&arch) || BASE.contains(&base_of(arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        assert_eq!(binary_arches("i386"), ["i386", "i486", "i586", "i686"]);
        assert_eq!(binary_arches("x86_64"), ["x86_64"]);
        assert_eq!(base_of("i686"), "i386");
        assert!(is_known("armv7hl") && is_known("noarch") && !is_known("vax"));
    }
}
