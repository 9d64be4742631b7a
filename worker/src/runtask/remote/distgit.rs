//! Fetching single files from dist-git through its raw-file URLs
//! (`<baseurl>/<namespace>/<package>/raw/<gitref>/f/<path>`, Pagure's layout, which
//! src.fedoraproject.org serves), with libtaskotron's `ignore_missing` behaviour for 404s.

use std::path::PathBuf;

use super::download::{self, FileSpec};
use super::http::{RemoteError, Settings};

/// Which repository and revision to read from.
#[derive(Debug, Clone)]
pub struct Repo {
    pub baseurl: String,
    pub namespace: String,
    pub package: String,
    pub gitref: String,
}

impl Repo {
    /// The raw URL of `path` in this repo.
    pub fn raw_url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}/raw/{}/f/{}",
            self.baseurl.trim_end_matches('/'),
            self.namespace,
            self.package,
            self.gitref,
            path.trim_start_matches('/')
        )
    }
}

/// Downloads each `(url, local destination)` (URLs from [`Repo::raw_url`]); returns the files
/// written. A 404 is skipped when `ignore_missing`, every other failure is an error.
pub async fn fetch_files(
    client: &reqwest::Client,
    settings: &Settings,
    files: &[(String, PathBuf)],
    ignore_missing: bool,
) -> Result<Vec<PathBuf>, RemoteError> {
    let specs: Vec<FileSpec> = files
        .iter()
        .map(|(url, dest)| FileSpec {
            url: url.clone(),
            dest: dest.clone(),
            size: None,
            checksum: None,
        })
        .collect();
    let results = download::fetch_each(client, settings, specs.clone()).await;
    let mut out = Vec::new();
    for (spec, result) in specs.iter().zip(results) {
        match result {
            Ok(p) => out.push(p),
            Err(e) if ignore_missing && e.status() == Some(404) => {
                tracing::debug!(url = %spec.url, "file not found, ignoring");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
