//! `taskotron-trigger check-rules --rules FILE --message MSG.json`: for rule authors. Prints
//! one JSON object per job the message would produce (no uuid; `rule` is the rule index).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{parse_critpath, Config};
use crate::discover::Discoverer;
use crate::fedmsg::Envelope;
use crate::jobtriggers::Context;
use crate::pipeline::Pipeline;
use crate::rules::{RuleSet, What};

#[derive(clap::Args)]
pub struct Args {
    /// trigger_rules.yml template.
    #[arg(long)]
    rules: PathBuf,
    /// A message: an envelope (JSON), JSON lines of envelopes, or a datagrepper /raw page.
    #[arg(long)]
    message: PathBuf,
    /// Arches for reactions without `arches` (comma separated).
    #[arg(long, default_value = "x86_64", value_delimiter = ',')]
    valid_arches: Vec<String>,
    /// Critical-path package list (JSON list, pkgdb answer, or one name per line).
    #[arg(long)]
    critpath: Option<PathBuf>,
    /// Topic prefix and environment, as in the trigger config.
    #[arg(long, default_value = "org.fedoraproject")]
    topic_prefix: String,
    #[arg(long, default_value = "prod")]
    environment: String,
    /// Where `discover` clones repositories (default: a temporary directory).
    #[arg(long)]
    git_cache_dir: Option<PathBuf>,
    /// Do not clone anything: print `discover` reactions instead of the jobs they would make.
    #[arg(long)]
    no_discover: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let rules = RuleSet::load(&a.rules)?;
    let critpath = match &a.critpath {
        Some(p) => parse_critpath(
            &std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => vec![],
    };
    let cfg = Config {
        topic_prefix: a.topic_prefix.clone(),
        environment: a.environment.clone(),
        ..Config::default()
    };
    let mut tmp: Option<PathBuf> = None;
    let discoverer = if a.no_discover {
        None
    } else {
        let dir = match &a.git_cache_dir {
            Some(d) => d.clone(),
            None => {
                let d = tempfile_dir()?;
                tmp = Some(d.clone());
                d
            }
        };
        Some(Discoverer::new(&dir, Duration::ZERO))
    };
    let pipeline = Pipeline::new(
        Context::new(&cfg, critpath),
        rules,
        a.valid_arches.clone(),
        discoverer,
    );
    let mut out = String::new();
    for body in super::replay::read_messages(&a.message)? {
        let env = Envelope::from_body(&body)
            .map_err(|e| anyhow::anyhow!("{}: {e}", a.message.display()))?;
        let datas = match pipeline.message_data(&env)? {
            Some(d) => d,
            None => {
                eprintln!(
                    "{}: no consumer for topic {}",
                    a.message.display(),
                    env.topic
                );
                continue;
            }
        };
        for data in datas {
            if a.no_discover {
                for (rule, r) in pipeline.rules().evaluate(&data)? {
                    if let What::Discover(d) = &r.what {
                        let line = serde_json::json!({"rule": rule, "discover": {
                            "repo": d.repo, "branch": d.branch, "fallback_branch": d.fallback_branch,
                            "base_dir": d.base_dir, "recursive": d.recursive},
                            "arches": r.arches.clone().unwrap_or(a.valid_arches.clone())});
                        out.push_str(&format!("{line}\n"));
                    }
                }
            }
            for (rule, job) in pipeline.jobs(&data, &env.msg_id) {
                let mut v = serde_json::to_value(&job)?;
                if let Some(m) = v.as_object_mut() {
                    m.remove("uuid");
                    m.remove("msg_id");
                    m.insert("rule".into(), rule.into());
                }
                out.push_str(&format!("{v}\n"));
            }
        }
    }
    print!("{out}");
    if let Some(d) = tmp {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("taskotron-trigger-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
