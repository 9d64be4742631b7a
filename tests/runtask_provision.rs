//! `environment.rpm` provisioning for real: two tiny noarch RPMs built with rpmbuild, a repo
//! made with createrepo_c, and dnf installing into a temp `--installroot` (no network).

mod runtask_support;
mod util;

use runtask_support::{build_rpm, createrepo, TaskDir};

/// Config whose rpm/dnf commands work on `<tmp>/root` with the local repo only.
fn provision_config(t: &TaskDir, allow_install: bool) -> String {
    let root = t.root().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let repo = t.root().join("repo");
    let r = root.display();
    format!(
        "provision:\n  allow_install: {allow_install}\n  rpm_query: [rpm, -q, --root, '{r}', --whatprovides]\n  dnf_install: [dnf, -y, '--installroot={r}', --releasever=1, '--setopt=reposdir=/dev/null', '--repofrompath=t,file://{}', --repo=t, --nogpgcheck, '--setopt=cachedir={r}/cache', '--setopt=install_weak_deps=False', install]\n",
        repo.display()
    )
}

fn setup() -> TaskDir {
    let t = TaskDir::new();
    let repo = t.root().join("repo");
    let work = t.root().join("rpmwork");
    std::fs::create_dir_all(&work).unwrap();
    build_rpm(&work, &repo, "tt-alpha", "1.0");
    build_rpm(&work, &repo, "tt-beta", "2.0");
    createrepo(&repo);
    t
}

fn formula(rpms: &str) -> String {
    format!(
        "name: prov\ndesc: d\nmaintainer: m\nenvironment:\n  rpm: {rpms}\nactions:\n  - name: a\n    dummy: {{result: PASS}}\n"
    )
}

fn installed(t: &TaskDir, name: &str) -> bool {
    std::process::Command::new("rpm")
        .args(["-q", "--root"])
        .arg(t.root().join("root"))
        .arg(name)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn installs_missing_rpms_with_dnf_into_an_installroot() {
    let t = setup();
    t.config(&provision_config(&t, false));
    t.write(
        "runtask.yml",
        &formula("[tt-alpha, /usr/share/tt-beta/marker]"),
    );

    // Not allowed without --local / allow_install: the error lists what is missing.
    let out = t.run("p1", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.last_line().ends_with("runtask.yml: environment.rpm: missing RPM dependencies: tt-alpha, /usr/share/tt-beta/marker (installing them needs --local or provision.allow_install: true)"),
        "{}",
        out.last_line()
    );
    assert!(!installed(&t, "tt-alpha"));

    // --local approves the installation: both get installed (one by file path).
    let out = t.run("p2", &["--local"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(installed(&t, "tt-alpha") && installed(&t, "tt-beta"));
    assert!(t.root().join("root/usr/share/tt-alpha/marker").exists());

    // Everything present now: no dnf call at all.
    let out = t.run("p3", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("all RPM dependencies are installed"));
    assert!(!out.log().contains("installing missing RPM dependencies"));
}

#[test]
fn a_package_missing_from_the_repo_is_named() {
    let t = setup();
    t.config(&provision_config(&t, true));
    t.write("runtask.yml", &formula("[tt-alpha, tt-gamma]"));
    let out = t.run("p4", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.last_line();
    assert!(
        last.contains(
            "runtask.yml: environment.rpm: installing RPM dependencies tt-alpha, tt-gamma failed"
        ),
        "{last}"
    );
    assert!(last.contains("No match for argument: tt-gamma"), "{last}");
    assert!(!installed(&t, "tt-alpha"), "dnf installs all or nothing");
}
