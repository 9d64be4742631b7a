//! End-to-end tests of `runtask` with formulas written for the tests: every directive of
//! issue 2 and every substitution rule, run through the real binary, plus the artifacts layout,
//! exit codes and the config file rules.

mod runtask_support;
mod util;

use runtask_support::{python, TaskDir};
use serde_json::Value;

fn task_with_python() -> TaskDir {
    let t = TaskDir::new();
    t.config(&format!("python: {}\n", python()));
    t
}

const HEAD: &str = "name: t\nnamespace: scratch\ndesc: test\nmaintainer: tester\n";

/// A formula: the test header plus `body`.
fn formula(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn builtins_substitution_and_type_preservation() {
    let t = task_with_python();
    t.write(
        "probe.py",
        r#"
import json, os

def make(item):
    return {"name": item.split("-")[0], "nested": {"deep": [1, 2]}, "flag": True}

def record(out, **kw):
    with open(out, "w") as f:
        json.dump(kw, f, sort_keys=True)
    return "recorded"
"#,
    );
    t.write(
        "runtask.yml",
        &formula(
            r#"input:
  args: [koji_build, extra]
actions:
  - name: make a dict
    python:
      file: probe.py
      callable: make
      item: ${koji_build}
    export: c
  - name: list via shell
    shell:
      - echo one two
    export: words
  - name: record everything
    python:
      file: probe.py
      callable: record
      out: ${artifactsdir}/vars.json
      whole_dict: ${c}
      dotted: ${c.name}
      deep: ${c.nested.deep}
      deep_item: ${c.nested.deep.1}
      flag: $${not_a_var} and $$5
      interpolated: "${c.name}.yaml in $workdir"
      bool_kept: ${c.flag}
      nested:
        list: ["$koji_build", {x: "${arch}"}]
      shell_out: ${words}
      item: $item
      type: $type
      arch: $arch
      jobid: $jobid
      uuid: $uuid
      checkname: $checkname
      task: $task
      taskdir: $taskdir
      namespace: $namespace
      workdir: $workdir
      artifactsdir: $artifactsdir
      extra: $extra
"#,
        ),
    );
    let out = t.run(
        "subst",
        &[
            "-i",
            "foo-1.0-1.fc40",
            "-t",
            "koji_build",
            "-a",
            "x86_64",
            "-j",
            "all/42",
            "--override",
            "extra=E=1",
        ],
    );
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    let vars: Value =
        serde_json::from_str(&std::fs::read_to_string(out.artifacts.join("vars.json")).unwrap())
            .unwrap();
    let task = t.task().canonicalize().unwrap();
    // Exactly one placeholder keeps the value's type: a dict stays a dict, a bool a bool.
    assert_eq!(
        vars["whole_dict"]["nested"]["deep"],
        serde_json::json!([1, 2])
    );
    assert_eq!(vars["dotted"], "foo");
    assert_eq!(vars["deep"], serde_json::json!([1, 2]));
    assert_eq!(vars["deep_item"], 2);
    assert_eq!(vars["bool_kept"], true);
    // $$ is a literal $.
    assert_eq!(vars["flag"], "${not_a_var} and $5");
    let workdir = vars["workdir"].as_str().unwrap();
    assert_eq!(vars["interpolated"], format!("foo.yaml in {workdir}"));
    assert!(
        workdir.starts_with(&t.root().join("tmp").display().to_string()),
        "{workdir}"
    );
    // Recursive into nested params.
    assert_eq!(
        vars["nested"],
        serde_json::json!({"list": ["foo-1.0-1.fc40", {"x": "x86_64"}]})
    );
    assert_eq!(vars["shell_out"], "one two\n");
    // Built-in variables.
    assert_eq!(vars["item"], "foo-1.0-1.fc40");
    assert_eq!(vars["type"], "koji_build");
    assert_eq!(vars["arch"], "x86_64");
    assert_eq!(vars["jobid"], "all/42");
    assert_eq!(vars["uuid"], "subst");
    assert_eq!(vars["checkname"], "t");
    assert_eq!(vars["namespace"], "scratch");
    assert_eq!(
        std::path::Path::new(vars["task"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        task.join("runtask.yml")
    );
    assert_eq!(
        std::path::Path::new(vars["taskdir"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        task
    );
    assert_eq!(vars["artifactsdir"], out.artifacts.display().to_string());
    assert_eq!(vars["extra"], "E=1");
    // The work dir is removed after a run without -d.
    assert!(!std::path::Path::new(workdir).exists());
    // The debug log has every step.
    let log = out.log();
    assert!(log.contains("[3/3] record everything (python)"), "{log}");
    assert!(log.contains("DEBUG"), "{log}");
}

#[test]
fn shell_forms_ignorereturn_and_failure_stops_the_run() {
    let t = TaskDir::new();
    t.write(
        "runtask.yml",
        &formula(
            r#"actions:
  - name: forms
    shell:
      - echo 'quoted  arg' plain
      - [sh, -c, 'echo argv $$0 > out.txt', "${uuid}"]
      - ignorereturn:
          - [sh, -c, 'exit 3']
          - "false"
    export: out
  - name: check export
    shell:
      - [test, "${out}", "=", "quoted  arg plain\n"]
  - name: fail
    shell:
      - [sh, -c, 'echo boom >&2; exit 7']
  - name: never
    shell:
      - touch never.txt
"#,
        ),
    );
    let out = t.run("shell1", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(t.task().join("out.txt")).unwrap(),
        "argv shell1\n"
    );
    assert!(
        !t.task().join("never.txt").exists(),
        "an action after the failure ran"
    );
    let last = out.last_line();
    assert!(
        last.contains("runtask.yml: actions[2] 'fail' (shell): command `sh -c 'echo boom >&2; exit 7'` failed with exit code 7: boom"),
        "{last}"
    );
    assert!(out
        .stderr
        .contains("ended with exit code 3 (ignored: ignorereturn)"));
    assert!(out.log().contains("[err] boom"));
}

/// A task written the way taskotron-python-versions is: CheckDetail, update_outcome,
/// artifact, export_YAML, reported through `resultsdb` and turned into an exit code.
#[test]
fn python_task_with_libtaskotron_shim_like_python_versions() {
    let t = task_with_python();
    t.write(
        "python_versions_check.py",
        r#"
import os
from libtaskotron import check

def run(koji_build, workdir='.', artifactsdir='artifacts'):
    details = []
    two_three = check.CheckDetail(koji_build, check.ReportType.KOJI_BUILD,
                                  checkname='python-versions.two_three')
    two_three.update_outcome('PASSED')
    log = os.path.join(artifactsdir, 'output.log')
    with open(log, 'w') as f:
        f.write('both python2 and python3\n')
    two_three.artifact = log
    two_three.update_outcome('FAILED')
    two_three.update_outcome('INFO')       # less severe: ignored
    two_three.note = 'depends on both'
    two_three.keyvals = {'arch': 'noarch', 'rpms': ['a', 'b']}
    details.append(two_three)
    naming = check.CheckDetail(koji_build, check.ReportType.KOJI_BUILD, outcome='PASSED',
                               checkname='python-versions.naming_scheme')
    details.append(naming)
    assert check.CheckDetail.create_multi_item_summary(details) == '1 PASSED, 1 FAILED'
    back = check.import_YAML(check.export_YAML(details))
    assert [d.outcome for d in back] == ['FAILED', 'PASSED'], back
    print('checked %d things' % len(details))
    return check.export_YAML(details)
"#,
    );
    t.write(
        "runtask.yml",
        "name: python-versions\nnamespace: dist\ndesc: |\n  multi line\n  description\nmaintainer: churchyard\ninput:\n    args:\n        - koji_build\nactions:\n    - name: check each rpm for python dependencies\n      python:\n          file: python_versions_check.py\n          callable: run\n          workdir: ${workdir}\n          koji_build: ${koji_build}\n          artifactsdir: ${artifactsdir}\n      export: python_versions_output\n    - name: report results to resultsdb\n      resultsdb:\n          results: ${python_versions_output}\n    - name: set exit code\n      exitcode:\n          result_worst: ${python_versions_output}\n",
    );
    let out = t.run("pv1", &["-i", "pkg-1.0-1.fc40", "-t", "koji_build"]);
    assert_eq!(out.code, 100, "{}", out.stderr);
    assert!(out.stderr.contains("[out] checked 2 things"));
    assert!(out.stderr.contains(
        "Reporting to ResultsDB is disabled. Once enabled, the following would get reported:"
    ));
    let results = out.results_yml().expect("results.yml");
    let details = taskotron_common::resultyaml::import_yaml(&results).unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(
        details[0].checkname.as_deref(),
        Some("python-versions.two_three")
    );
    assert_eq!(details[0].outcome.as_str(), "FAILED");
    assert_eq!(details[0].note, "depends on both");
    assert_eq!(details[0].keyvals["rpms"], serde_json::json!(["a", "b"]));
    assert_eq!(
        details[0].artifact.as_deref(),
        Some(out.artifacts.join("output.log").to_str().unwrap())
    );
    assert_eq!(details[1].outcome.as_str(), "PASSED");
    assert!(out.artifacts.join("taskotron/taskotron.log").exists());
}

#[test]
fn python_errors_and_result_last_and_dummy() {
    let t = task_with_python();
    t.write(
        "m.py",
        "def boom(x):\n    raise ValueError('bad value %s' % x)\n\ndef yaml_last():\n    return 'results:\\n- {item: a, type: koji_build, outcome: FAILED}\\n- {item: b, type: koji_build, outcome: INFO}\\n'\n",
    );
    t.write(
        "runtask.yml",
        &format!(
            "{HEAD}actions:\n  - name: d\n    dummy: {{result: PASS, msg: hi}}\n    export: m\n  - name: last\n    python: {{file: m.py, callable: yaml_last}}\n    export: y\n  - name: code\n    exitcode: {{result_last: '${{y}}'}}\n  - name: echo\n    shell: ['test ${{m}} = hi']\n"
        ),
    );
    let out = t.run("pe1", &[]);
    assert_eq!(out.code, 0, "result_last is INFO: {}", out.stderr);

    t.write(
        "runtask.yml",
        &format!(
            "{HEAD}actions:\n  - name: raise\n    python: {{file: m.py, callable: boom, x: 42}}\n"
        ),
    );
    let out = t.run("pe2", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.last_line().contains("actions[0] 'raise' (python):"),
        "{}",
        out.last_line()
    );
    assert!(
        out.last_line()
            .contains("m.py:boom raised ValueError: bad value 42"),
        "{}",
        out.last_line()
    );
    assert!(out.log().contains("Traceback"));

    t.write(
        "runtask.yml",
        &format!("{HEAD}actions:\n  - name: fail\n    dummy: {{result: fail, msg: asked}}\n"),
    );
    let out = t.run("pe3", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.last_line().ends_with(
            "actions[0] 'fail' (dummy): dummy directive failed as asked (result: fail): asked"
        ),
        "{}",
        out.last_line()
    );
}

#[test]
fn createrepo_and_xunit() {
    let t = TaskDir::new();
    std::fs::create_dir_all(t.task().join("repo")).unwrap();
    t.write(
        "tests.xml",
        r#"<testsuite name="s"><testcase name="one"/><testcase name="two"><failure>x</failure></testcase><testcase name="three"/></testsuite>"#,
    );
    t.write(
        "runtask.yml",
        &format!(
            "{HEAD}actions:\n  - name: repo\n    createrepo: {{repodir: repo}}\n  - name: copy xml\n    shell: ['cp tests.xml ${{artifactsdir}}/tests.xml']\n  - name: allpass\n    xunit: {{file: '${{artifactsdir}}/tests.xml'}}\n    export: all\n  - name: none\n    xunit: {{file: '${{artifactsdir}}/tests.xml', aggregation: none}}\n    export: each\n  - name: report all\n    resultsdb: {{results: '${{all}}'}}\n  - name: report each\n    resultsdb: {{results: '${{each}}'}}\n"
        ),
    );
    let out = t.run("cx1", &["-i", "foo-1-1", "-t", "koji_build"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(t.task().join("repo/repodata/repomd.xml").exists());
    let details = taskotron_common::resultyaml::import_yaml(&out.results_yml().unwrap()).unwrap();
    let got: Vec<(String, String, String)> = details
        .iter()
        .map(|d| {
            (
                d.checkname.clone().unwrap(),
                d.outcome.to_string(),
                d.note.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t".into(), "FAILED".into(), "2 PASSED, 1 FAILED".into()),
            ("t.one".into(), "PASSED".into(), "".into()),
            ("t.two".into(), "FAILED".into(), "".into()),
            ("t.three".into(), "PASSED".into(), "".into()),
        ]
    );
    assert!(details.iter().all(
        |d| d.artifact.as_deref() == Some("tests.xml") && d.item.as_deref() == Some("foo-1-1")
    ));
}

/// Each malformed formula gives exit code 1 and ONE line naming the file and the field.
#[test]
fn malformed_formulas_give_one_line_errors() {
    let t = TaskDir::new();
    let cases: &[(&str, &str)] = &[
        ("name: [oops\n", "bad.yml: invalid YAML:"),
        ("- just\n- a list\n", "bad.yml: (document): expected a mapping"),
        (&format!("{HEAD}actions: {{a: 1}}\n"), "bad.yml: actions: expected a list of actions, found a mapping"),
        (&format!("{HEAD}owner: me\nactions: [{{name: a, dummy: {{result: PASS}}}}]\n"), "bad.yml: (top level): unknown key `owner`"),
        (&format!("{HEAD}input: {{args: koji_build, extra: 1}}\nactions: [{{name: a, dummy: {{result: PASS}}}}]\n"), "bad.yml: input: unknown key `extra`"),
        (&format!("{HEAD}actions: [{{name: a, shell: [ls], python: {{}}}}]\n"), "bad.yml: actions[0]: action 'a' has several directive keys (shell, python)"),
        (&format!("{HEAD}actions: [{{name: a, dummy: {{result: PASS}}}}, {{name: b, frobnicate: {{}}}}, {{name: c, koji: {{}}}}]\n"), "bad.yml: unknown directive"),
        (&format!("{HEAD}actions: [{{name: a, shell: ['echo ${{nope}}']}}]\n"), "bad.yml: actions[0].shell[0]: undefined variable `nope`"),
        (&format!("{HEAD}actions: [{{name: a, shell: ['echo $ 1']}}]\n"), "bad.yml: actions[0].shell[0]: invalid placeholder at character 6"),
        (&format!("{HEAD}actions: [{{name: a, dummy: {{result: PASS}}, export: c}}, {{name: b, shell: ['echo ${{c.x}}']}}]\n"), "bad.yml: actions[1].shell[0]: `c` has no key `x`"),
        (&format!("{HEAD}actions: [{{name: a, dummy: {{result: PASS, colour: red}}}}]\n"), "bad.yml: actions[0] 'a' (dummy): parameter `colour`: unknown parameter; known: result, msg"),
        (&format!("{HEAD}actions: [{{name: a, shell: {{cmd: ls}}}}]\n"), "bad.yml: actions[0] 'a' (shell): parameter `(all)`: expected a list of commands, found a mapping"),
        (&format!("{HEAD}actions: [{{name: a, exitcode: {{result_worst: 'results: [{{item: x, outcome: MAYBE}}]'}}}}]\n"), "parameter `result_worst`: ResultYAML results[0].outcome: `MAYBE` is not one of"),
        (&format!("{HEAD}actions: [{{name: a, resultsdb: {{results: 'results: [{{outcome: PASSED}}]'}}}}]\n"), "bad.yml: actions[0] 'a' (resultsdb): ResultYAML results[0]: missing `item`"),
        (&format!("{HEAD}input: {{args: [koji_build, bodhi_update]}}\nactions: [{{name: a, dummy: {{result: PASS}}}}]\n"), "bad.yml: input.args: missing input arguments koji_build, bodhi_update"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        t.write("bad.yml", text);
        let out = t.run_formula("bad.yml", &format!("bad{i}"), &[]);
        assert_eq!(out.code, 1, "case {i} {text:?}: {}", out.stderr);
        let last = out.last_line();
        assert!(last.contains(want), "case {i}: got {last:?}, want {want:?}");
        assert!(
            last.contains("runtask: error: bad.yml: ") || last.contains("runtask: error: bad.yml"),
            "{last}"
        );
    }
    // The unknown-directive error names each unknown directive and lists the known ones.
    t.write("bad.yml", cases[6].0);
    let out = t.run_formula("bad.yml", "bad-dir", &[]);
    let last = out.last_line();
    assert!(last.contains("`frobnicate` (actions[1])"), "{last}");
    for known in [
        "createrepo",
        "dummy",
        "exitcode",
        "python",
        "resultsdb",
        "shell",
        "xunit",
    ] {
        assert!(last.contains(known), "{known} missing from {last}");
    }
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let t = TaskDir::new();
    t.write(
        "runtask.yml",
        &format!("{HEAD}actions: [{{name: a, dummy: {{result: PASS}}}}]\n"),
    );
    let run = |args: &[&str]| {
        std::process::Command::new(util::bin("runtask"))
            .args(args)
            .current_dir(t.task())
            .output()
            .unwrap()
    };
    for bad in [
        vec!["--bogus", "runtask.yml"],
        vec![],
        vec!["-a", "x86-64", "runtask.yml"],
        vec!["--override", "novalue", "runtask.yml"],
        vec!["--uuid", "../escape", "runtask.yml"],
        vec!["-t", "koji-build", "runtask.yml"],
    ] {
        let out = run(&bad);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--item",
        "--type",
        "--arch",
        "--jobid",
        "--uuid",
        "--local",
        "--artifactsdir",
        "--config",
        "--override",
        "--debug",
        "<FORMULA>",
    ] {
        assert!(help.contains(flag), "{flag} not in --help");
    }
}

#[test]
fn config_file_rules() {
    let t = TaskDir::new();
    t.write(
        "runtask.yml",
        &format!("{HEAD}actions: [{{name: a, dummy: {{result: PASS}}}}]\n"),
    );
    // Unknown key: named.
    t.config("report_to_resultdb: true\n");
    let out = t.run("cfg1", &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unknown field `report_to_resultdb`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&t.config_path().display().to_string()));
    // Missing explicit file: error naming it.
    let out = std::process::Command::new(util::bin("runtask"))
        .args(["--config", "/nonexistent/taskotron.yaml", "runtask.yml"])
        .current_dir(t.task())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/taskotron.yaml"));
    // $TASKOTRON_CONFIG is used when --config is absent; --artifactsdir overrides the root.
    t.config("");
    let other = t.root().join("other-artifacts");
    let out = std::process::Command::new(util::bin("runtask"))
        .args(["--uuid", "envcfg", "--artifactsdir"])
        .arg(&other)
        .arg("runtask.yml")
        .env("TASKOTRON_CONFIG", t.config_path())
        .current_dir(t.task())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.join("envcfg/taskotron/taskotron.log").exists());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("config: {}", t.config_path().display())));
}

/// The libtaskotron package is embedded: a runtask binary copied elsewhere still runs
/// python tasks.
#[test]
fn copied_binary_still_has_the_python_shim() {
    let t = task_with_python();
    let bin = t.root().join("bin/runtask");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(util::bin("runtask"), &bin).unwrap();
    t.write(
        "c.py",
        "from libtaskotron import check\n\ndef run():\n    return check.ReportType.list()\n",
    );
    t.write(
        "runtask.yml",
        &format!("{HEAD}actions:\n  - name: p\n    python: {{file: c.py, callable: run}}\n    export: l\n  - name: s\n    shell: [['test', 'list=${{l}}', '=', \"list=['bodhi_update', 'compose', 'dist_git_commit', 'docker_image', 'git_commit', 'koji_build', 'koji_tag', 'module_build', 'pull_request']\"]]\n"),
    );
    let out = std::process::Command::new(&bin)
        .args(["--config"])
        .arg(t.config_path())
        .args(["--uuid", "copied", "runtask.yml"])
        .current_dir(t.task())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn example_tasks_run_offline() {
    for (example, code) in [("hello-shell", 0), ("python-check", 0)] {
        let t = task_with_python();
        let formula = util::repo_root()
            .join("examples/tasks")
            .join(example)
            .join("runtask.yml");
        let out = t.run_formula(
            formula.to_str().unwrap(),
            example,
            &["-i", "hello-1.0-1.fc40", "-t", "koji_build"],
        );
        assert_eq!(out.code, code, "{example}: {}", out.stderr);
        let details =
            taskotron_common::resultyaml::import_yaml(&out.results_yml().unwrap()).unwrap();
        assert_eq!(details[0].outcome.as_str(), "PASSED", "{example}");
    }
}

#[test]
fn items_that_do_not_fit_their_type_are_refused_unless_trusted() {
    // A formula written the Taskotron way: the item goes into a shell string.
    let t = TaskDir::new();
    let pwned = t.task().join("pwned");
    t.write(
        "runtask.yml",
        &format!("{HEAD}actions:\n  - name: echo\n    shell:\n      - [sh, -c, 'echo ${{koji_build}}']\n"),
    );
    for item in [
        format!("$(touch {})", pwned.display()),
        format!("a;touch {}", pwned.display()),
        "--help".to_string(),
    ] {
        // `--item=` so that clap passes `--help` on as the value.
        let out = t.run("inj1", &[&format!("--item={item}"), "-t", "koji_build"]);
        assert_eq!(out.code, 2, "{item}: {}", out.stderr);
        assert!(
            out.stderr.contains("not a valid koji_build")
                && out.stderr.contains("name-version-release"),
            "{}",
            out.stderr
        );
        assert!(!pwned.exists(), "{item} reached the shell");
    }
    // --trust-item is the documented opt-out (and shows why it is one).
    let item = format!("a;touch {}", pwned.display());
    let out = t.run("inj2", &["--trust-item", "-i", &item, "-t", "koji_build"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(pwned.exists());
}
