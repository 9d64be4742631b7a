//! A ResultsDB API v2.0 test server of our own (the real server is not installable from a
//! package registry), written from the contract in reference/peers.md §5a: POST /results with
//! outcome validation, testcase/group upserts and list-valued `data`; GET filters (`outcome`,
//! `testcases`, `groups`, any other key = data filter, comma = OR), `limit`/`page` paging with
//! `next`/`prev` URLs; /groups, /testcases, /healthcheck; the landing page answers HTTP 300.
//! Binds 127.0.0.1 on an ephemeral port; stops when dropped.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const OUTCOMES: &[&str] = &["PASSED", "INFO", "FAILED", "NEEDS_INSPECTION"];

#[derive(Default)]
struct Db {
    testcases: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    results: Vec<Value>,
}

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Db>>,
    base: String,
}

/// A running server; `url()` is the API base (`http://127.0.0.1:PORT/api/v2.0`).
pub struct ResultsDb {
    base: String,
    db: Arc<Mutex<Db>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ResultsDb {
    pub fn start() -> ResultsDb {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}/api/v2.0");
        let db = Arc::new(Mutex::new(Db::default()));
        let app = App {
            db: db.clone(),
            base: base.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router(app))
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ResultsDb {
            base,
            db,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Every stored result, serialized as the API returns them, oldest first.
    pub fn results(&self) -> Vec<Value> {
        let db = self.db.lock().unwrap();
        db.results
            .iter()
            .map(|r| serialize(&db, r, &self.base))
            .collect()
    }

    pub fn testcase_names(&self) -> Vec<String> {
        self.db.lock().unwrap().testcases.keys().cloned().collect()
    }

    pub fn group(&self, uuid: &str) -> Option<Value> {
        self.db.lock().unwrap().groups.get(uuid).cloned()
    }
}

impl Drop for ResultsDb {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/api/v2.0/", get(landing))
        .route("/api/v2.0", get(landing))
        .route(
            "/api/v2.0/healthcheck",
            get(|| async { Json(json!({"message": "Health check OK"})) }),
        )
        .route("/api/v2.0/results", get(list_results).post(create_result))
        .route("/api/v2.0/results/{id}", get(get_result))
        .route("/api/v2.0/groups", get(list_groups).post(create_group))
        .route("/api/v2.0/groups/{uuid}", get(get_group))
        .route(
            "/api/v2.0/testcases",
            get(list_testcases).post(create_testcase),
        )
        .route("/api/v2.0/testcases/{name}", get(get_testcase))
        .with_state(app)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

async fn landing(State(app): State<App>) -> Response {
    let doc = json!({
        "results": format!("{}/results", app.base),
        "groups": format!("{}/groups", app.base),
        "testcases": format!("{}/testcases", app.base),
        "outcomes": OUTCOMES,
    });
    (StatusCode::MULTIPLE_CHOICES, Json(doc)).into_response()
}

/// The JSON body of a POST; 415 when not declared as JSON, 400 when unparsable.
#[allow(clippy::result_large_err)]
fn json_body(headers: &HeaderMap, body: &str) -> Result<Map<String, Value>, Response> {
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.to_ascii_lowercase().starts_with("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    match serde_json::from_str(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(StatusCode::BAD_REQUEST, "body must be a JSON object")),
    }
}

fn validation(field: &str, msg: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"message": "Validation error", "validation_error": [{"loc": [field], "msg": msg}]})),
    )
        .into_response()
}

fn upsert_testcase(db: &mut Db, name: &str, ref_url: Option<&Value>) {
    let tc = db
        .testcases
        .entry(name.to_string())
        .or_insert_with(|| json!({"name": name, "ref_url": null}));
    if let Some(u) = ref_url.filter(|u| !u.is_null()) {
        tc["ref_url"] = u.clone();
    }
}

