//! Item types (`runtask -t TYPE`), libtaskotron's `ReportType` (reference/taskotron.md §3.3).
//!
//! The variable named after the item type gets the item as its value
//! (`-t koji_build -i foo-1-1.fc25` gives `${koji_build}`). Unknown types are accepted as free
//! strings, as CheckDetail allows custom report types; [`is_known`] tells them apart.

/// The item types libtaskotron knew, in `ReportType.list()` order (alphabetical).
pub const ITEM_TYPES: &[&str] = &[
    "bodhi_update",
    "compose",
    "dist_git_commit",
    "docker_image",
    "git_commit",
    "koji_build",
    "koji_tag",
    "module_build",
    "pull_request",
];

/// True for the item types in [`ITEM_TYPES`].
pub fn is_known(item_type: &str) -> bool {
    ITEM_TYPES.contains(&item_type)
}

/// A usable item type is a variable name (it becomes one in the formula).
pub fn is_valid(item_type: &str) -> bool {
    crate::formula::is_identifier(item_type)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_valid() {
        assert!(super::is_known("koji_build"));
        assert!(!super::is_known("yum_repository"));
        assert!(super::is_valid("yum_repository"));
        assert!(!super::is_valid("koji-build"));
    }
}
