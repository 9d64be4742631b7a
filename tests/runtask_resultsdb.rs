//! Reporting to ResultsDB (API v2.0) for real: runtask posts to our loopback ResultsDB test
//! server, and the official PyPI client `resultsdb-api` reads the results back (and checks
//! the server's contract on its own).

mod runtask_support;
mod util;

use runtask_support::resultsdb::ResultsDb;
use runtask_support::TaskDir;
use serde_json::{json, Value};

fn reporting_task(rdb: &ResultsDb) -> TaskDir {
    let t = TaskDir::new();
    t.config(&format!(
        "report_to_resultsdb: true\nresultsdb_server: {}\nartifacts_baseurl: http://artifacts.example/all\nexecdb_server: http://execdb.example\n",
        rdb.url()
    ));
    t.write(
        "runtask.yml",
        "name: rpmlint\nnamespace: dist\ndesc: d\nmaintainer: m\ninput: {args: [koji_build]}\nactions:\n  - name: make output\n    shell:\n      - [sh, -c, 'echo lint > \"$$0/rpmlint.log\"', '${artifactsdir}']\n  - name: results\n    shell:\n      - [cat, results.yml]\n    export: out\n  - name: report\n    resultsdb: {results: '${out}'}\n    export: reported\n  - name: ids are exported\n    shell:\n      - [sh, -c, 'echo \"$$0\" | grep -q resultsdb_result_id', '${reported}']\n",
    );
    t.write(
        "results.yml",
        "results:\n  - item: foo-1.0-1.fc40\n    type: koji_build\n    outcome: FAILED\n    note: 2 errors\n    artifact: rpmlint.log\n    arch: [x86_64, noarch]\n    scratch: true\n  - item: foo-1.0-1.fc40\n    type: koji_build\n    checkname: rpmlint.sub\n    outcome: PASSED\n    artifact: ../outside.log\n",
    );
    t
}

