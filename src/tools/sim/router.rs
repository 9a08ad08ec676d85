//! The simulated `trtllm-serve disaggregated` router.
//!
//! Context-first scheduling as in TensorRT-LLM's `openai_disagg_service.py`: each request goes to
//! a context worker as `context_only` (non-streaming), the returned `disaggregated_params` (with
//! `request_type` switched to `generation_only` and `ctx_usage` added) and `prompt_token_ids`
//! go to a generation worker, whose response (streamed or not) is relayed to the client.
//! Workers are picked round robin per pool. With `TRTLLM_DISAGG_BENCHMARK_GEN_ONLY=1` the
//! context call is skipped and the generation request carries upstream's hard-coded
//! `first_gen_tokens: [7]`, `ctx_request_id: 1`. A worker that fails turns into an HTTP error
//! (before the stream starts) or an error event followed by an aborted stream (after), never a
//! hung response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::{Value, json};

use super::auth;
use super::cli::DisaggCli;
use super::config::SimConfig;
use super::encode::error_body;
use super::faults::Faults;
use super::log;
use super::protocol::Endpoint;
use super::report_addr;
use super::server_config::DisaggServerConfig;
use super::signals;

/// Everything the router needs to start.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Parsed `trtllm-serve disaggregated` options.
    pub cli: DisaggCli,
    /// The `sim:` section.
    pub sim: SimConfig,
    /// `--role`.
    pub role: Option<String>,
    /// `TRTLLM_DISAGG_BENCHMARK_GEN_ONLY=1`.
    pub gen_only: bool,
}

struct RouterState {
    ctx: Vec<String>,
    gen_urls: Vec<String>,
    ctx_rr: AtomicUsize,
    gen_rr: AtomicUsize,
    client: reqwest::Client,
    health_client: reqwest::Client,
    gen_only: bool,
    ready: AtomicBool,
    faults: Faults,
    request_timeout: Duration,
    next_disagg_id: AtomicU64,
    auth_key: Option<String>,
}

/// Runs the router until SIGTERM/SIGINT; returns the exit code.
pub fn run(options: RouterOptions) -> u8 {
    let path = options
        .cli
        .config_file
        .clone()
        .expect("checked by cli::check_router");
    let config = match DisaggServerConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            log::error(&format!("[sim] server config rejected: {e}"));
            return 1;
        }
    };
    if config.generation.urls.is_empty() {
        log::error(&format!(
            "[sim] {}: generation_servers has no urls",
            path.display()
        ));
        return 1;
    }
    if config.context.urls.is_empty() && !options.gen_only {
        log::error(&format!(
            "[sim] {}: context_servers has no urls (only allowed with \
             TRTLLM_DISAGG_BENCHMARK_GEN_ONLY=1)",
            path.display()
        ));
        return 1;
    }
    for pool in [&config.context, &config.generation] {
        if pool.router_type != "round_robin" {
            log::warn(&format!(
                "[sim] router type {:?} is simulated as round_robin",
                pool.router_type
            ));
        }
    }
    signals::run_server(|signal| serve(options, config, signal))
}

async fn serve(
    options: RouterOptions,
    config: DisaggServerConfig,
    signal: signals::ShutdownSignals,
) -> u8 {
    let listener = match report_addr::bind(&config.hostname, config.port) {
        Ok(l) => l,
        Err(e) => {
            log::error(&format!(
                "[sim] failed to bind socket to {}:{}: {e}",
                config.hostname, config.port
            ));
            return 1;
        }
    };
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    if let Some(path) = &options.cli.report_addr
        && let Err(e) = report_addr::write_atomic(path, &config.hostname, port)
    {
        log::error(&format!(
            "[sim] cannot write --report_addr {}: {e}",
            path.display()
        ));
        return 1;
    }
    let client = match reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            log::error(&format!("[sim] cannot build the HTTP client: {e}"));
            return 1;
        }
    };
    let health_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|_| client.clone());
    let state = Arc::new(RouterState {
        ctx: config.context.urls.clone(),
        gen_urls: config.generation.urls.clone(),
        ctx_rr: AtomicUsize::new(0),
        gen_rr: AtomicUsize::new(0),
        client,
        health_client,
        gen_only: options.gen_only,
        ready: AtomicBool::new(false),
        faults: Faults::new(options.sim.faults_for(options.role.as_deref())),
        request_timeout: Duration::from_secs(options.cli.request_timeout.max(1)),
        next_disagg_id: AtomicU64::new(1),
        auth_key: config.internal_request_auth_key.clone(),
    });
    log::info(&format!(
        "[sim] simulated disaggregated router on http://{} (context: {:?}, generation: {:?}{})",
        report_addr::format_addr(&config.hostname, port),
        state.ctx,
        state.gen_urls,
        if state.gen_only {
            "; TRTLLM_DISAGG_BENCHMARK_GEN_ONLY=1: context servers skipped"
        } else {
            ""
        }
    ));
    tokio::spawn(wait_for_workers(
        state.clone(),
        Duration::from_secs(options.cli.server_start_timeout),
    ));
    let app = Router::new()
        .route("/health", get(health))
        .route("/cluster_info", get(cluster_info))
        .route("/version", get(version))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .layer(DefaultBodyLimit::max(256 << 20))
        .with_state(state);
    signals::serve_until_signal(listener, app, signal, || {}).await
}

