//! A Bodhi client for the one query the bodhi directive needs: the builds of an update, from
//! Bodhi 2's REST API (`GET <server>/updates/?updateid=<ID>`, as `bodhi.client.bindings`'
//! `query(updateid=…)` does).

use super::http::{self, RemoteError, Settings};

/// Returns the NVRs of update `update_id`'s builds, or `NotFound` naming the update.
pub async fn update_builds(
    client: &reqwest::Client,
    settings: &Settings,
    server: &str,
    update_id: &str,
) -> Result<Vec<String>, RemoteError> {
    let url = format!("{}/updates/", server.trim_end_matches('/'));
    let what = format!("Bodhi query for {update_id}");
    let body = http::with_retries(settings, &what, || {
        let req = client
            .get(&url)
            .query(&[("updateid", update_id)])
            .header("Accept", "application/json")
            .timeout(settings.timeout);
        http::read_body(&url, req, http::MAX_API_BODY)
    })
    .await?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol {
            url: url.clone(),
            message: format!("answer is not JSON: {e}"),
        })?;
    let updates = doc
        .get("updates")
        .and_then(|u| u.as_array())
        .ok_or_else(|| RemoteError::Protocol {
            url: url.clone(),
            message: "answer has no 'updates' list".into(),
        })?;
    let update = updates.first().ok_or_else(|| {
        RemoteError::NotFound(format!(
            "Update with ID '{update_id}' wasn't found in Bodhi"
        ))
    })?;
    let builds = update
        .get("builds")
        .and_then(|b| b.as_array())
        .ok_or_else(|| RemoteError::Protocol {
            url: url.clone(),
            message: format!("update {update_id} has no 'builds' list"),
        })?;
    builds
        .iter()
        .map(|b| {
            b.get("nvr")
                .and_then(|n| n.as_str())
                .map(str::to_string)
                .ok_or_else(|| RemoteError::Protocol {
                    url: url.clone(),
                    message: format!("a build of update {update_id} has no 'nvr'"),
                })
        })
        .collect()
}
