//! Every real Taskotron formula in tests/fixtures/taskotron parses and validates, or is
//! reported as using a directive runtask does not implement (yet) — with exactly the
//! directives that are missing named.

mod util;

use taskotron_common::formula::Formula;
use taskotron_worker::runtask::{directives, runner};

/// The directives each fixture uses, in order of first use (checked precisely).
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "check_modulemd-2016.runtask.yml",
        &["python", "distgit", "shell", "resultsdb"],
    ),
    (
        "check_modulemd.runtask.yml",
        &["shell", "python", "distgit", "resultsdb"],
    ),
    ("csmock.task.yml", &["koji", "python"]),
    (
        "python-versions-2016.runtask.yml",
        &["koji", "python", "resultsdb"],
    ),
    (
        "python-versions.runtask.yml",
        &["koji", "python", "resultsdb"],
    ),
];

#[test]
fn every_fixture_formula_parses_and_validates_or_names_missing_directives() {
    let dir = util::fixtures().join("taskotron");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("trigger") || !name.ends_with(".yml") {
            continue;
        }
        seen += 1;
        let (_, expected) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("new fixture {name}: add it to EXPECTED"));
        let formula = Formula::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(formula.directives(), *expected, "{name}");
        assert!(!formula.name.is_empty() && !formula.maintainer.is_empty());

        let known = directives::names();
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|d| !known.contains(d))
            .collect();
        match runner::check_directives(&formula, &name) {
            Ok(()) => assert!(
                missing.is_empty(),
                "{name}: validated although {missing:?} are not registered"
            ),
            Err(e) => {
                let msg = e.to_string();
                assert!(!missing.is_empty(), "{name}: {msg}");
                for d in &missing {
                    assert!(
                        msg.contains(&format!("`{d}` (actions[")),
                        "{name}: {msg} should name {d}"
                    );
                }
                // Only the missing directives are named as unknown.
                let unknown_part = msg.split("; known directives:").next().unwrap();
                for d in expected.iter().filter(|d| known.contains(d)) {
                    assert!(
                        !unknown_part.contains(&format!("`{d}`")),
                        "{name}: {msg} names {d}"
                    );
                }
                assert!(!msg.contains('\n'));
            }
        }
    }
    assert_eq!(seen, EXPECTED.len());
}

/// The formula-level details the real tasks depend on.
#[test]
fn fixture_details() {
    let dir = util::fixtures().join("taskotron");
    let f = Formula::from_path(&dir.join("check_modulemd.runtask.yml")).unwrap();
    assert_eq!(f.namespace.as_deref(), Some("dist"));
    assert_eq!(f.input_args, ["dist_git_commit"]);
    assert_eq!(f.environment.rpm.len(), 6);
    assert_eq!(f.actions[2].export.as_deref(), Some("c"));
    // The folded `>-` shell command and the ignorereturn form survive parsing.
    assert_eq!(
        f.actions[0].params[0],
        "dnf install -y --enablerepo=updates-testing python2-avocado python2-avocado-plugins-varianter-yaml-to-mux"
    );
    assert!(f.actions[4].params[0]["ignorereturn"][0].is_array());
    let f = Formula::from_path(&dir.join("csmock.task.yml")).unwrap();
    assert_eq!(f.namespace, None);
    assert_eq!(f.actions[0].params["arch"], serde_json::json!(["src"]));
    let f = Formula::from_path(&dir.join("python-versions-2016.runtask.yml")).unwrap();
    assert!(f.desc.starts_with("Download specified Koji build"));
    assert_eq!(f.actions[0].params["src"], false);
}