fn upsert_group(db: &mut Db, g: &Map<String, Value>) -> String {
    let uuid = g
        .get("uuid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("generated-{}", db.groups.len() + 1));
    let entry = db
        .groups
        .entry(uuid.clone())
        .or_insert_with(|| json!({"uuid": uuid, "description": null, "ref_url": null}));
    for key in ["description", "ref_url"] {
        if let Some(v) = g.get(key).filter(|v| !v.is_null()) {
            entry[key] = v.clone();
        }
    }
    uuid
}

async fn create_result(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let outcome = match body.get("outcome").and_then(Value::as_str) {
        Some(o) if OUTCOMES.contains(&o.trim().to_uppercase().as_str()) => o.trim().to_uppercase(),
        _ => {
            return validation(
                "outcome",
                &format!("must be one of {}", OUTCOMES.join(", ")),
            )
        }
    };
    let (tc_name, tc_url) = match body.get("testcase") {
        Some(Value::String(n)) => (n.clone(), None),
        Some(Value::Object(t)) => (
            t.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            t.get("ref_url").cloned(),
        ),
        _ => return validation("testcase", "required: a name or {name, ref_url}"),
    };
    if tc_name.is_empty() {
        return validation("testcase", "name must not be empty");
    }
    let mut data = Map::new();
    if let Some(d) = body.get("data").filter(|d| !d.is_null()) {
        let Some(d) = d.as_object() else {
            return validation("data", "must be an object");
        };
        for (k, v) in d {
            if k.contains(':') {
                return validation("data", &format!("key {k:?} must not contain ':'"));
            }
            let values: Vec<Value> = match v {
                Value::Array(items) => items.iter().map(stringify).collect(),
                other => vec![stringify(other)],
            };
            data.insert(k.clone(), Value::Array(values));
        }
    }
    let mut db = app.db.lock().unwrap();
    upsert_testcase(&mut db, &tc_name, tc_url.as_ref());
    let mut group_ids = Vec::new();
    for g in body
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match g {
            Value::String(uuid) => {
                let mut m = Map::new();
                m.insert("uuid".into(), json!(uuid));
                group_ids.push(upsert_group(&mut db, &m));
            }
            Value::Object(m) => group_ids.push(upsert_group(&mut db, m)),
            _ => return validation("groups", "items must be uuids or group objects"),
        }
    }
    let id = db.results.len() as u64 + 1;
    let result = json!({
        "id": id,
        "outcome": outcome,
        "testcase": tc_name,
        "groups": group_ids,
        "note": body.get("note").cloned().unwrap_or(Value::Null),
        "ref_url": body.get("ref_url").cloned().unwrap_or(Value::Null),
        "submit_time": now(),
        "data": data,
    });
    db.results.push(result.clone());
    (
        StatusCode::CREATED,
        Json(serialize(&db, &result, &app.base)),
    )
        .into_response()
}

fn stringify(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        Value::Bool(b) => json!(if *b { "True" } else { "False" }),
        Value::Null => json!("None"),
        other => json!(other.to_string()),
    }
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("epoch+{secs}")
}

fn serialize(db: &Db, r: &Value, base: &str) -> Value {
    let name = r["testcase"].as_str().unwrap_or("");
    let tc = db
        .testcases
        .get(name)
        .cloned()
        .unwrap_or(json!({"name": name}));
    let mut out = r.clone();
    out["href"] = json!(format!("{base}/results/{}", r["id"]));
    out["testcase"] = json!({
        "name": name,
        "ref_url": tc["ref_url"],
        "href": format!("{base}/testcases/{name}"),
    });
    out
}

/// `key=value` query pairs; repeated keys and commas both mean OR.
fn filters(q: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in q {
        m.entry(k.clone())
            .or_default()
            .extend(v.split(',').map(str::to_string));
    }
    m
}

fn page_of(items: Vec<Value>, f: &BTreeMap<String, Vec<String>>, url: &str) -> Value {
    let num = |k: &str, d: usize| f.get(k).and_then(|v| v[0].parse().ok()).unwrap_or(d);
    let limit = num("limit", 20).max(1);
    let page = num("page", 0);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(page * limit).take(limit).collect();
    let link = |p: usize| json!(format!("{url}?page={p}&limit={limit}"));
    json!({
        "data": data,
        "prev": if page > 0 { link(page - 1) } else { Value::Null },
        "next": if (page + 1) * limit < total { link(page + 1) } else { Value::Null },
    })
}

