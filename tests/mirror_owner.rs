//! One owner for the task mirror: `taskotron-master mirror refresh` while a master runs goes
//! through that master, so the manifest it serves changes and a real grok-pull sees the push;
//! without a master it refreshes offline, and a master started afterwards serves the result.

mod master_support;
mod util;

use std::path::Path;
use std::process::{Command, Output};

use master_support::{Env, Opts};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn commit(task: &Path, n: u32) -> String {
    std::fs::write(task.join(format!("file{n}.txt")), format!("{n}\n")).unwrap();
    git(task, &["add", "."]);
    git(task, &["commit", "-qm", &format!("change {n}")]);
    git(task, &["rev-parse", "HEAD"])
}

fn refresh(env: &Env) -> Output {
    Command::new(util::bin("taskotron-master"))
        .arg("--config")
        .arg(env.config_path())
        .args(["mirror", "refresh", "demo"])
        .env_remove("TASKOTRON_MASTER_URL")
        .env_remove("TASKOTRON_TOKEN")
        .output()
        .unwrap()
}

fn grok_pull(conf: &Path) {
    let out = Command::new(util::venv_bin("grok-pull"))
        .args(["-v", "-c"])
        .arg(conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grok-pull: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cli_refresh_goes_through_the_running_master_and_grok_pull_sees_the_push() {
    let mut env = Env::new(Opts {
        workers: vec![],
        ..Opts::default()
    });
    let root = env.root().to_path_buf();
    let task = root.join("task-demo");
    let replica = root.join("replica");
    std::fs::create_dir_all(&replica).unwrap();
    let conf = root.join("grok.conf");
    std::fs::write(
        &conf,
        format!(
            "[core]\ntoplevel = {top}\nmanifest = ${{toplevel}}/manifest.js.gz\nlog = {log}\nloglevel = info\n\
             objstore = {root}/objstore\n\n[remote]\nsite = {base}\nmanifest = {base}/manifest.js.gz\n\n\
             [pull]\npurge = no\npull_threads = 1\nretries = 1\ndefault_owner = Nobody\n",
            top = replica.display(),
            log = root.join("grok.log").display(),
            root = root.display(),
            base = env.url("/mirror"),
        ),
    )
    .unwrap();
    let rep = replica.join("fedoraqa/demo.git");
    grok_pull(&conf);
    let first = git(&task, &["rev-parse", "HEAD"]);
    assert_eq!(git(&rep, &["rev-parse", "refs/heads/master"]), first);

    // A push upstream, then the documented CLI while the master runs.
    let second = commit(&task, 2);
    let out = refresh(&env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("a master owns"), "{stderr}");
    assert!(
        stdout.contains(&format!("demo: updated head {second}")),
        "{stdout}"
    );
    // The master serves the new manifest: the replica follows.
    grok_pull(&conf);
    assert_eq!(git(&rep, &["rev-parse", "refs/heads/master"]), second);

    // Without a master the CLI refreshes offline; the master started later serves that.
    env.stop_master();
    let third = commit(&task, 3);
    let out = refresh(&env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("a master owns"));
    assert!(
        stdout.contains(&format!("demo: updated head {third}")),
        "{stdout}"
    );
    env.start_master();
    grok_pull(&conf);
    assert_eq!(git(&rep, &["rev-parse", "refs/heads/master"]), third);
}
