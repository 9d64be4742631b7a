//! HTTP client for the admin commands: finds the master and the token, sends GETs and
//! JSON-RPC calls, and turns error replies into one-line messages.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::ApiArgs;
use crate::config::Config;

/// Largest reply the CLI reads (a job with many attempts and steps is well below this).
const MAX_REPLY: usize = 32 << 20;

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(config: &Path, api: &ApiArgs) -> anyhow::Result<Client> {
        // The config file is optional here: the CLI may run on another host.
        let cfg = if config.exists() {
            Some(Config::load(config)?)
        } else {
            None
        };
        let base = api
            .url
            .clone()
            .or_else(|| std::env::var("TASKOTRON_MASTER_URL").ok())
            .or_else(|| {
                cfg.as_ref().map(|c| {
                    let mut a = c.http.listen;
                    if a.ip().is_unspecified() {
                        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    format!("http://{a}")
                })
            })
            .unwrap_or_else(|| "http://127.0.0.1:8010".into());
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--url {base:?}: expected an http:// or https:// URL");
        }
        let token = api
            .token
            .clone()
            .or_else(|| std::env::var("TASKOTRON_TOKEN").ok())
            .or_else(|| cfg.as_ref().and_then(|c| c.auth.tokens.first().cloned()))
            .filter(|t| !t.is_empty());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn read(&self, what: &str, resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the reply"))?;
        if bytes.len() > MAX_REPLY {
            bail!("{what}: reply larger than {MAX_REPLY} bytes");
        }
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().to_string()));
        Ok((status, v))
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let what = format!("GET {}", self.url(path));
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| anyhow!("{what}: {e} (is the master running? see --url)"))?;
        match self.read(&what, resp).await? {
            (200, v) => Ok(v),
            (404, _) => bail!("not found: {path}"),
            (s, v) => bail!("{what}: HTTP {s}: {}", message(&v)),
        }
    }

    /// A JSON-RPC call on a REST resource; returns its `result`.
    pub async fn rpc(&self, path: &str, method: &str, params: Value) -> anyhow::Result<Value> {
        let what = format!("{method} on {}", self.url(path));
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("{what}: {e} (is the master running? see --url)"))?;
        match self.read(&what, resp).await? {
            (200, v) if v.get("error").is_none() => {
                Ok(v.get("result").cloned().unwrap_or(Value::Null))
            }
            (401, _) => {
                bail!("{what}: the master wants a token: pass --token or set TASKOTRON_TOKEN")
            }
            (403, _) => bail!("{what}: the master refused the token (not in its auth.tokens)"),
            (s, v) => bail!("{what}: HTTP {s}: {}", message(&v)),
        }
    }
}

/// The human part of an error reply (JSON-RPC error, `{"error": ...}` or plain text).
fn message(v: &Value) -> String {
    v.pointer("/error/message")
        .or_else(|| v.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}