impl RouterState {
    fn pools(&self) -> impl Iterator<Item = &String> {
        let ctx: &[String] = if self.gen_only { &[] } else { &self.ctx };
        ctx.iter().chain(self.gen_urls.iter())
    }

    /// Workers whose `/health` does not answer 200 right now.
    async fn unready(&self) -> Vec<String> {
        let checks = self.pools().map(|url| async move {
            let ok = self
                .health_client
                .get(format!("http://{url}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            (!ok).then(|| url.clone())
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    fn pick<'a>(&self, pool: &'a [String], counter: &AtomicUsize) -> &'a str {
        &pool[counter.fetch_add(1, Ordering::Relaxed) % pool.len()]
    }
}

async fn wait_for_workers(state: Arc<RouterState>, timeout: Duration) {
    let deadline = crate::util::deadline::deadline_after(Instant::now(), timeout);
    let mut last_report = Instant::now();
    loop {
        let unready = state.unready().await;
        if unready.is_empty() {
            state.ready.store(true, Ordering::Release);
            log::info(if state.gen_only {
                "[sim] generation servers are ready (context servers skipped)"
            } else {
                "[sim] all servers are ready"
            });
            return;
        }
        if crate::util::deadline::passed(deadline) {
            log::error(&format!(
                "[sim] timeout waiting for context and generation servers to be ready after {} s; \
                 not ready: {unready:?}",
                timeout.as_secs()
            ));
            std::process::exit(1);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            log::info(&format!("[sim] waiting for servers: {unready:?}"));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn error_response(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        axum::Json(error_body(message, kind, status.as_u16())),
    )
        .into_response()
}

async fn health(State(st): State<Arc<RouterState>>) -> Response {
    if st.faults.never_ready() || !st.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "cluster is not ready").into_response();
    }
    let unready = st.unready().await;
    if unready.is_empty() {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("workers not ready: {}", unready.join(", ")),
        )
            .into_response()
    }
}

async fn cluster_info(State(st): State<Arc<RouterState>>) -> Response {
    axum::Json(json!({
        "is_ready": st.ready.load(Ordering::Acquire) && !st.faults.never_ready(),
        "context_servers": st.ctx,
        "generation_servers": st.gen_urls,
    }))
    .into_response()
}

async fn version() -> Response {
    axum::Json(json!({"version": format!("{}-perfsanity-sim", env!("CARGO_PKG_VERSION"))}))
        .into_response()
}

async fn completions(State(st): State<Arc<RouterState>>, body: Bytes) -> Response {
    handle(st, Endpoint::Completions, body).await
}

async fn chat_completions(State(st): State<Arc<RouterState>>, body: Bytes) -> Response {
    handle(st, Endpoint::Chat, body).await
}

/// A worker answer relayed as is.
fn relay(status: reqwest::StatusCode, content_type: Option<String>, body: Bytes) -> Response {
    let mut builder = Response::builder().status(status.as_u16());
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder
        .body(Body::from(body))
        .expect("relayed response parts are valid")
}

async fn handle(st: Arc<RouterState>, endpoint: Endpoint, body: Bytes) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cluster is not ready",
            "ServiceUnavailableError",
        );
    }
    if st.faults.take_http_500() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated internal error (fault injection: http_500_every)",
            "InternalServerError",
        );
    }
    let bad = |m: &str| error_response(StatusCode::BAD_REQUEST, m, "BadRequestError");
    let mut request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad("request body must be a JSON object"),
        Err(e) => return bad(&format!("request body is not valid JSON: {e}")),
    };
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if endpoint == Endpoint::Completions
        && let Err(m) = normalize_prompt(&mut request)
    {
        return bad(&m.to_string());
    }
    let path = match endpoint {
        Endpoint::Completions => "v1/completions",
        Endpoint::Chat => "v1/chat/completions",
    };
    let disagg_id = st.next_disagg_id.fetch_add(1, Ordering::Relaxed);
    let gen_request = if st.gen_only {
        request["disaggregated_params"] = json!({
            "request_type": "generation_only",
            "first_gen_tokens": [7],
            "ctx_request_id": 1,
            "encoded_opaque_state": null,
            "draft_tokens": null,
        });
        request["ignore_eos"] = Value::Bool(true);
        request
    } else {
        match context_phase(&st, endpoint, path, request, disagg_id, stream).await {
            Ok(ContextOutcome::Generate(r)) => r,
            Ok(ContextOutcome::Done(response)) => {
                st.faults.request_finished();
                return response;
            }
            Err(response) => return response,
        }
    };
    generation_phase(st, path, gen_request, stream).await
}