#[test]
fn results_are_posted_like_libtaskotron_and_readable_with_resultsdb_api() {
    let rdb = ResultsDb::start();
    let t = reporting_task(&rdb);
    let out = t.run("job-uuid-1", &["-i", "foo-1.0-1.fc40", "-t", "koji_build"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let results = rdb.results();
    assert_eq!(results.len(), 2);
    let first = &results[0];
    assert_eq!(first["outcome"], "FAILED");
    assert_eq!(first["testcase"]["name"], "dist.rpmlint");
    assert_eq!(first["note"], "2 errors");
    assert_eq!(
        first["ref_url"],
        "http://artifacts.example/all/job-uuid-1/rpmlint.log"
    );
    assert_eq!(first["groups"], json!(["job-uuid-1"]));
    assert_eq!(first["data"]["item"], json!(["foo-1.0-1.fc40"]));
    assert_eq!(first["data"]["type"], json!(["koji_build"]));
    assert_eq!(first["data"]["arch"], json!(["x86_64", "noarch"]));
    assert_eq!(first["data"]["scratch"], json!(["True"]));
    let second = &results[1];
    assert_eq!(second["testcase"]["name"], "dist.rpmlint.sub");
    // An artifact outside the artifacts dir is not linked.
    assert_eq!(second["ref_url"], "http://artifacts.example/all/job-uuid-1");
    assert_eq!(second["note"], Value::Null);
    assert_eq!(
        rdb.group("job-uuid-1").unwrap()["ref_url"],
        "http://execdb.example/jobs/job-uuid-1"
    );
    assert_eq!(rdb.testcase_names(), ["dist.rpmlint", "dist.rpmlint.sub"]);

    // results.yml records what was reported, with the ResultsDB ids.
    let yml = out.results_yml().unwrap();
    let details = taskotron_common::resultyaml::import_yaml(&yml).unwrap();
    assert_eq!(details[0].internal["resultsdb_result_id"], json!(1));
    assert_eq!(details[1].internal["resultsdb_result_id"], json!(2));
    assert_eq!(details[0].checkname.as_deref(), Some("rpmlint"));

    // The official client sees the same results through the API.
    let script = r#"
import json, sys
from resultsdb_api import ResultsDBapi
api = ResultsDBapi(sys.argv[1])
failed = api.get_results(outcome='FAILED', item='foo-1.0-1.fc40', type='koji_build')
assert [r['testcase']['name'] for r in failed['data']] == ['dist.rpmlint'], failed
group = api.get_group('job-uuid-1')
assert group['ref_url'] == 'http://execdb.example/jobs/job-uuid-1', group
tc = api.get_testcase('dist.rpmlint.sub')
assert tc['name'] == 'dist.rpmlint.sub', tc
by_group = api.get_results(groups=['job-uuid-1'], limit=1)
assert len(by_group['data']) == 1 and by_group['next'], by_group
# The client can write too: the server follows the same contract for it.
r = api.create_result('passed', 'dist.other', groups=['job-uuid-2'], note='n',
                      ref_url='http://x', item='bar-1-1', type='koji_build', arch=['a', 'b'])
assert r['outcome'] == 'PASSED' and r['data']['arch'] == ['a', 'b'], r
print(json.dumps(api.get_results(testcases='dist.other')['data'][0]['data']))
"#;
    let py = std::process::Command::new(util::venv_bin("python"))
        .args(["-c", script, rdb.url()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "resultsdb-api check failed: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let data: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(data["item"], json!(["bar-1-1"]));
}

#[test]
fn server_contract_status_codes() {
    let rdb = ResultsDb::start();
    let c = reqwest::blocking::Client::new();
    let url = rdb.url();
    assert_eq!(c.get(format!("{url}/")).send().unwrap().status(), 300);
    assert_eq!(
        c.get(format!("{url}/healthcheck")).send().unwrap().status(),
        200
    );
    let post = |body: Value| {
        c.post(format!("{url}/results"))
            .json(&body)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(post(json!({"outcome": "BOGUS", "testcase": "t"})), 400);
    assert_eq!(post(json!({"outcome": "PASSED", "testcase": ""})), 400);
    assert_eq!(
        post(json!({"outcome": "PASSED", "testcase": "t", "data": {"a:b": "x"}})),
        400
    );
    assert_eq!(
        post(json!({"outcome": " info ", "testcase": {"name": "t", "ref_url": "u"}})),
        201
    );
    let text = c
        .post(format!("{url}/results"))
        .body("{}")
        .header("content-type", "text/plain")
        .send()
        .unwrap();
    assert_eq!(text.status(), 415);
    assert_eq!(
        c.get(format!("{url}/results/99")).send().unwrap().status(),
        404
    );
    assert_eq!(
        c.get(format!("{url}/testcases/nope"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let tc: Value = c
        .get(format!("{url}/testcases/t"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tc["ref_url"], "u");
}

#[test]
fn unreachable_resultsdb_fails_the_run_with_the_url() {
    let port = util::free_port();
    let t = TaskDir::new();
    t.config(&format!(
        "report_to_resultsdb: true\nresultsdb_server: http://127.0.0.1:{port}/api/v2.0\nremote_retries: 0\nremote_timeout: 5\n"
    ));
    t.write(
        "runtask.yml",
        "name: x\ndesc: d\nmaintainer: m\nactions:\n  - name: report\n    resultsdb:\n      results: 'results: [{item: a, type: koji_build, outcome: PASSED}]'\n",
    );
    let out = t.run("down", &[]);
    assert_eq!(out.code, 1);
    let last = out.last_line();
    assert!(
        last.contains("actions[0] 'report' (resultsdb): remote error:"),
        "{last}"
    );
    assert!(
        last.contains(&format!("127.0.0.1:{port}/api/v2.0/testcases/x")),
        "{last}"
    );
}
