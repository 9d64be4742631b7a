//! One loopback HTTP server playing Fedora's remote services for the remote-directive tests:
//!
//! * `POST /kojihub`: the Koji hub (XML-RPC, see `koji_hub.rs`);
//! * `GET /packages/<name>/<version>/<release>/<arch>/<file>` and
//!   `.../data/logs/<arch>/build.log`: Koji's package file layout (kojipkgs);
//! * `GET /bodhi/updates/?updateid=<ID>`: Bodhi 2's update query;
//! * `GET /distgit/<namespace>/<package>/raw/<gitref>/f/<path>`: dist-git raw files.
//!
//! Faults on demand ([`Knobs`]): a slow hub, HTTP 503 for the first N hub calls, per-file
//! truncated (Content-Length promised, connection cut) or corrupted bodies, per-file latency.
//! [`Stats`] records what was asked, so tests can check retries and parallelism.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::koji_hub::Hub;
use super::xmlrpc;

/// Misbehaviour to simulate.
#[derive(Debug, Default, Clone)]
pub struct Knobs {
    /// Delay before the hub answers (longer than the client timeout = a hung hub).
    pub hub_delay: Duration,
    /// Answer HTTP 503 to this many hub calls first.
    pub hub_fail_first: u32,
    /// File name → how many times to cut its body short.
    pub truncate: BTreeMap<String, u32>,
    /// File name → how many times to serve it with flipped bytes (same length).
    pub corrupt: BTreeMap<String, u32>,
    /// Delay before every package file response (a far-away mirror).
    pub file_latency: Duration,
}

/// What the server saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Hub methods called, in order (multicall members as `system.multicall:<method>`).
    pub calls: Vec<String>,
    /// Requests per URL path (package files, logs, dist-git files).
    pub gets: BTreeMap<String, u32>,
    pub files_in_flight: usize,
    pub max_files_in_flight: usize,
}

#[derive(Default)]
pub struct Data {
    pub hub: Hub,
    /// Path under /packages/ → content.
    pub files: BTreeMap<String, Bytes>,
    /// Bodhi update id → build NVRs.
    pub updates: BTreeMap<String, Vec<String>>,
    /// `<namespace>/<package>/<gitref>/<path>` → content.
    pub distgit: BTreeMap<String, Bytes>,
    pub knobs: Knobs,
    pub stats: Stats,
}

pub type Shared = Arc<Mutex<Data>>;