async fn list_results(State(app): State<App>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let f = filters(&q);
    let db = app.db.lock().unwrap();
    let mut out: Vec<Value> = db
        .results
        .iter()
        .filter(|r| {
            f.iter().all(|(k, wanted)| match k.as_str() {
                "limit" | "page" | "_sort" | "since" => true,
                "outcome" => wanted
                    .iter()
                    .any(|w| r["outcome"] == json!(w.to_uppercase())),
                "testcases" => wanted.iter().any(|w| r["testcase"] == json!(w)),
                "groups" => wanted.iter().any(|w| {
                    r["groups"]
                        .as_array()
                        .is_some_and(|g| g.contains(&json!(w)))
                }),
                key => r["data"][key]
                    .as_array()
                    .is_some_and(|vals| wanted.iter().any(|w| vals.contains(&json!(w)))),
            })
        })
        .map(|r| serialize(&db, r, &app.base))
        .collect();
    out.reverse(); // newest first
    Json(page_of(out, &f, &format!("{}/results", app.base))).into_response()
}

async fn get_result(State(app): State<App>, Path(id): Path<String>) -> Response {
    let db = app.db.lock().unwrap();
    match id
        .parse::<usize>()
        .ok()
        .and_then(|i| db.results.get(i.wrapping_sub(1)))
    {
        Some(r) => Json(serialize(&db, r, &app.base)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Result not found"),
    }
}

fn with_href(v: &Value, href: String) -> Value {
    let mut v = v.clone();
    v["href"] = json!(href);
    v
}

async fn list_groups(State(app): State<App>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let f = filters(&q);
    let db = app.db.lock().unwrap();
    let items = db
        .groups
        .iter()
        .filter(|(u, _)| f.get("uuid").is_none_or(|w| w.contains(u)))
        .map(|(u, g)| with_href(g, format!("{}/groups/{u}", app.base)))
        .collect();
    Json(page_of(items, &f, &format!("{}/groups", app.base))).into_response()
}

async fn create_group(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut db = app.db.lock().unwrap();
    let uuid = upsert_group(&mut db, &body);
    let g = with_href(&db.groups[&uuid], format!("{}/groups/{uuid}", app.base));
    (StatusCode::CREATED, Json(g)).into_response()
}

async fn get_group(State(app): State<App>, Path(uuid): Path<String>) -> Response {
    let db = app.db.lock().unwrap();
    match db.groups.get(&uuid) {
        Some(g) => Json(with_href(g, format!("{}/groups/{uuid}", app.base))).into_response(),
        None => error(StatusCode::NOT_FOUND, "Group not found"),
    }
}

async fn list_testcases(
    State(app): State<App>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let f = filters(&q);
    let db = app.db.lock().unwrap();
    let items = db
        .testcases
        .iter()
        .filter(|(n, _)| f.get("name").is_none_or(|w| w.contains(n)))
        .map(|(n, t)| with_href(t, format!("{}/testcases/{n}", app.base)))
        .collect();
    Json(page_of(items, &f, &format!("{}/testcases", app.base))).into_response()
}

async fn create_testcase(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return validation("name", "must not be empty");
    }
    let mut db = app.db.lock().unwrap();
    upsert_testcase(&mut db, &name, body.get("ref_url"));
    let t = with_href(
        &db.testcases[&name],
        format!("{}/testcases/{name}", app.base),
    );
    (StatusCode::CREATED, Json(t)).into_response()
}

async fn get_testcase(State(app): State<App>, Path(name): Path<String>) -> Response {
    let db = app.db.lock().unwrap();
    match db.testcases.get(&name) {
        Some(t) => Json(with_href(t, format!("{}/testcases/{name}", app.base))).into_response(),
        None => error(StatusCode::NOT_FOUND, "Testcase not found"),
    }
}
