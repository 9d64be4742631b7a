//! Real RPMs for the tests, built with `rpmbuild` from generated spec files, and a throw-away
//! rpm database that "has" a formula's `environment.rpm` packages installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A sub-package of a generated spec.
pub struct Sub {
    /// Full package name (`python3-foo`); the main package is the one named like the spec.
    pub name: String,
    pub requires: Vec<String>,
    /// Size of a random payload file (0 = a small text file).
    pub payload: usize,
    /// `BuildArch: noarch` for this sub-package only.
    pub noarch: bool,
}

/// A source package to build.
pub struct Spec {
    pub name: String,
    pub version: String,
    pub release: String,
    pub noarch: bool,
    pub subs: Vec<Sub>,
    pub provides: Vec<String>,
    /// Extra `%install` lines (end up in the SRPM's spec).
    pub install_extra: Vec<String>,
}

impl Spec {
    pub fn new(name: &str, version: &str, release: &str) -> Spec {
        Spec {
            name: name.into(),
            version: version.into(),
            release: release.into(),
            noarch: false,
            subs: Vec::new(),
            provides: Vec::new(),
            install_extra: Vec::new(),
        }
    }

    pub fn sub(mut self, name: &str, requires: &[&str], payload: usize) -> Spec {
        self.subs.push(Sub {
            name: name.into(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            payload,
            noarch: false,
        });
        self
    }

    /// A noarch sub-package of an arch-specific build (like `-doc` packages).
    pub fn noarch_sub(mut self, name: &str) -> Spec {
        self.subs.push(Sub {
            name: name.into(),
            requires: Vec::new(),
            payload: 0,
            noarch: true,
        });
        self
    }

    fn text(&self) -> String {
        let mut s = String::new();
        s.push_str("%global debug_package %{nil}\n%define _binary_payload w0.ufdio\n");
        s.push_str(&format!(
            "Name: {}\nVersion: {}\nRelease: {}\nSummary: test package\nLicense: MIT\n",
            self.name, self.version, self.release
        ));
        if self.noarch {
            s.push_str("BuildArch: noarch\n");
        }
        for p in &self.provides {
            s.push_str(&format!("Provides: {p}\n"));
        }
        let main = self.subs.iter().find(|x| x.name == self.name);
        for r in main.map(|m| m.requires.as_slice()).unwrap_or_default() {
            s.push_str(&format!("Requires: {r}\n"));
        }
        s.push_str("%description\nA package built by the remote directive tests.\n");
        for sub in self.subs.iter().filter(|x| x.name != self.name) {
            s.push_str(&format!(
                "%package -n {}\nSummary: {}\n",
                sub.name, sub.name
            ));
            if sub.noarch {
                s.push_str("BuildArch: noarch\n");
            }
            for r in &sub.requires {
                s.push_str(&format!("Requires: {r}\n"));
            }
            s.push_str(&format!("%description -n {}\n{}\n", sub.name, sub.name));
        }
        s.push_str("%install\n");
        for sub in &self.subs {
            let dir = format!("%{{buildroot}}/usr/share/rt-{}", sub.name);
            s.push_str(&format!("mkdir -p {dir}\n"));
            if sub.payload > 0 {
                s.push_str(&format!(
                    "head -c {} /dev/urandom > {dir}/payload.bin\n",
                    sub.payload
                ));
            } else {
                s.push_str(&format!("echo {} > {dir}/README\n", sub.name));
            }
        }
        for line in &self.install_extra {
            s.push_str(line);
            s.push('\n');
        }
        // The main package always exists in a spec; give it a file if not listed as a sub.
        if main.is_none() {
            s.push_str(&format!(
                "mkdir -p %{{buildroot}}/usr/share/rt-{n}\necho {n} > %{{buildroot}}/usr/share/rt-{n}/README\n",
                n = self.name
            ));
            s.push_str(&format!("%files\n/usr/share/rt-{}\n", self.name));
        }
        for sub in &self.subs {
            if sub.name == self.name {
                s.push_str("%files\n");
            } else {
                s.push_str(&format!("%files -n {}\n", sub.name));
            }
            s.push_str(&format!("/usr/share/rt-{}\n", sub.name));
        }
        s
    }

    /// Builds the SRPM and binary RPMs for `targets` (None = the host arch / noarch) under
    /// `topdir`; returns every RPM file made.
    pub fn build(&self, topdir: &Path, targets: &[Option<&str>]) -> Vec<PathBuf> {
        std::fs::create_dir_all(topdir).unwrap();
        let spec = topdir.join(format!("{}.spec", self.name));
        std::fs::write(&spec, self.text()).unwrap();
        for (i, target) in targets.iter().enumerate() {
            let mut cmd = Command::new("rpmbuild");
            cmd.arg(if i == 0 { "-ba" } else { "-bb" })
                .arg("--define")
                .arg(format!("_topdir {}", topdir.display()));
            if let Some(t) = target {
                cmd.arg("--target").arg(t);
            }
            let out = cmd.arg(&spec).output().expect("run rpmbuild");
            assert!(
                out.status.success(),
                "rpmbuild failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut found = Vec::new();
        for dir in ["RPMS", "SRPMS"] {
            collect(&topdir.join(dir), &mut found);
        }
        found.sort();
        found
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rpm") {
            out.push(p);
        }
    }
}

/// An rpm database under `root` in which one package provides every name in `provides`, so
/// `rpm --root <root> -q --whatprovides <name>` succeeds for a formula's `environment.rpm`.
pub fn env_root(root: &Path, work: &Path, provides: &[&str]) {
    let mut spec = Spec::new("rt-task-env", "1", "1");
    spec.noarch = true;
    spec.provides = provides.iter().map(|s| s.to_string()).collect();
    let rpms = spec.build(&work.join("env-rpm"), &[None]);
    let rpm = rpms
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".noarch.rpm"))
        .expect("env rpm");
    std::fs::create_dir_all(root).unwrap();
    let ok = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("--initdb")
        .status()
        .unwrap();
    assert!(ok.success(), "rpm --initdb");
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-i", "--justdb", "--nodeps", "--noscripts"])
        .arg(rpm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm -i --justdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