/// The running server; stops when dropped.
pub struct Server {
    pub port: u16,
    pub data: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(data: Data) -> Server {
        let data: Shared = Arc::new(Mutex::new(data));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(data.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        Server {
            port,
            data,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn koji_url(&self) -> String {
        format!("{}/kojihub", self.base())
    }
    pub fn pkg_url(&self) -> String {
        format!("{}/packages", self.base())
    }
    pub fn bodhi_url(&self) -> String {
        format!("{}/bodhi/", self.base())
    }
    pub fn distgit_url(&self) -> String {
        format!("{}/distgit", self.base())
    }
    pub fn stats(&self) -> Stats {
        self.data.lock().unwrap().stats.clone()
    }
    pub fn set_knobs(&self, knobs: Knobs) {
        self.data.lock().unwrap().knobs = knobs;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Not joined: a handler may still be sleeping in a "hung hub" test; the thread ends
        // with the test process.
        self.thread.take();
    }
}

fn router(data: Shared) -> Router {
    Router::new()
        .route("/kojihub", post(hub))
        .route("/packages/{*path}", get(package_file))
        .route("/bodhi/updates/", get(bodhi_updates))
        .route("/distgit/{*path}", get(distgit_file))
        .with_state(data)
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn hub(State(data): State<Shared>, body: String) -> Response {
    let (method, args, kwargs) = match xmlrpc::decode_call(&body) {
        Ok(c) => c,
        Err(e) => return xml(xmlrpc::fault(1, &format!("bad request: {e}"))),
    };
    let delay = {
        let mut d = data.lock().unwrap();
        if d.knobs.hub_fail_first > 0 {
            d.knobs.hub_fail_first -= 1;
            d.stats.calls.push("(503)".into());
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "<html>503 Service Unavailable</html>",
            )
                .into_response();
        }
        d.stats.calls.push(method.clone());
        if method == "system.multicall" {
            if let Some(xmlrpc::X::Array(calls)) = args.first() {
                for c in calls {
                    if let xmlrpc::X::Struct(m) = c {
                        let name = m.get("methodName").and_then(|n| n.str()).unwrap_or("?");
                        d.stats.calls.push(format!("system.multicall:{name}"));
                    }
                }
            }
        }
        d.knobs.hub_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let d = data.lock().unwrap();
    let answer = if method == "system.multicall" {
        d.hub.multicall(args.first().unwrap_or(&xmlrpc::X::Nil))
    } else {
        d.hub.call(&method, &args, &kwargs)
    };
    match answer {
        Ok(v) => xml(xmlrpc::response(&v)),
        Err((code, s)) => xml(xmlrpc::fault(code, &s)),
    }
}

/// Counts in-flight file responses (for the parallelism check).
struct InFlight(Shared);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().stats.files_in_flight -= 1;
    }
}

async fn package_file(State(data): State<Shared>, Path(path): Path<String>) -> Response {
    let name = path.rsplit('/').next().unwrap_or_default().to_string();
    let (content, latency, truncate, corrupt) = {
        let mut d = data.lock().unwrap();
        *d.stats.gets.entry(format!("/packages/{path}")).or_default() += 1;
        d.stats.files_in_flight += 1;
        d.stats.max_files_in_flight = d.stats.max_files_in_flight.max(d.stats.files_in_flight);
        let content = d.files.get(&path).cloned();
        let latency = d.knobs.file_latency;
        let once = |m: &mut BTreeMap<String, u32>| match m.get_mut(&name) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        let truncate = once(&mut d.knobs.truncate);
        let corrupt = once(&mut d.knobs.corrupt);
        (content, latency, truncate, corrupt)
    };
    let _guard = InFlight(data.clone());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some(content) = content else {
        return (StatusCode::NOT_FOUND, "<html>404 Not Found</html>").into_response();
    };
    if truncate {
        // Promise the whole file, send half, then break the connection. The pause lets hyper
        // flush the headers and the first half before the body fails, as a dying peer would.
        let half = content.slice(..content.len() / 2);
        let body = futures_util::stream::unfold(0u8, move |stage| {
            let half = half.clone();
            async move {
                match stage {
                    0 => Some((Ok(half), 1)),
                    1 => {
                        tokio::task::yield_now().await;
                        Some((
                            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "cut")),
                            2,
                        ))
                    }
                    _ => None,
                }
            }
        });
        return Response::builder()
            .header(header::CONTENT_LENGTH, content.len())
            .body(Body::from_stream(body))
            .expect("response");
    }
    let body = if corrupt {
        let mut bad = content.to_vec();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        Bytes::from(bad)
    } else {
        content
    };
    ([(header::CONTENT_TYPE, "application/x-rpm")], body).into_response()
}

async fn bodhi_updates(
    State(data): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let d = data.lock().unwrap();
    let Some(id) = q.get("updateid").or_else(|| q.get("alias")) else {
        return (StatusCode::BAD_REQUEST, "updateid missing").into_response();
    };
    let updates: Vec<serde_json::Value> = d
        .updates
        .get(id)
        .map(|nvrs| {
            vec![serde_json::json!({
                "alias": id,
                "updateid": id,
                "title": nvrs.join(" "),
                "status": "testing",
                "type": "bugfix",
                "release": {"name": "F27", "dist_tag": "f27"},
                "builds": nvrs.iter().map(|n| serde_json::json!({"nvr": n, "type": "rpm", "signed": true})).collect::<Vec<_>>(),
            })]
        })
        .unwrap_or_default();
    let total = updates.len();
    axum::Json(serde_json::json!({
        "updates": updates, "page": 1, "pages": 1, "rows_per_page": 20, "total": total,
    }))
    .into_response()
}

async fn distgit_file(State(data): State<Shared>, Path(path): Path<String>) -> Response {
    let mut d = data.lock().unwrap();
    *d.stats.gets.entry(format!("/distgit/{path}")).or_default() += 1;
    // <namespace>/<package>/raw/<gitref>/f/<file path>
    let parts: Vec<&str> = path.splitn(6, '/').collect();
    if parts.len() == 6 && parts[2] == "raw" && parts[4] == "f" {
        let key = format!("{}/{}/{}/{}", parts[0], parts[1], parts[3], parts[5]);
        if let Some(c) = d.distgit.get(&key) {
            return ([(header::CONTENT_TYPE, "text/plain")], c.clone()).into_response();
        }
    }
    (
        StatusCode::NOT_FOUND,
        "<html><h1>Page not found</h1></html>",
    )
        .into_response()
}
