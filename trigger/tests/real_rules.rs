//! The three real Fedora rule files against fixture messages; the expected jobs are written out
//! by hand from reading the rules. `discover` reactions are listed (not cloned) here; cloning is
//! covered in tests/trigger_cli.rs.

use std::path::PathBuf;

use serde_json::{json, Value};
use taskotron_trigger::config::Config;
use taskotron_trigger::fedmsg::Envelope;
use taskotron_trigger::jobtriggers::Context;
use taskotron_trigger::pipeline::Pipeline;
use taskotron_trigger::rules::{RuleSet, What};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture_msg(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("fedmsg").join(name)).unwrap()).unwrap()
}

fn pipeline(rules: &str, arches: &[&str], critpath: &[&str]) -> Pipeline {
    let rs = RuleSet::load(&fixtures().join("taskotron").join(rules)).unwrap();
    let ctx = Context::new(
        &Config::default(),
        critpath.iter().map(|s| s.to_string()).collect(),
    );
    Pipeline::new(
        ctx,
        rs,
        arches.iter().map(|s| s.to_string()).collect(),
        None,
    )
}

/// "task/arch" for each job and "discover repo@branch(fallback)/arches" for each discover.
fn plan(p: &Pipeline, msg: &Value) -> Vec<String> {
    let env = Envelope::from_value(msg.clone()).unwrap();
    let mut out = vec![];
    for data in p.message_data(&env).unwrap().unwrap_or_default() {
        for (_, r) in p.rules().evaluate(&data).unwrap() {
            if let What::Discover(d) = &r.what {
                let arches = r.arches.clone().unwrap_or(p.valid_arches.clone()).join(",");
                out.push(format!(
                    "discover {}@{}{}{}/{arches}{}",
                    d.repo,
                    d.branch,
                    d.fallback_branch
                        .as_ref()
                        .map(|f| format!("|{f}"))
                        .unwrap_or_default(),
                    if d.recursive { " recursive" } else { "" },
                    if r.match_host_arch {
                        " match_host_arch"
                    } else {
                        ""
                    }
                ));
            }
        }
        for (_, j) in p.jobs(&data, &env.msg_id) {
            out.push(format!(
                "{} {}/{} {}",
                j.message_type, j.taskname, j.arch, j.item
            ));
        }
    }
    out
}

fn koji_complete(name: &str, version: &str, release: &str) -> Value {
    let mut m = fixture_msg("fedmsg.buildsys.build.state.change.complete.signed.json");
    m["msg"]["name"] = name.into();
    m["msg"]["version"] = version.into();
    m["msg"]["release"] = release.into();
    m
}

fn tag(t: &str) -> Value {
    let mut m = fixture_msg("fedmsg.buildsys.tag.signed.json");
    m["msg"]["tag"] = t.into();
    m
}

fn distgit(namespace: &str) -> Value {
    let mut m = fixture_msg("fedmsg.git.receive.json");
    m["msg"]["commit"]["namespace"] = namespace.into();
    m
}

fn pagure(repo: &str) -> Value {
    json!({"topic": "io.pagure.prod.pagure.git.receive", "msg_id": "2018-p", "timestamp": 1, "i": 1,
           "username": "pagure", "msg": {"repo": {"fullname": repo, "name": repo.rsplit('/').next().unwrap()},
           "branch": "master", "start_commit": "aaa", "end_commit": "bbb", "total_commits": 1}})
}

fn mbs_ready() -> Value {
    json!({"topic": "org.fedoraproject.prod.mbs.module.state.change", "msg_id": "2017-m", "timestamp": 1,
           "i": 1, "username": "fedmsg", "msg": {"id": 1, "name": "nodejs", "stream": "f26",
           "version": "20170511113257", "state": 5, "state_name": "ready"}})
}

