//! Parallel, verifying file downloads.
//!
//! Every file is streamed to `<dest>.part`, hashed on the way, checked against the expected size
//! (a short body is a truncated download) and checksum when known, and only then renamed into
//! place. Failed transfers are retried (see [`http::with_retries`]); at most
//! `Settings::parallel` transfers run at once. RPMs are immutable in Koji, so with a cache
//! directory a file whose name and size match a cached copy is copied from the cache instead of
//! being fetched again (copied, not hard-linked, so a task that edits its files cannot corrupt
//! the cache).

use std::path::{Path, PathBuf};

use futures_util::{stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::http::{self, RemoteError, Settings};

/// Largest file accepted when the server's metadata gives no size (dist-git files, build logs).
pub const MAX_UNSIZED: u64 = 1024 * 1024 * 1024;

/// A checksum algorithm a server may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha256,
}

impl Algo {
    pub fn parse(name: &str) -> Option<Algo> {
        match name.to_ascii_lowercase().as_str() {
            "md5" => Some(Algo::Md5),
            "sha256" => Some(Algo::Sha256),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha256 => "sha256",
        }
    }
}

/// An expected checksum (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algo: Algo,
    pub hex: String,
}

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub url: String,
    pub dest: PathBuf,
    /// Expected size in bytes, when the server's metadata says (also the cache key).
    pub size: Option<u64>,
    pub checksum: Option<Checksum>,
}

enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
}

