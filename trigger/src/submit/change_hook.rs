//! The client side of Buildbot's `base` change hook: one form-encoded POST per job with
//! `project`, `category` (= arch), `repository`, `author`, `comments` and the `properties` JSON.
//! A real Buildbot answers 200 with "1 change found"; any 2xx counts as accepted, and so does
//! 409 (our master already has a job with this uuid).

use std::time::Duration;

use crate::config::MasterConfig;

use super::Job;

/// What the master said.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted(String),
    /// A permanent refusal (4xx other than 408, 409, 429): keep the job as a dead letter.
    Rejected {
        status: u16,
        body: String,
    },
    /// Unreachable, 5xx, 408 or 429: try again later.
    Retry(String),
}

#[derive(Clone)]
pub struct ChangeHookClient {
    http: reqwest::Client,
    url: String,
    project: String,
    token: Option<String>,
    basic: Option<(String, Option<String>)>,
}

/// Responses are read up to this size (a change hook answers with a line of text).
const MAX_BODY: usize = 64 * 1024;

impl ChangeHookClient {
    pub fn new(cfg: &MasterConfig) -> anyhow::Result<ChangeHookClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_secs.max(0.1)))
            .build()?;
        Ok(ChangeHookClient {
            http,
            url: cfg.hook_url(),
            project: cfg.project.clone(),
            token: cfg.token.clone(),
            basic: cfg.username.clone().map(|u| (u, cfg.password.clone())),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn submit(&self, job: &Job) -> Outcome {
        let properties = job.properties().to_string();
        let comments = format!(
            "Taskotron job: {} on {} ({}, {})",
            job.taskname, job.item, job.item_type, job.arch
        );
        let form = [
            ("project", self.project.as_str()),
            ("category", job.arch.as_str()),
            ("repository", job.git_repo.as_deref().unwrap_or("")),
            ("author", "taskotron-trigger"),
            ("comments", comments.as_str()),
            ("properties", properties.as_str()),
        ];
        let mut req = self.http.post(&self.url).form(&form);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, p.as_deref());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("POST {}: {e}", self.url)),
        };
        let status = resp.status();
        let body = read_limited(resp).await;
        if status.is_success() {
            Outcome::Accepted(body)
        } else if status.as_u16() == 409 {
            // Our master refuses a uuid it already has: an earlier POST of this very job was
            // accepted but the trigger stopped before deleting it from the outbox.
            Outcome::Accepted(format!("master already has this job: {}", body.trim()))
        } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Outcome::Rejected {
                status: status.as_u16(),
                body,
            }
        } else {
            Outcome::Retry(format!("HTTP {status}: {}", body.trim()))
        }
    }
}

async fn read_limited(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_BODY.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
