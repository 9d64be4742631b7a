//! The koji directive's actions on top of the hub client: download one build's RPMs, every
//! build in a tag, or the latest stable build of a package, plus build logs. Mirrors
//! libtaskotron's `KojiClient.get_nvr_rpms` / `get_tagged_rpms` / `latest_by_tag` /
//! `get_build_log`, with the downloads done in parallel and verified.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::download::{self, FileSpec};
use super::http::{RemoteError, Settings};
use super::koji::{Build, Hub, Rpm};
use super::nvr::{cmp_nevr, Nevr};

/// What to download of a build.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Koji arches (already expanded, see `arches::compute`).
    pub arches: BTreeSet<String>,
    pub debuginfo: bool,
}

/// Where and how to reach Koji.
pub struct Koji {
    pub hub: Hub,
    pub pkg_url: String,
}

/// The build logs that were (not) fetched.
#[derive(Debug, Default, PartialEq)]
pub struct Logs {
    pub downloaded: Vec<PathBuf>,
    /// Arches whose `build.log` could not be fetched.
    pub errors: Vec<String>,
}

impl Koji {
    fn settings(&self) -> &Settings {
        &self.hub.settings
    }

    /// The files to fetch for `(build, rpm)` pairs into `dest`, with checksums when the hub has
    /// them (one multicall for all).
    async fn specs(
        &self,
        rpms: &[(&Build, Rpm)],
        dest: &Path,
    ) -> Result<Vec<FileSpec>, RemoteError> {
        let ids: Vec<i64> = rpms.iter().map(|(_, r)| r.id).collect();
        let sums = match self.hub.rpm_checksums(&ids).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "no RPM checksums from the hub; checking sizes only");
                vec![None; rpms.len()]
            }
        };
        Ok(rpms
            .iter()
            .zip(sums)
            .map(|((build, rpm), checksum)| FileSpec {
                url: rpm.url(&self.pkg_url, build),
                dest: dest.join(rpm.file_name()),
                size: rpm.size,
                checksum,
            })
            .collect())
    }

    /// Applies the debuginfo choice and sorts by file name.
    fn filter(sel: &Selection, mut rpms: Vec<Rpm>) -> Vec<Rpm> {
        if !sel.debuginfo {
            rpms.retain(|r| !r.is_debuginfo());
        }
        rpms.sort_by_key(Rpm::file_name);
        rpms
    }

    fn arch_list(sel: &Selection) -> Vec<String> {
        sel.arches.iter().cloned().collect()
    }

    /// Looks up `nvr` (epoch ignored) and downloads its RPMs into `dest`; returns their paths,
    /// sorted. An unknown build is an error naming the NVR.
    pub async fn download_build(
        &self,
        nvr: &str,
        sel: &Selection,
        dest: &Path,
    ) -> Result<(Build, Vec<PathBuf>), RemoteError> {
        let nvr = Nevr::parse(nvr)
            .map(|n| n.nvr())
            .unwrap_or_else(|| nvr.to_string());
        let build = self.hub.get_build(&nvr).await?;
        if sel.arches.is_empty() {
            return Ok((build, Vec::new()));
        }
        let rpms = Self::filter(
            sel,
            self.hub.list_rpms(build.id, &Self::arch_list(sel)).await?,
        );
        tracing::info!(nvr = %nvr, count = rpms.len(), dest = %dest.display(), "fetching RPMs");
        let pairs: Vec<(&Build, Rpm)> = rpms.into_iter().map(|r| (&build, r)).collect();
        let specs = self.specs(&pairs, dest).await?;
        let files = download::fetch_all(&self.hub.client, self.settings(), specs).await?;
        Ok((build, files))
    }

    /// Downloads every build tagged in `tag`.
    pub async fn download_tag(
        &self,
        tag: &str,
        sel: &Selection,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, RemoteError> {
        let mut builds = self.hub.list_tagged(tag, None, false).await?;
        builds.sort_by(|a, b| a.nvr.cmp(&b.nvr));
        tracing::info!(tag, count = builds.len(), "fetching tagged builds");
        if sel.arches.is_empty() {
            return Ok(Vec::new());
        }
        // One multicall for the RPM lists of all builds, one for all checksums.
        let per_build = self
            .hub
            .list_rpms_many(&builds, &Self::arch_list(sel))
            .await?;
        let pairs: Vec<(&Build, Rpm)> = builds
            .iter()
            .zip(per_build)
            .flat_map(|(b, rpms)| Self::filter(sel, rpms).into_iter().map(move |r| (b, r)))
            .collect();
        let specs = self.specs(&pairs, dest).await?;
        download::fetch_all(&self.hub.client, self.settings(), specs).await
    }

    /// The newest build of `koji_build`'s package in `f<N>-updates` or `f<N>` (N from its dist
    /// tag), or None if there is none.
    pub async fn latest_stable(&self, koji_build: &str) -> Result<Option<String>, RemoteError> {
        let nevr = Nevr::parse(koji_build).ok_or_else(|| {
            RemoteError::NotFound(format!("'{koji_build}' is not a name-version-release"))
        })?;
        let dist = nevr.dist_tag().ok_or_else(|| {
            RemoteError::NotFound(format!(
                "'{koji_build}' has no Fedora dist tag (.fcNN) to find its stable release from"
            ))
        })?;
        let tag = dist.replace('c', "");
        let tags = [format!("{tag}-updates"), tag];
        let mut best: Option<Nevr> = None;
        for t in &tags {
            for b in self.hub.list_tagged(t, Some(&nevr.name), true).await? {
                if let Some(candidate) = Nevr::parse(&b.nvr) {
                    if best
                        .as_ref()
                        .is_none_or(|cur| cmp_nevr(&candidate, cur).is_gt())
                    {
                        best = Some(candidate);
                    }
                }
            }
        }
        Ok(best.map(|n| n.nvr()))
    }

    /// Fetches `build.log` of each arch the build has RPMs for (within `arches`, never src) as
    /// `<dest>/build.log.<arch>`. Missing logs are reported, not fatal (Koji prunes old logs).
    pub async fn build_logs(
        &self,
        build: &Build,
        arches: &BTreeSet<String>,
        dest: &Path,
    ) -> Result<Logs, RemoteError> {
        let wanted: Vec<String> = arches.iter().filter(|a| *a != "src").cloned().collect();
        if wanted.is_empty() {
            return Ok(Logs::default());
        }
        let rpms = self.hub.list_rpms(build.id, &wanted).await?;
        let build_arches: BTreeSet<String> = rpms.into_iter().map(|r| r.arch).collect();
        let base = self.pkg_url.trim_end_matches('/');
        let arch_list: Vec<String> = build_arches.into_iter().collect();
        let specs = arch_list
            .iter()
            .map(|arch| FileSpec {
                url: format!(
                    "{base}/{}/{}/{}/data/logs/{arch}/build.log",
                    build.package_name, build.version, build.release
                ),
                dest: dest.join(format!("build.log.{arch}")),
                size: None,
                checksum: None,
            })
            .collect();
        let results = download::fetch_each(&self.hub.client, self.settings(), specs).await;
        let mut logs = Logs::default();
        for (arch, r) in arch_list.into_iter().zip(results) {
            match r {
                Ok(p) => logs.downloaded.push(p),
                Err(e) => {
                    tracing::warn!(%arch, error = %e, "build.log not available");
                    logs.errors.push(arch);
                }
            }
        }
        Ok(logs)
    }
}
