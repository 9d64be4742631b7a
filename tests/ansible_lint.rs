//! The Ansible roles and playbooks pass `ansible-lint` (production profile, offline) and
//! `ansible-playbook --syntax-check` with the example and the local test inventories.

mod ansible_support;
mod util;

use ansible_support::ansible::{ansible_command, tail};

#[test]
fn ansible_lint_is_clean() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = ansible_command("ansible-lint", scratch.path())
        .args(["--offline", "--nocolor"])
        .output()
        .expect("run ansible-lint");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ansible-lint failed:\n{}\n{}",
        tail(&stdout, 80),
        tail(&stderr, 80)
    );
    assert!(
        stderr.contains("Passed") || stdout.contains("Passed"),
        "ansible-lint did not report a pass:\n{stdout}\n{stderr}"
    );
}

#[test]
fn syntax_check_with_every_inventory() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let inventories: [&[&str]; 2] = [
        &["-i", "inventory.example"],
        &[
            "-i",
            "tests/inventory.local.yml",
            "-i",
            "tests/inventory.local-extra.yml",
            "-e",
            "@tests/local-vars.yml",
        ],
    ];
    for args in inventories {
        let out = ansible_command("ansible-playbook", scratch.path())
            .arg("--syntax-check")
            .args(args)
            .arg("site.yml")
            .output()
            .expect("run ansible-playbook --syntax-check");
        assert!(
            out.status.success(),
            "syntax check with {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every host of the example inventory gets a complete, consistent set of variables: the
/// inventory lists the groups site.yml plays on, and the worker names are unique.
#[test]
fn example_inventory_has_the_three_groups() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = ansible_command("ansible-inventory", scratch.path())
        .args(["-i", "inventory.example", "--list"])
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inventory JSON");
    for group in ["taskotron_master", "buildslaves", "taskotron_trigger"] {
        let hosts = inv[group]["hosts"].as_array();
        assert!(
            hosts.is_some_and(|h| !h.is_empty()),
            "group {group} is empty in inventory.example"
        );
    }
    let mut names = vec![];
    for host in inv["buildslaves"]["hosts"].as_array().unwrap() {
        let workers = &inv["_meta"]["hostvars"][host.as_str().unwrap()]["taskotron_workers"];
        for w in workers.as_array().expect("taskotron_workers list") {
            names.push(w["name"].as_str().expect("worker name").to_string());
        }
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(count, names.len(), "duplicate worker names: {names:?}");
    assert!(count >= 2, "the example shows several workers per host");
}
