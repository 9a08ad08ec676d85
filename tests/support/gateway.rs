//! A loopback stand-in for upstream's OpenSearch "dataflow" gateway.
//!
//! Upstream's gateway is internal to NVIDIA, so the tests run against this implementation of its
//! documented contract (upstream-perf-sanity.md §6.4):
//! * `POST /dataflow2/{project}/posting`: JSON array of objects, each with a non-empty `_id`;
//!   `Content-Type: application/json`; non-sandbox projects need
//!   `Proxy-Authorization: Basic base64(user:password)`; every `d_` field must arrive as a JSON
//!   float (what OpenSearch's double mapping of upstream's index expects). Accepted documents are
//!   stamped with `ts_created` (epoch ms) and `@timestamp` like the real ingest pipeline.
//! * `GET /opensearch/df-{project}-*/_search` with a bool query (`term`, `range.gte`, `exists`,
//!   nested `bool` with `must` / `should` / `must_not`) → `{"hits": {"hits": [{_id, _source}]}}`.
//!
//! Failure modes are switchable: a fixed HTTP status, or never answering (for client timeouts).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Follow the contract.
    Accept,
    /// Answer every request with this status.
    Status(u16),
    /// Never answer.
    Hang,
}

/// One request as seen by the stand-in.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub proxy_authorization: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    post_mode: Option<Mode>,
    search_mode: Option<Mode>,
    docs: Vec<Value>,
    seen: Vec<Seen>,
    clock_ms: Option<i64>,
}

/// The running stand-in.
pub struct StandIn {
    pub base_url: String,
    pub user: String,
    pub password: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const PROJECTS: [&str; 2] = [
    "swdl-trtllm-infra-ci-prod-perf_sanity_info",
    "sandbox-temp-trtllm-ci-perf-v1-test_info",
];

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
    expected_auth: String,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(String::from)
}

impl App {
    /// Records a request as seen and returns how requests of its kind are answered.
    fn note(
        &self,
        method: &str,
        path: String,
        headers: &HeaderMap,
        body: &str,
        mode_of: impl Fn(&Inner) -> Option<Mode>,
    ) -> Mode {
        let mut inner = self.inner.lock().unwrap();
        inner.seen.push(Seen {
            method: method.into(),
            path,
            proxy_authorization: header(headers, "proxy-authorization"),
            authorization: header(headers, "authorization"),
            content_type: header(headers, "content-type"),
            body: body.to_string(),
        });
        mode_of(&inner).unwrap_or(Mode::Accept)
    }
}

async fn hang_or(m: Mode) -> Option<StatusCode> {
    match m {
        Mode::Accept => None,
        Mode::Status(s) => Some(StatusCode::from_u16(s).unwrap()),
        Mode::Hang => std::future::pending().await,
    }
}

async fn posting(
    State(app): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let text = String::from_utf8_lossy(&body).to_string();
    let m = app.note(
        "POST",
        format!("/dataflow2/{project}/posting"),
        &headers,
        &text,
        |inner| inner.post_mode,
    );
    if let Some(status) = hang_or(m).await {
        return (status, "stand-in failure mode".to_string());
    }
    if !PROJECTS.contains(&project.as_str()) {
        return (StatusCode::NOT_FOUND, format!("no project {project}"));
    }
    if header(&headers, "content-type").as_deref() != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected JSON".into());
    }
    if !project.contains("sandbox")
        && header(&headers, "proxy-authorization").as_deref() != Some(app.expected_auth.as_str())
    {
        return (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "proxy authentication required".into(),
        );
    }
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
        return (StatusCode::BAD_REQUEST, "expected a JSON array".into());
    };
    for item in &items {
        let Some(obj) = item.as_object() else {
            return (
                StatusCode::BAD_REQUEST,
                "array items must be objects".into(),
            );
        };
        if obj
            .get("_id")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return (
                StatusCode::BAD_REQUEST,
                "every document needs an _id".into(),
            );
        }
        for (k, v) in obj {
            if k.starts_with("d_") && !v.as_number().is_some_and(|n| n.is_f64()) {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("mapper_parsing_exception: {k} is not a double: {v}"),
                );
            }
        }
    }
    let mut inner = app.inner.lock().unwrap();
    let now = inner
        .clock_ms
        .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
    for mut item in items {
        let obj = item.as_object_mut().unwrap();
        obj.insert("ts_created".into(), json!(now));
        obj.insert("@timestamp".into(), json!(now));
        inner.docs.push(item);
    }
    (StatusCode::OK, "{\"result\": \"created\"}".into())
}

