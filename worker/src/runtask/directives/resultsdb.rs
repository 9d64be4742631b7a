//! `resultsdb`: validates ResultYAML and reports it to ResultsDB (API v2.0), as libtaskotron did
//! (reference/taskotron.md §2.9).
//!
//! ```yaml
//! resultsdb:
//!   results: ${output}        # ResultYAML text (usually exported by a python action)
//! # or
//!   file: results.yml         # a ResultYAML file, relative to the task dir
//! ```
//! Every result needs `item` and `type`; a missing `checkname` is the formula's `name`. The
//! ResultsDB testcase is `<namespace>.<checkname>` when the formula has a namespace.
//!
//! With `report_to_resultsdb: false` (the default) nothing is sent: the results are logged as
//! "Reporting to ResultsDB is disabled. Once enabled, the following would get reported:".
//! When reporting, the testcase is created if missing, then each result is POSTed with the
//! group `{uuid, ref_url: <execdb_server>/jobs/<uuid>}`, `ref_url` =
//! `<artifacts_baseurl>/<uuid>[/<artifact>]` and `data` = item, type and the keyvals.
//! Every result (reported or not) is also written to `taskotron/results.yml`.
//! Returns the ResultYAML, with `_internal.resultsdb_result_id` set when reported.

use serde_json::{json, Map, Value};
use std::path::{Component, Path};
use std::time::Duration;

use super::{results_param, Directive, DirectiveContext, DirectiveError, Params};
use taskotron_common::resultyaml::{export_yaml, CheckDetail};

pub struct ResultsDb;

/// Largest ResultsDB response body read.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

impl Directive for ResultsDb {
    fn name(&self) -> &'static str {
        "resultsdb"
    }

    fn run(&self, params: &Value, ctx: &mut DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let p = Params::new(params)?;
        p.allow(&["results", "file"])?;
        let mut details = match p.one_of("results", "file")? {
            ("file", v) => {
                let name = v.as_str().ok_or_else(|| {
                    DirectiveError::param("file", "expected a path to a ResultYAML file")
                })?;
                let path = ctx.task_path(name);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    DirectiveError::io(format!("cannot read {}", path.display()), e)
                })?;
                results_param("file", &Value::String(text))?
            }
            (which, v) => results_param(which, v)?,
        };
        let checkname = ctx.var_str("checkname").to_string();
        for (i, d) in details.iter_mut().enumerate() {
            if d.item.as_deref().unwrap_or("").is_empty() {
                return Err(DirectiveError::Failed(format!(
                    "ResultYAML results[{i}]: missing `item`"
                )));
            }
            if d.report_type.as_deref().unwrap_or("").is_empty() {
                return Err(DirectiveError::Failed(format!(
                    "ResultYAML results[{i}]: missing `type`"
                )));
            }
            if d.checkname.is_none() {
                d.checkname = Some(checkname.clone());
            }
        }
        if ctx.config.report_to_resultsdb {
            let client = Client::new(ctx)?;
            for d in details.iter_mut() {
                let id = client.report(d, ctx)?;
                d.internal.insert("resultsdb_result_id".into(), id);
            }
            tracing::info!("reported {} results to {}", details.len(), client.api);
        } else {
            tracing::info!(
                "Reporting to ResultsDB is disabled. Once enabled, the following would get reported:\n{}",
                export_yaml(&details)
            );
        }
        ctx.state.reported.extend(details.iter().cloned());
        Ok(Value::String(export_yaml(&details)))
    }
}

/// The testcase name for a result: `<namespace>.<checkname>` unless it already has the prefix.
pub fn testcase_name(namespace: Option<&str>, checkname: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() && !checkname.starts_with(&format!("{ns}.")) => {
            format!("{ns}.{checkname}")
        }
        _ => checkname.to_string(),
    }
}

/// `<artifacts_baseurl>/<uuid>[/<artifact>]`; the artifact must be a file inside artifactsdir.
fn result_ref_url(base: &str, artifact: Option<&str>, artifactsdir: &Path) -> String {
    let base = base.to_string();
    let Some(artifact) = artifact else {
        return base;
    };
    let path = Path::new(artifact);
    let rel = if path.is_absolute() {
        path.strip_prefix(artifactsdir).ok().map(Path::to_path_buf)
    } else {
        Some(path.to_path_buf())
    };
    match rel {
        Some(rel)
            if rel.components().all(|c| matches!(c, Component::Normal(_)))
                && artifactsdir.join(&rel).exists() =>
        {
            format!("{base}/{}", rel.display())
        }
        _ => {
            tracing::warn!(
                "artifact {artifact} is not a file inside {}; not linked",
                artifactsdir.display()
            );
            base
        }
    }
}

/// ResultsDB `data`: item, type and keyvals. Values must be strings or lists of strings;
/// keys with `:` are refused by ResultsDB and dropped here.
fn result_data(d: &CheckDetail) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("item".into(), json!(d.item));
    data.insert("type".into(), json!(d.report_type));
    for (k, v) in &d.keyvals {
        if k.contains(':') {
            tracing::warn!("result keyval `{k}` contains `:`, which ResultsDB refuses; dropped");
            continue;
        }
        let value = match v {
            Value::Array(items) => Value::Array(items.iter().map(scalar).collect()),
            other => scalar(other),
        };
        data.insert(k.clone(), value);
    }
    data
}

fn scalar(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(taskotron_common::template::python_str(other)),
    }
}

