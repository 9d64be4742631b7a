//! Administrative subcommands: `worker add`, `mirror refresh`, `prune`.

use std::path::Path;

use anyhow::{bail, Context};
use serde_yaml_ng::{Mapping, Value};

use crate::admin::ApiArgs;
use crate::config::{hash_password, random_password, Config};
use crate::mirror::refresh::RefreshOutcome;
use crate::mirror::TaskSource;

/// The mirror's view of the configured tasks.
pub fn task_sources(cfg: &Config) -> Vec<TaskSource> {
    cfg.tasks
        .iter()
        .map(|t| TaskSource {
            name: t.name.clone(),
            url: t.url.clone(),
            branch: t.branch.clone(),
        })
        .collect()
}

/// Adds `name` to the `workers:` list of the config (creating the file if missing), with a
/// hashed random password, and prints the credentials for the worker's create-worker.
///
/// The file is re-written from its parsed form, so YAML comments are not kept.
pub fn worker_add(path: &Path, name: &str, arch: &str, max_builds: u32) -> anyhow::Result<()> {
    if name.is_empty() || name.contains(':') || name.contains(char::is_whitespace) {
        bail!("worker name {name:?}: expected a non-empty name without ':' or spaces");
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    // Validate the file as it is first, so we never write on top of a broken config.
    Config::parse(path, &text)?;
    let mut doc: Value = if text.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_yaml_ng::from_str(&text).with_context(|| format!("parse {}", path.display()))?
    };
    let map = doc
        .as_mapping_mut()
        .context("config: expected a mapping at the top level")?;
    let workers = map
        .entry(Value::from("workers"))
        .or_insert_with(|| Value::Sequence(vec![]));
    if workers.is_null() {
        *workers = Value::Sequence(vec![]);
    }
    let list = workers
        .as_sequence_mut()
        .context("config: `workers` must be a list")?;
    if list
        .iter()
        .any(|w| w.get("name").and_then(Value::as_str) == Some(name))
    {
        bail!("{}: a worker named {name:?} already exists", path.display());
    }
    let password = random_password();
    let mut w = Mapping::new();
    w.insert("name".into(), name.into());
    w.insert("password_hash".into(), hash_password(&password).into());
    w.insert("arch".into(), arch.into());
    w.insert("max_builds".into(), Value::from(max_builds as u64));
    list.push(Value::Mapping(w));
    let out = serde_yaml_ng::to_string(&doc)?;
    Config::parse(path, &out)?;
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, out).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replace {}", path.display()))?;
    println!("worker: {name}");
    println!("password: {password}");
    println!("arch: {arch}");
    println!("# on the worker machine:");
    println!("#   buildbot-worker create-worker --protocol=msgpack_experimental_v7 BASEDIR MASTER:9989 {name} {password}");
    println!("#   or: taskotron-worker create-worker BASEDIR MASTER:9989 {name} {password} --arch {arch}");
    Ok(())
}

/// `mirror refresh [NAME]`: with a master running on this data_dir (it holds the mirror
/// lock), asks it over the API, so the manifest it serves changes too; otherwise refreshes
/// offline, holding the lock so that a master starting meanwhile waits.
pub fn mirror_refresh(path: &Path, name: Option<&str>, api: &ApiArgs) -> anyhow::Result<()> {
    let cfg = Config::load(path)?;
    let rt = tokio::runtime::Runtime::new()?;
    let outcomes: Vec<RefreshOutcome> =
        match crate::mirror::owner::try_lock(&cfg.data_dir, "mirror refresh")? {
            Some(_lock) => rt.block_on(crate::mirror::cli_refresh(
                &cfg.data_dir,
                cfg.mirror.clone(),
                task_sources(&cfg),
                name,
            ))?,
            None => {
                eprintln!(
                    "mirror refresh: a master owns {} ({}); asking it",
                    cfg.data_dir.display(),
                    crate::mirror::owner::holder(&cfg.data_dir)
                );
                let client = crate::admin::client::Client::new(path, api)?;
                let params = match name {
                    Some(n) => serde_json::json!({ "name": n }),
                    None => serde_json::json!({}),
                };
                let reply = rt.block_on(client.rpc("/api/v2/mirrors", "refresh", params))?;
                serde_json::from_value(reply).context("the master's refresh reply")?
            }
        };
    let mut failed = false;
    for o in outcomes {
        match o.error {
            Some(e) => {
                failed = true;
                println!("{}: error: {e}", o.name);
            }
            None => println!(
                "{}: {} head {}",
                o.name,
                if o.changed { "updated" } else { "unchanged" },
                o.head.unwrap_or_default()
            ),
        }
    }
    if failed {
        bail!("some mirrors failed to refresh");
    }
    Ok(())
}

/// `prune [--dry-run]`: one janitor pass with the config's `retention` (safe while the master
/// runs: SQLite serialises the two processes' writes).
pub fn prune(path: &Path, dry_run: bool) -> anyhow::Result<()> {
    let cfg = Config::load(path)?;
    if !cfg.retention.enabled() {
        bail!(
            "{}: no retention configured (set retention.logs_days and/or retention.artifacts_days)",
            path.display()
        );
    }
    let db = crate::db::Db::open(&cfg.db_path())?;
    let r = crate::janitor::prune(&db, &cfg, crate::db::now(), dry_run)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb}: {} step logs ({} bytes), {} artifact directories ({} bytes)",
        r.logs, r.log_bytes, r.artifacts, r.artifact_bytes
    );
    Ok(())
}
