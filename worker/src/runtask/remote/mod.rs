//! Clients for the services the remote directives talk to (Koji, Bodhi, dist-git) and the
//! pieces they share: an XML-RPC codec, a retrying HTTP layer, a parallel verifying downloader,
//! arch expansion, N(E)VR handling and the `yumrepoinfo.conf` reader. The directives in
//! `../directives/{koji,bodhi,distgit,yumrepoinfo}.rs` map formula parameters onto these.
pub mod arches;
pub mod bodhi;
pub mod distgit;
pub mod download;
pub mod http;
pub mod koji;
pub mod kojifetch;
pub mod nvr;
pub mod xmlrpc;
pub mod yumrepoinfo;

use std::time::Duration;

use super::config::Config;
use super::directives::DirectiveError;

/// Downloads running at the same time (bounded so one task cannot flood a mirror).
pub const PARALLEL_DOWNLOADS: usize = 6;

/// The remote settings of a runtask config.
pub fn settings(config: &Config) -> http::Settings {
    let cache = &config.download_cache_dir;
    http::Settings {
        timeout: Duration::from_secs(config.remote_timeout.max(1)),
        retries: config.remote_retries,
        parallel: PARALLEL_DOWNLOADS,
        cache_dir: (!cache.as_os_str().is_empty()).then(|| cache.clone()),
        ..http::Settings::default()
    }
}

impl From<http::RemoteError> for DirectiveError {
    fn from(e: http::RemoteError) -> Self {
        DirectiveError::Remote(e.to_string())
    }
}

/// Runs a remote operation from a (synchronous) directive.
pub fn run<T: Send>(
    fut: impl std::future::Future<Output = Result<T, http::RemoteError>> + Send,
) -> Result<T, DirectiveError> {
    Ok(http::block_on(fut)??)
}

/// Applies the config's `url_rewrites` to `url`: the longest matching prefix is replaced.
pub fn rewrite_url(config: &Config, url: &str) -> String {
    config
        .url_rewrites
        .iter()
        .filter(|(from, _)| url.starts_with(from.as_str()))
        .max_by_key(|(from, _)| from.len())
        .map(|(from, to)| format!("{to}{}", &url[from.len()..]))
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_rewrite_prefix_wins() {
        let mut config = Config::default();
        config
            .url_rewrites
            .insert("https://src.fedoraproject.org".into(), "http://a".into());
        config.url_rewrites.insert(
            "https://src.fedoraproject.org/modules".into(),
            "http://b".into(),
        );
        assert_eq!(
            rewrite_url(&config, "https://src.fedoraproject.org/rpms/x"),
            "http://a/rpms/x"
        );
        assert_eq!(
            rewrite_url(&config, "https://src.fedoraproject.org/modules/x"),
            "http://b/x"
        );
        assert_eq!(rewrite_url(&config, "http://other/x"), "http://other/x");
    }
}