fn eval(clause: &Value, doc: &Value) -> bool {
    let Some(obj) = clause.as_object() else {
        return false;
    };
    obj.iter().all(|(kind, spec)| match kind.as_str() {
        "term" => spec.as_object().unwrap().iter().all(|(k, v)| {
            let d = doc.get(k);
            match (d, v) {
                (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (Some(a), b) => a == b,
                (None, _) => false,
            }
        }),
        "range" => spec.as_object().unwrap().iter().all(|(k, r)| {
            let v = doc.get(k).and_then(Value::as_f64);
            let gte = r.get("gte").and_then(Value::as_f64);
            matches!((v, gte), (Some(v), Some(g)) if v >= g)
        }),
        "exists" => spec
            .get("field")
            .and_then(Value::as_str)
            .is_some_and(|f| doc.get(f).is_some_and(|v| !v.is_null())),
        "bool" => {
            let list = |name: &str| -> Vec<Value> {
                match spec.get(name) {
                    Some(Value::Array(a)) => a.clone(),
                    Some(v @ Value::Object(_)) => vec![v.clone()],
                    _ => vec![],
                }
            };
            let must = list("must").iter().all(|c| eval(c, doc));
            let must_not = list("must_not").iter().all(|c| !eval(c, doc));
            let should = list("should");
            let min = spec
                .get("minimum_should_match")
                .and_then(Value::as_u64)
                .unwrap_or(if should.is_empty() { 0 } else { 1 });
            let hits = should.iter().filter(|c| eval(c, doc)).count() as u64;
            must && must_not && hits >= min
        }
        _ => false,
    })
}

async fn search(
    State(app): State<App>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let text = String::from_utf8_lossy(&body).to_string();
    let m = app.note(
        "GET",
        format!("/opensearch/{index}/_search"),
        &headers,
        &text,
        |inner| inner.search_mode,
    );
    if let Some(status) = hang_or(m).await {
        return (status, "stand-in failure mode".to_string());
    }
    let project = index
        .strip_prefix("df-")
        .and_then(|s| s.strip_suffix("-*"))
        .unwrap_or("");
    if !PROJECTS.contains(&project) {
        return (StatusCode::NOT_FOUND, format!("no index {index}"));
    }
    let Ok(q) = serde_json::from_str::<Value>(&text) else {
        return (StatusCode::BAD_REQUEST, "expected a JSON body".into());
    };
    let size = q.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
    let inner = app.inner.lock().unwrap();
    let hits: Vec<Value> = inner
        .docs
        .iter()
        .filter(|d| q.get("query").is_none_or(|c| eval(c, d)))
        .take(size)
        .map(|d| {
            let mut src = d.as_object().unwrap().clone();
            let id = src.remove("_id").unwrap_or(json!(""));
            json!({"_id": id, "_source": src})
        })
        .collect();
    (
        StatusCode::OK,
        json!({"hits": {"total": {"value": hits.len()}, "hits": hits}}).to_string(),
    )
}

impl StandIn {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub fn start() -> StandIn {
        let user = "perf-bot-user".to_string();
        let password = "s3cr3t-PASSWORD-value".to_string();
        let expected_auth = {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = App {
            inner: inner.clone(),
            expected_auth,
        };
        let router = Router::new()
            .route("/dataflow2/{project}/posting", post(posting))
            .route("/opensearch/{index}/_search", get(search))
            .with_state(app);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = axum::serve(listener, router) => {}
                    _ = rx => {}
                }
            });
        });
        StandIn {
            base_url: format!("http://{addr}"),
            user,
            password,
            inner,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// How posts are answered.
    pub fn set_post_mode(&self, m: Mode) {
        self.inner.lock().unwrap().post_mode = Some(m);
    }

    /// How searches are answered.
    pub fn set_search_mode(&self, m: Mode) {
        self.inner.lock().unwrap().search_mode = Some(m);
    }

    /// Fixes the ingest clock (epoch ms) for stamped documents.
    pub fn set_clock(&self, ms: i64) {
        self.inner.lock().unwrap().clock_ms = Some(ms);
    }

    /// Pre-loads history documents (each must carry `_id`).
    pub fn seed(&self, docs: Vec<Value>) {
        self.inner.lock().unwrap().docs.extend(docs);
    }

    /// Accepted documents.
    pub fn docs(&self) -> Vec<Value> {
        self.inner.lock().unwrap().docs.clone()
    }

    /// `_id`s of accepted documents, in arrival order (duplicates kept).
    pub fn accepted_ids(&self) -> Vec<String> {
        self.docs()
            .iter()
            .filter_map(|d| d.get("_id").and_then(Value::as_str).map(String::from))
            .collect()
    }

    /// Every request seen.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A URL on which nothing listens (bound, then released).
pub fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