impl Hasher {
    fn new(algo: Algo) -> Hasher {
        match algo {
            Algo::Md5 => Hasher::Md5(Md5::new()),
            Algo::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }
    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn io_err(path: &Path, source: std::io::Error) -> RemoteError {
    RemoteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fetches every spec (at most `settings.parallel` at once) and returns one result per spec, in
/// the order given. Failures of one file do not stop the others.
pub async fn fetch_each(
    client: &reqwest::Client,
    settings: &Settings,
    specs: Vec<FileSpec>,
) -> Vec<Result<PathBuf, RemoteError>> {
    let parallel = settings.parallel.max(1);
    stream::iter(specs.into_iter().map(|spec| async move {
        let what = format!("download {}", spec.url);
        http::with_retries(settings, &what, || fetch_once(client, settings, &spec)).await
    }))
    .buffered(parallel)
    .collect()
    .await
}

/// Like [`fetch_each`], but fails on the first file that could not be fetched.
pub async fn fetch_all(
    client: &reqwest::Client,
    settings: &Settings,
    specs: Vec<FileSpec>,
) -> Result<Vec<PathBuf>, RemoteError> {
    fetch_each(client, settings, specs)
        .await
        .into_iter()
        .collect()
}

/// One attempt at one file: cache hit, or stream + verify + rename (+ store in cache).
async fn fetch_once(
    client: &reqwest::Client,
    settings: &Settings,
    spec: &FileSpec,
) -> Result<PathBuf, RemoteError> {
    if let Some(parent) = spec.dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_err(parent, e))?;
    }
    let cached = cache_path(settings, spec);
    if let Some(cached) = &cached {
        if from_cache(cached, spec).await? {
            tracing::debug!(file = %spec.dest.display(), "taken from the download cache");
            return Ok(spec.dest.clone());
        }
    }

    let resp = client
        .get(&spec.url)
        .send()
        .await
        .map_err(|e| RemoteError::network(&spec.url, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(RemoteError::Status {
            url: spec.url.clone(),
            status: status.as_u16(),
        });
    }
    let expected = spec.size.or(resp.content_length());
    let part = part_path(&spec.dest);
    // A large buffer: each tokio file write is a trip to the blocking pool.
    let mut file = tokio::io::BufWriter::with_capacity(
        1024 * 1024,
        tokio::fs::File::create(&part)
            .await
            .map_err(|e| io_err(&part, e))?,
    );
    let mut hasher = spec.checksum.as_ref().map(|c| Hasher::new(c.algo));
    let mut got: u64 = 0;
    let mut body = resp.bytes_stream();
    let streamed: Result<(), RemoteError> = async {
        while let Some(chunk) = body.next().await {
            // A connection closed early surfaces here as a body error: that is a truncation
            // (or, when the size is unknown, a network error).
            let chunk = chunk.map_err(|e| match expected {
                Some(expected) => RemoteError::Truncated {
                    url: spec.url.clone(),
                    got,
                    expected,
                },
                None => RemoteError::network(&spec.url, e),
            })?;
            got += chunk.len() as u64;
            if got > expected.unwrap_or(MAX_UNSIZED) {
                return Err(RemoteError::Protocol {
                    url: spec.url.clone(),
                    message: format!(
                        "body longer than the {} bytes expected",
                        expected.unwrap_or(MAX_UNSIZED)
                    ),
                });
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            file.write_all(&chunk).await.map_err(|e| io_err(&part, e))?;
        }
        file.flush().await.map_err(|e| io_err(&part, e))?;
        Ok(())
    }
    .await;
    drop(file);
    let verified = streamed.and_then(|()| verify(spec, got, expected, hasher));
    if let Err(e) = verified {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, &spec.dest)
        .await
        .map_err(|e| io_err(&spec.dest, e))?;
    if let Some(cached) = &cached {
        store_in_cache(&spec.dest, cached).await;
    }
    Ok(spec.dest.clone())
}

fn verify(
    spec: &FileSpec,
    got: u64,
    expected: Option<u64>,
    hasher: Option<Hasher>,
) -> Result<(), RemoteError> {
    if let Some(n) = expected {
        if got != n {
            return Err(RemoteError::Truncated {
                url: spec.url.clone(),
                got,
                expected: n,
            });
        }
    }
    if let (Some(want), Some(h)) = (&spec.checksum, hasher) {
        let have = h.hex();
        if !have.eq_ignore_ascii_case(&want.hex) {
            return Err(RemoteError::Checksum {
                url: spec.url.clone(),
                algo: want.algo.name().into(),
                got: have,
                expected: want.hex.clone(),
            });
        }
    }
    Ok(())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// `<cache>/<size>/<file name>`: only files of known size are cached.
fn cache_path(settings: &Settings, spec: &FileSpec) -> Option<PathBuf> {
    let dir = settings.cache_dir.as_ref()?;
    let size = spec.size?;
    let name = spec.dest.file_name()?;
    Some(dir.join(size.to_string()).join(name))
}

/// Copies a cached file into place if it exists with the right size (and checksum, if known).
async fn from_cache(cached: &Path, spec: &FileSpec) -> Result<bool, RemoteError> {
    let Ok(meta) = tokio::fs::metadata(cached).await else {
        return Ok(false);
    };
    if Some(meta.len()) != spec.size {
        return Ok(false);
    }
    if let Some(want) = &spec.checksum {
        let data = tokio::fs::read(cached)
            .await
            .map_err(|e| io_err(cached, e))?;
        let mut h = Hasher::new(want.algo);
        h.update(&data);
        if !h.hex().eq_ignore_ascii_case(&want.hex) {
            tracing::warn!(file = %cached.display(), "cached copy has a wrong checksum, refetching");
            return Ok(false);
        }
    }
    let part = part_path(&spec.dest);
    tokio::fs::copy(cached, &part)
        .await
        .map_err(|e| io_err(&part, e))?;
    tokio::fs::rename(&part, &spec.dest)
        .await
        .map_err(|e| io_err(&spec.dest, e))?;
    Ok(true)
}

/// Best effort: a cache that cannot be written only costs a later re-download.
async fn store_in_cache(file: &Path, cached: &Path) {
    let Some(dir) = cached.parent() else { return };
    if tokio::fs::create_dir_all(dir).await.is_err() {
        return;
    }
    // Unique per process: several runtask runs may share the cache.
    let tmp = cached.with_extension(format!("part-{}", std::process::id()));
    let ok = tokio::fs::copy(file, &tmp).await.is_ok();
    if !ok || tokio::fs::rename(&tmp, cached).await.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_vectors() {
        let mut h = Hasher::new(Algo::Sha256);
        h.update(b"abc");
        assert_eq!(
            h.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(Algo::Md5);
        h.update(b"abc");
        assert_eq!(h.hex(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn short_body_is_truncation_and_bad_hash_is_checksum_error() {
        let spec = FileSpec {
            url: "http://x/f".into(),
            dest: PathBuf::from("/tmp/f"),
            size: Some(10),
            checksum: Some(Checksum {
                algo: Algo::Md5,
                hex: "00".into(),
            }),
        };
        let e = verify(&spec, 4, Some(10), None).unwrap_err();
        assert!(matches!(
            e,
            RemoteError::Truncated {
                got: 4,
                expected: 10,
                ..
            }
        ));
        assert!(e.is_transient());
        let e = verify(&spec, 10, Some(10), Some(Hasher::new(Algo::Md5))).unwrap_err();
        assert!(matches!(e, RemoteError::Checksum { .. }), "{e}");
    }

    #[test]
    fn cache_key_is_size_and_name() {
        let settings = Settings {
            cache_dir: Some(PathBuf::from("/c")),
            ..Settings::default()
        };
        let mut spec = FileSpec {
            url: "u".into(),
            dest: PathBuf::from("/w/foo-1-1.noarch.rpm"),
            size: Some(123),
            checksum: None,
        };
        assert_eq!(
            cache_path(&settings, &spec),
            Some(PathBuf::from("/c/123/foo-1-1.noarch.rpm"))
        );
        spec.size = None;
        assert_eq!(cache_path(&settings, &spec), None);
    }
}