#[test]
fn rules_2016_10() {
    let p = pipeline("trigger_rules.2016-10.yml", &["x86_64"], &[]);
    let ply = "python-ply-3.9-4.module_bd16c34d";
    assert_eq!(
        plan(
            &p,
            &fixture_msg("fedmsg.buildsys.build.state.change.complete.signed.json")
        ),
        vec![
            "discover http://pkgs.fedoraproject.org/git/rpms-checks/python-ply.git@master/x86_64"
                .to_string(),
            format!("KojiBuildPackageCompleted rpmlint/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted rpmgrill/x86_64 {ply}"),
        ]
    );
    // Critical-path packages also get abicheck ($in: ${critpath_pkgs} rendered as a list).
    let p = pipeline(
        "trigger_rules.2016-10.yml",
        &["x86_64"],
        &["bash", "python-ply"],
    );
    assert!(plan(&p, &koji_complete("python-ply", "3.9", "4.fc26"))
        .contains(&"KojiBuildPackageCompleted abicheck/x86_64 python-ply-3.9-4.fc26".to_string()));
    assert_eq!(
        plan(&p, &koji_complete("docker", "1.9.1", "6.git6ec29ef.fc23")),
        vec![
            "discover http://pkgs.fedoraproject.org/git/rpms-checks/docker.git@f23/x86_64",
            "KojiBuildPackageCompleted rpmlint/x86_64 docker-1.9.1-6.git6ec29ef.fc23",
            "KojiBuildPackageCompleted rpmgrill/x86_64 docker-1.9.1-6.git6ec29ef.fc23",
            "KojiBuildPackageCompleted dockerautotest/x86_64 docker-1.9.1-6.git6ec29ef.fc23",
        ]
    );
    // A container build goes to the docker-checks discover rule only.
    assert_eq!(
        plan(&p, &koji_complete("cockpit-docker", "1", "2.fc25")),
        vec!["discover http://pkgs.fedoraproject.org/git/docker-checks/cockpit-docker.git@f25/x86_64"]
    );
    assert_eq!(
        plan(&p, &tag("f25-updates-pending")),
        vec![
            "KojiTagChanged depcheck/x86_64 f25-updates-pending",
            "KojiTagChanged upgradepath/x86_64 f25-updates-pending",
        ]
    );
    assert_eq!(
        plan(&p, &tag("f25-updates-testing-pending")),
        vec!["KojiTagChanged depcheck/x86_64 f25-updates-testing-pending"]
    );
    // Not a -pending tag, not a completed build: no consumer output at all.
    assert!(plan(&p, &fixture_msg("fedmsg.buildsys.tag.signed.json")).is_empty());
    assert!(plan(
        &p,
        &fixture_msg("fedmsg.buildsys.build.state.change.building.signed.json")
    )
    .is_empty());
}

#[test]
fn rules_prod_2017_08() {
    let p = pipeline(
        "trigger_rules.prod-2017-08.yml",
        &["x86_64"],
        &["python-ply", "kernel"],
    );
    let ply = "python-ply-3.9-4.module_bd16c34d";
    assert_eq!(
        plan(&p, &fixture_msg("fedmsg.buildsys.build.state.change.complete.signed.json")),
        vec![
            "discover git://pkgs02.phx2.fedoraproject.org/rpms/python-ply@master|master recursive/x86_64".to_string(),
            format!("KojiBuildPackageCompleted rpmlint/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted rpmgrill/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted python-versions/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted abicheck/x86_64 {ply}"),
        ]
    );
    // kernel is critpath but blacklisted by $nin.
    assert!(!plan(&p, &koji_complete("kernel", "4.12", "1.fc26"))
        .iter()
        .any(|l| l.contains("abicheck")));
    assert_eq!(
        plan(&p, &tag("f26-updates-pending")),
        vec![
            "KojiTagChanged rpmdeplint/x86_64 f26-updates-pending",
            "KojiTagChanged upgradepath/x86_64 f26-updates-pending",
        ]
    );
    assert_eq!(
        plan(&p, &tag("f26-updates-testing-pending")),
        vec!["KojiTagChanged rpmdeplint/x86_64 f26-updates-testing-pending"]
    );
    assert!(plan(&p, &distgit("rpms")).is_empty());
    assert_eq!(
        plan(&p, &distgit("modules")),
        vec!["DistGitCommit check_modulemd/x86_64 modules/php-simplepie#81e09b9c83e8550b54a64c7bdb4e5d7b534df058"]
    );
    let loc = "http://kojipkgs.fedoraproject.org/compose//rawhide/Fedora-24-20151208.n.7/compose";
    assert_eq!(
        plan(
            &p,
            &fixture_msg("fedmsg.pungi.compose.status.change.finished.json")
        ),
        vec![
            format!("AtomicCompose upstream-atomic/x86_64 {loc}"),
            format!("AtomicCompose fedora-cloud-tests/x86_64 {loc}"),
            format!("CloudCompose fedora-cloud-tests/x86_64 {loc}"),
        ]
    );
    assert_eq!(
        plan(&p, &mbs_ready()),
        vec!["ModuleBuildComplete modularity-testing-framework/x86_64 nodejs-f26-20170511113257"]
    );
    // Bodhi updates are consumed but no 2017 rule asks for them.
    assert!(plan(&p, &fixture_msg("fedmsg.bodhi.update.request.testing.json")).is_empty());
}