/// Why a completions request's prompt was refused; the texts match upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum PromptError {
    /// Several prompts, or a prompt of another type.
    #[error(
        "Disaggregated server currently only supports single string prompt or list of integers \
         in request"
    )]
    Unsupported,
    /// No `prompt` key.
    #[error("prompt: field required")]
    Missing,
}

/// Upstream's rule: one text prompt (a one-element list is unwrapped) or one token-id list.
fn normalize_prompt(request: &mut Value) -> Result<(), PromptError> {
    let prompt = request.get_mut("prompt");
    match prompt {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.len() == 1 && !items[0].is_number() => {
            let only = items.remove(0);
            request["prompt"] = only;
            Ok(())
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_i64) => Ok(()),
        Some(_) => Err(PromptError::Unsupported),
        None => Err(PromptError::Missing),
    }
}

enum ContextOutcome {
    /// The generation request to send next.
    Generate(Value),
    /// The context worker finished the request on its own.
    Done(Response),
}

async fn context_phase(
    st: &RouterState,
    endpoint: Endpoint,
    path: &str,
    request: Value,
    disagg_id: u64,
    stream: bool,
) -> Result<ContextOutcome, Response> {
    let mut ctx_request = request.clone();
    ctx_request["disaggregated_params"] = json!({
        "request_type": "context_only",
        "disagg_request_id": disagg_id,
    });
    ctx_request["stream"] = Value::Bool(false);
    ctx_request["stream_options"] = Value::Null;
    let url = st.pick(&st.ctx, &st.ctx_rr).to_string();
    // Like trtllm-serve's router, a worker's failure is logged with the worker's address.
    let gateway = |m: String| {
        log::warn(&format!("[sim] {m}"));
        error_response(StatusCode::BAD_GATEWAY, &m, "InternalServerError")
    };
    let response = st
        .client
        .post(format!("http://{url}/{path}"))
        .json(&ctx_request)
        .timeout(st.request_timeout)
        .send()
        .await
        .map_err(|e| gateway(format!("context server {url} failed: {e}")))?;
    let status = response.status();
    let content_type = content_type(&response);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| gateway(format!("context server {url} failed mid-response: {e}")))?;
    if status != reqwest::StatusCode::OK {
        log::warn(&format!(
            "[sim] context server {url} answered HTTP {status}"
        ));
        return Err(relay(status, content_type, bytes));
    }
    let mut ctx: Value = serde_json::from_slice(&bytes)
        .map_err(|e| gateway(format!("context server {url} sent invalid JSON: {e}")))?;
    let choices = ctx["choices"].as_array().map(Vec::len).unwrap_or(0);
    if choices != 1 {
        return Err(gateway(format!(
            "Context server returned {choices} choices, expecting 1."
        )));
    }
    let params = &ctx["choices"][0]["disaggregated_params"];
    if !params.is_object() {
        return Err(gateway(
            "Context server did not return disaggregated params.".into(),
        ));
    }
    if params["ctx_request_id"].is_null() || params["disagg_request_id"].is_null() {
        return Err(gateway(format!(
            "Invalid disaggregated params from context server {url}: ctx_request_id and \
             disagg_request_id are required"
        )));
    }
    let finish = ctx["choices"][0]["finish_reason"].as_str().unwrap_or("");
    if finish != "length" && finish != "not_finished" {
        if stream {
            return Ok(ContextOutcome::Done(
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from("data: [DONE]\n\n"))
                    .expect("static response"),
            ));
        }
        if let Some(choice) = ctx["choices"][0].as_object_mut() {
            choice.remove("disaggregated_params");
        }
        return Ok(ContextOutcome::Done(axum::Json(ctx).into_response()));
    }
    let mut params = ctx["choices"][0]["disaggregated_params"].take();
    params["request_type"] = json!("generation_only");
    params["ctx_usage"] = ctx["usage"].take();
    params["disagg_request_id"] = json!(disagg_id);
    let mut gen_request = request;
    gen_request["disaggregated_params"] = params;
    let prompt_ids = ctx["prompt_token_ids"].take();
    match endpoint {
        Endpoint::Completions => gen_request["prompt"] = prompt_ids,
        Endpoint::Chat => gen_request["prompt_token_ids"] = prompt_ids,
    }
    Ok(ContextOutcome::Generate(gen_request))
}

