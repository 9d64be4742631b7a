//! The bundled `libtaskotron` compatibility package, embedded in the binary.
//!
//! Task code does `from libtaskotron import check`. The package's files are compiled into
//! runtask (so a binary copied anywhere, e.g. by Ansible, still has them) and written once per
//! run to `<workdir>/.runtask-python/`, which the `python` directive puts first on `PYTHONPATH`.
//! `TASKOTRON_PYTHONPATH`, when set, is a directory used instead (for developing the package).

use std::path::{Path, PathBuf};

/// (path inside the package dir, content)
const FILES: &[(&str, &str)] = &[
    (
        "libtaskotron/__init__.py",
        include_str!("../../python/libtaskotron/__init__.py"),
    ),
    (
        "libtaskotron/check.py",
        include_str!("../../python/libtaskotron/check.py"),
    ),
    (
        "libtaskotron/exceptions.py",
        include_str!("../../python/libtaskotron/exceptions.py"),
    ),
    (
        "libtaskotron/_shim.py",
        include_str!("../../python/libtaskotron/_shim.py"),
    ),
];

/// Environment variable naming a directory that holds `libtaskotron/` (overrides the embedded copy).
pub const ENV_OVERRIDE: &str = "TASKOTRON_PYTHONPATH";

/// Makes sure the package is available and returns the directory to put on `PYTHONPATH`.
pub fn package_dir(workdir: &Path) -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_OVERRIDE) {
        return Ok(PathBuf::from(dir));
    }
    let dir = workdir.join(".runtask-python");
    for (rel, content) in FILES {
        let path = dir.join(rel);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
    }
    Ok(dir)
}