#[test]
fn rules_prod_2020_02() {
    let p = pipeline("trigger_rules.prod-2020-02.yml", &["x86_64", "armhfp"], &[]);
    let ply = "python-ply-3.9-4.module_bd16c34d";
    assert_eq!(
        plan(
            &p,
            &fixture_msg("fedmsg.buildsys.build.state.change.complete.signed.json")
        ),
        vec![
            format!("KojiBuildPackageCompleted rpmlint/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted rpmlint/armhfp {ply}"),
            format!("KojiBuildPackageCompleted python-versions/noarch {ply}"),
            format!("KojiBuildPackageCompleted rpmgrill/noarch {ply}"),
            format!("KojiBuildPackageCompleted abicheck/x86_64 {ply}"),
            format!("KojiBuildPackageCompleted abicheck/armhfp {ply}"),
        ]
    );
    assert_eq!(
        plan(&p, &koji_complete("firefox", "72", "1.fc32")).len(),
        4,
        "blacklisted from abicheck"
    );
    assert_eq!(
        plan(&p, &tag("f32-updates-testing-pending")),
        vec![
            "KojiTagChanged rpmdeplint/x86_64 f32-updates-testing-pending",
            "KojiTagChanged rpmdeplint/armhfp f32-updates-testing-pending",
        ]
    );
    assert_eq!(plan(&p, &tag("f32-updates-pending")).len(), 2);
    assert!(
        plan(&p, &tag("f33-updates-pending")).is_empty(),
        "$not $regex f33"
    );
    assert!(plan(&p, &tag("epel8-testing-pending")).is_empty());
    assert_eq!(
        plan(&p, &pagure("taskotron/task-foo")),
        vec!["discover https://pagure.io/taskotron/task-dockerbuild.git@master/x86_64 match_host_arch"]
    );
    assert!(plan(&p, &pagure("fedora-qa/foo")).is_empty());
}

#[test]
fn a_bad_rules_file_names_the_rule_and_reason() {
    let cases = [
        ("- when: {a: 1}\n  do: [{tasks: [x]}]\n- when: {a: {$regex: '/(/'}}\n  do: [{tasks: [x]}]\n", "rule 1: when.a.$regex"),
        ("- when: {a: 1}\n  do: [{task: [x]}]\n", "rule 0: do[0]: unknown key \"task\""),
        ("- when: {a: 1}\n", "rule 0: missing `do`"),
        ("{a: 1}\n", "expected a list of rules"),
        ("- when: [\n", "not valid YAML"),
    ];
    for (text, needle) in cases {
        let e = RuleSet::parse(text, "rules.yml").err().unwrap().to_string();
        assert!(e.contains(needle), "{e}");
    }
}