async fn generation_phase(
    st: Arc<RouterState>,
    path: &str,
    gen_request: Value,
    stream: bool,
) -> Response {
    let url = st.pick(&st.gen_urls, &st.gen_rr).to_string();
    // Like trtllm-serve's router, a worker's failure is logged with the worker's address.
    let gateway = |m: String| {
        log::warn(&format!("[sim] {m}"));
        error_response(StatusCode::BAD_GATEWAY, &m, "InternalServerError")
    };
    let mut builder = st
        .client
        .post(format!("http://{url}/{path}"))
        .json(&gen_request)
        .timeout(st.request_timeout);
    let params = &gen_request["disaggregated_params"];
    let state = params.get("encoded_opaque_state").unwrap_or(&Value::Null);
    let endpoint = params.get("ctx_info_endpoint").unwrap_or(&Value::Null);
    if auth::requires_auth(state, endpoint) {
        let Some(key) = &st.auth_key else {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal disaggregated authentication key is required for protected \
                 disaggregated request fields (internal_request_auth_key in server_config)",
                "InternalServerError",
            );
        };
        builder = builder.header(auth::AUTH_HEADER, auth::sign(key, state, endpoint));
    }
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return gateway(format!("generation server {url} failed: {e}")),
    };
    let status = response.status();
    if !stream || status != reqwest::StatusCode::OK {
        let content_type = content_type(&response);
        return match response.bytes().await {
            Ok(bytes) => {
                if status == reqwest::StatusCode::OK {
                    st.faults.request_finished();
                } else {
                    log::warn(&format!(
                        "[sim] generation server {url} answered HTTP {status}"
                    ));
                }
                relay(status, content_type, bytes)
            }
            Err(e) => gateway(format!("generation server {url} failed mid-response: {e}")),
        };
    }
    let relay = RelayStream {
        inner: Box::pin(response.bytes_stream()),
        url,
        phase: RelayPhase::Streaming,
        abort_timer: None,
        state: st,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(relay))
        .expect("static response parts are valid")
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayPhase {
    Streaming,
    Failed,
    Done,
}

/// Pause between the error event and aborting the body, so the event is flushed to the client
/// before the connection is torn down.
const ABORT_DELAY: Duration = Duration::from_millis(20);

/// Relays a generation worker's SSE body; a broken upstream becomes one error event followed
/// by an aborted body, so clients fail the request instead of waiting.
struct RelayStream {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    url: String,
    phase: RelayPhase,
    abort_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Arc<RouterState>,
}

impl Stream for RelayStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.phase {
            RelayPhase::Done => return Poll::Ready(None),
            RelayPhase::Failed => {
                let timer = this
                    .abort_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(ABORT_DELAY)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.phase = RelayPhase::Done;
                return Poll::Ready(Some(Err(std::io::Error::other(format!(
                    "generation server {} failed mid-stream",
                    this.url
                )))));
            }
            RelayPhase::Streaming => {}
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(Some(Err(e))) => {
                let message = format!("generation server {} failed mid-stream: {e}", this.url);
                log::warn(&format!("[sim] {message}"));
                this.phase = RelayPhase::Failed;
                let event = format!(
                    "data: {}\n\n",
                    error_body(&message, "InternalServerError", 502)
                );
                Poll::Ready(Some(Ok(Bytes::from(event))))
            }
            Poll::Ready(None) => {
                this.phase = RelayPhase::Done;
                this.state.faults.request_finished();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_normalized_like_upstream() {
        let mut r = json!({"prompt": ["one"]});
        normalize_prompt(&mut r).unwrap();
        assert_eq!(r["prompt"], "one");
        let mut r = json!({"prompt": [1, 2]});
        normalize_prompt(&mut r).unwrap();
        let mut r = json!({"prompt": ["a", "b"]});
        assert_eq!(
            normalize_prompt(&mut r).unwrap_err().to_string(),
            "Disaggregated server currently only supports single string prompt or list of \
             integers in request"
        );
        let mut r = json!({});
        assert_eq!(normalize_prompt(&mut r), Err(PromptError::Missing));
    }
}
