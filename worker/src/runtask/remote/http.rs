//! The HTTP layer shared by every remote client: settings, the error type, a retry loop with
//! back-off that only retries what can heal (connection errors, timeouts, 5xx, truncated or
//! corrupted bodies), bounded body reads, and [`block_on`] so the synchronous runner can call
//! the async clients from any thread.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;

/// Knobs the remote directives take from the runtask config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connect timeout, per-call timeout of API requests and idle (read) timeout of downloads.
    pub timeout: Duration,
    /// How many times a failed transient operation is retried (0 = try once).
    pub retries: u32,
    /// Downloads running at the same time.
    pub parallel: usize,
    /// Where downloaded RPMs are cached (keyed by file name and size); None disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// First back-off delay; doubles per retry, capped at 8 s.
    pub backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: Duration::from_secs(60),
            retries: 3,
            parallel: 6,
            cache_dir: None,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Largest API (XML-RPC / JSON) response body accepted.
pub const MAX_API_BODY: usize = 64 * 1024 * 1024;

/// Everything that can go wrong talking to a remote service.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: download truncated: got {got} bytes, expected {expected}")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("{url}: {algo} checksum mismatch: got {got}, expected {expected}")]
    Checksum {
        url: String,
        algo: String,
        got: String,
        expected: String,
    },
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    #[error("Koji call {method} failed: fault {code}: {string}")]
    Fault {
        method: String,
        code: i64,
        string: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: giving up after {attempts} attempts: {last}")]
    GaveUp {
        what: String,
        attempts: u32,
        last: Box<RemoteError>,
    },
}

impl RemoteError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Status { status, .. } => *status >= 500 || *status == 429,
            RemoteError::Network { .. }
            | RemoteError::Truncated { .. }
            | RemoteError::Checksum { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status behind this error, looking through retries.
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Status { status, .. } => Some(*status),
            RemoteError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    pub(crate) fn network(url: &str, e: reqwest::Error) -> RemoteError {
        // reqwest's Display hides the cause ("error sending request"); include the chain.
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        RemoteError::Network {
            url: url.to_string(),
            message,
        }
    }
}

/// Builds the HTTP client used for API calls and downloads.
pub fn client(settings: &Settings) -> Result<reqwest::Client, RemoteError> {
    reqwest::Client::builder()
        .connect_timeout(settings.timeout)
        .read_timeout(settings.timeout)
        .user_agent(concat!("taskotron-runtask/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RemoteError::network("(client setup)", e))
}

/// Runs `op` until it succeeds, fails permanently, or `settings.retries` retries are used up.
/// `what` names the operation in logs and in the final error.
pub async fn with_retries<T, F, Fut>(
    settings: &Settings,
    what: &str,
    mut op: F,
) -> Result<T, RemoteError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RemoteError>>,
{
    let mut delay = settings.backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt <= settings.retries => {
                tracing::warn!(%what, attempt, error = %e, "transient failure, retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(e) if e.is_transient() && attempt > 1 => {
                return Err(RemoteError::GaveUp {
                    what: what.to_string(),
                    attempts: attempt,
                    last: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        }
    }
}

/// GETs or POSTs through `req`, checks the status and reads a body of at most `limit` bytes.
pub async fn read_body(
    url: &str,
    req: reqwest::RequestBuilder,
    limit: usize,
) -> Result<Vec<u8>, RemoteError> {
    let resp = req.send().await.map_err(|e| RemoteError::network(url, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(RemoteError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(RemoteError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RemoteError::network(url, e))?;
        if body.len() + chunk.len() > limit {
            return Err(RemoteError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Runs an async remote operation to completion from synchronous code. A fresh runtime on a
/// scoped thread keeps this safe whether or not the caller is itself inside a tokio runtime.
pub fn block_on<F>(fut: F) -> Result<F::Output, RemoteError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| RemoteError::Io {
                    path: PathBuf::from("(tokio runtime)"),
                    source: e,
                })?;
            Ok(rt.block_on(fut))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(RemoteError::Protocol {
                url: String::new(),
                message: "remote operation panicked".into(),
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> Settings {
        Settings {
            retries: 2,
            backoff: Duration::from_millis(1),
            ..Settings::default()
        }
    }

    #[test]
    fn retries_transient_then_gives_up() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = block_on(with_retries(&fast(), "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(RemoteError::Status {
                url: "u".into(),
                status: 503,
            })
        }))
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("giving up after 3 attempts"), "{e}");
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = block_on(with_retries(&fast(), "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(RemoteError::Status {
                url: "u".into(),
                status: 404,
            })
        }))
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(r.unwrap_err().status(), Some(404));
    }

    #[test]
    fn recovers_after_a_transient_error() {
        let calls = AtomicU32::new(0);
        let r = block_on(with_retries(&fast(), "op", || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(RemoteError::Network {
                    url: "u".into(),
                    message: "reset".into(),
                })
            } else {
                Ok(7)
            }
        }))
        .unwrap();
        assert_eq!(r.unwrap(), 7);
    }
}