/// A minimal blocking ResultsDB v2.0 client with retries on transient failures.
struct Client {
    api: String,
    http: reqwest::blocking::Client,
    retries: u32,
}

impl Client {
    fn new(ctx: &DirectiveContext<'_>) -> Result<Client, DirectiveError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(ctx.config.remote_timeout.max(1)))
            .build()
            .map_err(|e| DirectiveError::Remote(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            api: ctx.config.resultsdb_api().to_string(),
            http,
            retries: ctx.config.remote_retries,
        })
    }

    /// Sends one result; returns its ResultsDB id.
    fn report(&self, d: &CheckDetail, ctx: &DirectiveContext<'_>) -> Result<Value, DirectiveError> {
        let uuid = ctx.var_str("uuid");
        let checkname = d.checkname.as_deref().unwrap_or_default();
        let testcase = testcase_name(ctx.formula.namespace.as_deref(), checkname);
        self.ensure_testcase(&testcase)?;
        let artifacts_base = format!(
            "{}/{uuid}",
            ctx.config.artifacts_baseurl.trim_end_matches('/')
        );
        let body = json!({
            "outcome": d.outcome.as_str(),
            "testcase": testcase,
            "groups": [{
                "uuid": uuid,
                "ref_url": format!("{}/jobs/{uuid}", ctx.config.execdb_server.trim_end_matches('/')),
            }],
            "note": if d.note.is_empty() { Value::Null } else { json!(d.note) },
            "ref_url": result_ref_url(&artifacts_base, d.artifact.as_deref(), ctx.artifactsdir),
            "data": result_data(d),
        });
        tracing::debug!("POST {}/results {}", self.api, body);
        let (status, reply) = self.send("POST", "results", Some(&body))?;
        if status != 201 {
            return Err(DirectiveError::Remote(format!(
                "ResultsDB refused result for {testcase} ({}): HTTP {status}: {}",
                d.item.as_deref().unwrap_or(""),
                short(&reply)
            )));
        }
        let id = reply.get("id").cloned().unwrap_or(Value::Null);
        tracing::info!(
            "reported {} {} {} -> result id {id}",
            testcase,
            d.item.as_deref().unwrap_or(""),
            d.outcome
        );
        Ok(id)
    }

    fn ensure_testcase(&self, name: &str) -> Result<(), DirectiveError> {
        let (status, _) = self.send("GET", &format!("testcases/{name}"), None)?;
        match status {
            200 => Ok(()),
            404 => {
                let body = json!({"name": name, "ref_url": "http://faketestcasesRus.com/"});
                let (status, reply) = self.send("POST", "testcases", Some(&body))?;
                if status == 201 || status == 200 {
                    Ok(())
                } else {
                    Err(DirectiveError::Remote(format!(
                        "ResultsDB refused testcase {name}: HTTP {status}: {}",
                        short(&reply)
                    )))
                }
            }
            other => Err(DirectiveError::Remote(format!(
                "ResultsDB GET testcases/{name}: HTTP {other}"
            ))),
        }
    }

    /// One request with retries on connection errors and 5xx; returns status and JSON body.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), DirectiveError> {
        let url = format!("{}/{path}", self.api);
        let mut attempt = 0;
        loop {
            let req = match (method, body) {
                ("POST", Some(b)) => self.http.post(&url).json(b),
                _ => self.http.get(&url),
            };
            let result = req.send().map(|resp| {
                use std::io::Read;
                let status = resp.status().as_u16();
                let mut bytes = Vec::new();
                // A body cut short just makes an unparsable reply, reported with the status.
                let _ = resp.take(MAX_RESPONSE).read_to_end(&mut bytes);
                (status, bytes)
            });
            let retryable = match &result {
                Ok((status, _)) => *status >= 500,
                Err(_) => true,
            };
            if !retryable || attempt >= self.retries {
                return match result {
                    Ok((status, bytes)) => Ok((
                        status,
                        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&bytes).into())
                        }),
                    )),
                    Err(e) => Err(DirectiveError::Remote(format!("{method} {url}: {e}"))),
                };
            }
            attempt += 1;
            let delay = Duration::from_millis(200 * (1 << attempt.min(5)));
            tracing::warn!(
                "{method} {url} failed ({}); retry {attempt} in {delay:?}",
                match &result {
                    Ok((s, _)) => format!("HTTP {s}"),
                    Err(e) => e.to_string(),
                }
            );
            std::thread::sleep(delay);
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testcase_names() {
        assert_eq!(testcase_name(Some("dist"), "rpmlint"), "dist.rpmlint");
        assert_eq!(testcase_name(Some("dist"), "dist.rpmlint"), "dist.rpmlint");
        assert_eq!(testcase_name(None, "x.y"), "x.y");
    }

    #[test]
    fn ref_urls_only_for_files_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("out.log"), "x").unwrap();
        let base = "http://a/artifacts/u";
        assert_eq!(
            result_ref_url(base, Some("out.log"), dir.path()),
            "http://a/artifacts/u/out.log"
        );
        let abs = dir.path().join("out.log").display().to_string();
        assert_eq!(
            result_ref_url(base, Some(&abs), dir.path()),
            "http://a/artifacts/u/out.log"
        );
        assert_eq!(
            result_ref_url(base, Some("../etc/passwd"), dir.path()),
            base
        );
        assert_eq!(result_ref_url(base, Some("missing"), dir.path()), base);
        assert_eq!(result_ref_url(base, None, dir.path()), base);
    }
}
