//! Turning a Taskotron job (from the change hook or a force call) into a queued build request:
//! validation of the job fields, builder choice by arch, pinning the task's commit, storage.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::db::{ChangeFields, NewRequest, SubmitError, Submitted};
use crate::state::Master;

/// The fields of one job, already pulled out of a change or a force call.
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub taskname: String,
    pub item: String,
    pub item_type: String,
    pub arch: String,
    pub uuid: Option<String>,
    pub git_repo: Option<String>,
    pub git_branch: Option<String>,
    pub priority: i64,
    pub reason: String,
    pub change: Option<ChangeFields>,
    /// Every property as received (`{name: value}`), kept on the build.
    pub properties: Map<String, Value>,
    /// Source label of those properties (`Change`, `Force Build Form`).
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The builder a job of `arch` goes to (Taskotron: `noarch` → `all`).
pub fn builder_for(arch: &str) -> String {
    if arch == "noarch" || arch == "all" {
        "all".into()
    } else {
        arch.into()
    }
}

/// Safe as a file name component and a worker path component.
pub fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A new random job uuid (used when the submitter sent none).
pub fn new_uuid() -> String {
    use rand::Rng;
    let b: [u8; 16] = rand::rng().random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Validates, pins and stores the job.
pub async fn submit(master: &Arc<Master>, mut job: Job) -> Result<Submitted, JobError> {
    let bad = |m: String| Err(JobError::BadInput(m));
    if !valid_token(&job.taskname, 100) {
        return bad(format!(
            "property taskname: expected a task name (letters, digits, '._-'), got {:?}",
            job.taskname
        ));
    }
    if job.item.is_empty() || job.item.len() > 1000 || job.item.contains('\n') {
        return bad("property item: expected a non-empty single-line string".into());
    }
    if !valid_token(&job.item_type, 100) {
        return bad(format!(
            "property item_type: expected an item type such as koji_build, got {:?}",
            job.item_type
        ));
    }
    if !valid_token(&job.arch, 50) {
        return bad(format!(
            "arch: expected an architecture such as x86_64 or noarch, got {:?}",
            job.arch
        ));
    }
    let uuid = job
        .uuid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(new_uuid);
    if !valid_token(&uuid, 128) {
        return bad(format!(
            "property uuid: expected letters, digits and '._-' (max 128), got {uuid:?}"
        ));
    }
    job.properties
        .entry("uuid")
        .or_insert_with(|| Value::from(uuid.clone()));

    // Pin the task commit now, so the job runs exactly what was current at submission.
    let mirrors = master.mirrors.clone();
    let configured = master.cfg.task(&job.taskname).map(|t| t.url.clone());
    let (taskname, repo, branch) = (
        job.taskname.clone(),
        job.git_repo.clone(),
        job.git_branch.clone(),
    );
    let pinned = tokio::task::spawn_blocking(move || {
        match repo.filter(|r| Some(r) != configured.as_ref()) {
            Some(repo) => mirrors.pin_adhoc(&repo, branch.as_deref().unwrap_or("master")),
            None => mirrors.pin(&taskname).map(|sha| (taskname.clone(), sha)),
        }
    })
    .await
    .map_err(|e| JobError::Internal(format!("pin task: {e}")))?;
    let (task_key, sha) =
        pinned.map_err(|e| JobError::Unavailable(format!("task {:?}: {e}", job.taskname)))?;
    // The item reaches shell strings in formulas: it must fit its type (unless the task is
    // trusted). Checked after the task is known, so an unknown task is reported as such.
    let trusted = master
        .cfg
        .task(&job.taskname)
        .is_some_and(|t| t.trust_items && job.git_repo.is_none());
    if !trusted {
        if let Err(e) = taskotron_common::item::check(&job.item_type, &job.item) {
            return bad(format!("property item: {e}"));
        }
    }

    let props: Map<String, Value> = job
        .properties
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::Array(vec![v.clone(), Value::from(job.source.clone())]),
            )
        })
        .collect();
    let req = NewRequest {
        builder: builder_for(&job.arch),
        priority: job.priority,
        reason: job.reason.clone(),
        change: job.change.take(),
        properties: props,
        uuid: uuid.clone(),
        taskname: job.taskname.clone(),
        item: job.item.clone(),
        item_type: job.item_type.clone(),
        arch: job.arch.clone(),
        task_key,
        sha,
        collapse: master.cfg.queue.collapse,
    };
    let res = master.db.submit(&req).map_err(|e| match e {
        SubmitError::DuplicateUuid(u) => {
            JobError::Duplicate(format!("a job with uuid {u:?} already exists"))
        }
        SubmitError::Db(e) => JobError::Internal(e.to_string()),
    })?;
    tracing::info!(uuid = %uuid, task = %req.taskname, item = %req.item, arch = %req.arch,
        brid = res.brid, changeid = ?res.changeid, collapsed = res.collapsed, "job queued");
    master.metrics.queued(res.brid);
    master.wake.notify_one();
    Ok(res)
}
