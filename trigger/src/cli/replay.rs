//! `taskotron-trigger replay --config FILE MESSAGES...`: feeds recorded messages through the
//! trigger (de-duplication, rules, outbox, submission) and waits until the master accepted the
//! jobs. MESSAGES are JSON lines of envelopes, single envelopes, or datagrepper `/raw` pages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use taskotron_common::json_canon;

use crate::config::Config;
use crate::fedmsg::Envelope;

use super::State;

#[derive(clap::Args)]
pub struct Args {
    /// Trigger config (YAML).
    #[arg(long, short)]
    config: PathBuf,
    /// Record the jobs but do not wait for the master to accept them.
    #[arg(long)]
    no_wait: bool,
    /// Message files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Reads envelopes (as JSON bytes) from a file: JSON lines, one envelope, or a datagrepper
/// `/raw` page (`raw_messages`, oldest first; datagrepper's additions removed the way fedmsg's
/// `fix_datagrepper_message` does so signatures verify again).
pub fn read_messages(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if let Ok(json_canon::Value::Object(_)) = json_canon::parse(&text) {
        let whole =
            json_canon::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some(json_canon::Value::Array(raw)) = whole.get("raw_messages") {
            let mut msgs: Vec<(f64, Vec<u8>)> = raw
                .iter()
                .map(|m| {
                    let ts = match m.get("timestamp") {
                        Some(json_canon::Value::Float(f)) => *f,
                        Some(json_canon::Value::Int(i)) => i.parse().unwrap_or(0.0),
                        _ => 0.0,
                    };
                    (ts, fix_datagrepper(m.clone()).into_bytes())
                })
                .collect();
            msgs.sort_by(|a, b| a.0.total_cmp(&b.0));
            return Ok(msgs.into_iter().map(|(_, m)| m).collect());
        }
        return Ok(vec![trim(&text).to_vec()]);
    }
    let mut out = vec![];
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        json_canon::parse(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(line.to_vec());
    }
    Ok(out)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

/// fedmsg's `fix_datagrepper_message`: drop datagrepper's fields, an empty `headers`, and make
/// the timestamp an int again.
fn fix_datagrepper(mut m: json_canon::Value) -> String {
    for k in ["source_name", "source_version"] {
        m.remove_key(k);
    }
    if let Some(json_canon::Value::Object(h)) = m.get("headers") {
        if h.is_empty() {
            m.remove_key("headers");
        }
    }
    if let json_canon::Value::Object(map) = &mut m {
        let key = json_canon::PyStr::from("timestamp");
        if let Some(json_canon::Value::Float(f)) = map.get(&key).cloned() {
            map.insert(key, json_canon::Value::Int(format!("{}", f.trunc() as i64)));
        }
    }
    json_canon::to_string(&m)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cfg = Config::load(&a.config)?;
    let state = Arc::new(State::load(cfg)?);
    let mut count = 0;
    for f in &a.files {
        for body in read_messages(f)? {
            match Envelope::from_body(&body) {
                Ok(env) => {
                    state.handle(env, &body).await?;
                    count += 1;
                }
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "skipping malformed message")
                }
            }
        }
    }
    tracing::info!(
        messages = count,
        pending = state.outbox.pending()?,
        "replay recorded"
    );
    if a.no_wait {
        return Ok(());
    }
    state.spawn_workers()?;
    state.wake_submitter.notify_one();
    while state.outbox.pending()? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("all replayed jobs accepted");
    Ok(())
}
