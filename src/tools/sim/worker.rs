//! The simulated `trtllm-serve` worker: HTTP front end over the engine thread.
//!
//! Start-up mirrors the real server: bind (port 0 = kernel-assigned), publish `host:port` to
//! `--report_addr`, then "load the model" (tokenizer + `sim.latency.load_delay_ms`) while
//! `/health` answers 503. Endpoints: `/health`, `/v1/models`, `/server_info`, `/metrics`,
//! `/version`, `POST /v1/completions`, `POST /v1/chat/completions`. Each request is validated,
//! tokenized, handed to the engine, and its tokens are rendered to SSE (or one JSON body) in the
//! request's own task.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::auth;
use super::cli::ServeCli;
use super::config::SimConfig;
use super::encode::{Encoder, ResponseShape, error_body};
use super::engine::{self, EngineHandle, EngineParams};
use super::engine_config::{EngineCliDefaults, EngineConfig};
use super::faults::Faults;
use super::latency::{LatencyModel, stable_hash};
use super::log;
use super::protocol::{DisaggRequestType, Endpoint, Prompt, parse_request};
use super::report_addr;
use super::scheduler::{EngineEvent, EngineRequest, Limits, RequestKind};
use super::signals;
use super::spec::{FORCE_ACCEPTED_ENV, SpecParams};
use super::tokens::OutputVocab;
use crate::util::tokenizer::Tokenizer;

/// TensorRT-LLM's `SamplingParams.max_tokens` default when a request gives none.
pub const DEFAULT_MAX_TOKENS: u64 = 32;

/// Everything a worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Parsed `trtllm-serve` options.
    pub cli: ServeCli,
    /// The `sim:` section.
    pub sim: SimConfig,
    /// `--role`.
    pub role: Option<String>,
    /// `TLLM_BENCHMARK_REQ_QUEUES_SIZE` from the environment.
    pub req_queues_size: Option<u64>,
    /// `TLLM_SPEC_DECODE_FORCE_NUM_ACCEPTED_TOKENS` from the environment (truncated; `None` when
    /// unset or 0).
    pub force_accepted: Option<u64>,
}

struct Worker {
    engine: EngineHandle,
    vocab: OnceLock<Arc<OutputVocab>>,
    config: EngineConfig,
    faults: Faults,
    served_model: String,
    role: Option<String>,
    next_id: AtomicU64,
    seed_base: u64,
    accept_seed_base: u64,
    spec: Option<SpecParams>,
    started: Instant,
    load_seconds: OnceLock<f64>,
}

/// Runs a worker until SIGTERM/SIGINT; returns the process exit code.
pub fn run(options: WorkerOptions) -> u8 {
    let cli = &options.cli;
    let engine_config = match EngineConfig::load(
        cli.config.as_deref(),
        EngineCliDefaults {
            max_batch_size: cli.max_batch_size,
            max_num_tokens: cli.max_num_tokens,
            max_seq_len: cli.max_seq_len,
            tensor_parallel_size: cli.tensor_parallel_size,
            enable_chunked_prefill: cli.enable_chunked_prefill,
        },
    ) {
        Ok(c) => c,
        Err(e) => {
            log::error(&format!("[sim] engine config rejected: {e}"));
            return 1;
        }
    };
    signals::run_server(|signal| serve(options, engine_config, signal))
}

async fn serve(
    options: WorkerOptions,
    config: EngineConfig,
    signal: signals::ShutdownSignals,
) -> u8 {
    let cli = &options.cli;
    let listener = match report_addr::bind(&cli.host, cli.port) {
        Ok(l) => l,
        Err(e) => {
            log::error(&format!(
                "[sim] failed to bind socket to {}:{}: {e}",
                cli.host, cli.port
            ));
            return 1;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(cli.port);
    if let Some(path) = &cli.report_addr {
        if let Err(e) = report_addr::write_atomic(path, &cli.host, port) {
            log::error(&format!(
                "[sim] cannot write --report_addr {}: {e}",
                path.display()
            ));
            return 1;
        }
        log::info(&format!(
            "[sim] reported {} to {}",
            report_addr::format_addr(&cli.host, port),
            path.display()
        ));
    }
    let role = options.role.clone();
    let latency = LatencyModel::new(
        options.sim.latency.clone(),
        stable_hash(role.as_deref().unwrap_or("worker")),
    );
    let load_delay = latency.load_delay();
    let queue_gate = options
        .req_queues_size
        .filter(|&n| n > 0 && config.cache_transceiver);
    let dp_ranks = config.attention_dp_ranks();
    if dp_ranks > 1 {
        log::info(&format!(
            "[sim] attention DP: {dp_ranks} ranks (tensor_parallel_size), each scheduling up to \
             max_batch_size {} requests and max_num_tokens {} tokens per iteration",
            config.max_batch_size, config.max_num_tokens
        ));
    }
    if let Some(n) = queue_gate {
        log::info(&format!(
            "[sim] TLLM_BENCHMARK_REQ_QUEUES_SIZE={n}: no forward pass until {} generation \
             requests are schedulable",
            n.min(config.max_batch_size.saturating_mul(dp_ranks))
        ));
    }
    let faults = options.sim.faults_for(role.as_deref());
    let spec = speculation(&config, &options);
    let engine = engine::spawn(EngineParams {
        limits: Limits {
            max_batch_size: config.max_batch_size,
            max_num_tokens: config.max_num_tokens,
            stream_interval: config.stream_interval,
            chunked_prefill: config.enable_chunked_prefill,
        },
        attention_dp_ranks: dp_ranks,
        queue_gate,
        latency,
        print_iter_log: config.print_iter_log,
        stall_after_tokens: faults.stall_after_tokens,
        spec,
    });
    let served_model = served_model_name(&cli.model);
    let worker = Arc::new(Worker {
        engine: engine.clone(),
        vocab: OnceLock::new(),
        faults: Faults::new(faults),
        served_model,
        role: role.clone(),
        next_id: AtomicU64::new(1),
        seed_base: stable_hash(role.as_deref().unwrap_or("worker")),
        accept_seed_base: options.sim.latency.seed.rotate_left(29)
            ^ stable_hash(&format!("accept:{}", role.as_deref().unwrap_or("worker"))),
        spec,
        started: Instant::now(),
        load_seconds: OnceLock::new(),
        config,
    });
    log::info(&format!(
        "[sim] simulated trtllm-serve worker{} for {} on http://{}; loading",
        role.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
        cli.model,
        report_addr::format_addr(&cli.host, port)
    ));
    tokio::spawn(load_model(
        worker.clone(),
        cli.tokenizer.clone().unwrap_or_else(|| cli.model.clone()),
        load_delay,
    ));
    let app = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/server_info", get(server_info))
        .route("/metrics", get(metrics))
        .route("/version", get(version))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .layer(DefaultBodyLimit::max(256 << 20))
        .with_state(worker);
    signals::serve_until_signal(listener, app, signal, move || engine.shutdown()).await
}

/// Speculative decoding from the engine config and the environment (logged once).
fn speculation(config: &EngineConfig, options: &WorkerOptions) -> Option<SpecParams> {
    let Some(sc) = &config.speculative else {
        if let Some(n) = options.force_accepted {
            log::info(&format!(
                "[sim] {FORCE_ACCEPTED_ENV}={n} has no effect: the engine config has no \
                 speculative_config"
            ));
        }
        return None;
    };
    let rate = options.sim.latency.spec_acceptance_rate;
    let Some(spec) = SpecParams::new(sc.draft_len, options.force_accepted, rate) else {
        log::info(&format!(
            "[sim] speculative_config.decoding_type {} with draft length 0: speculative \
             decoding off",
            sc.decoding_type
        ));
        return None;
    };
    let acceptance = match options.force_accepted {
        Some(n) if n > sc.draft_len => format!(
            "forced by {FORCE_ACCEPTED_ENV}={n}, capped at the draft length: {} per step",
            sc.draft_len
        ),
        Some(n) => format!("forced by {FORCE_ACCEPTED_ENV}: {n} per step"),
        None => format!(
            "each draft token accepted with probability {rate} (sim.latency.spec_acceptance_rate), \
             up to the first rejection"
        ),
    };
    log::info(&format!(
        "[sim] speculative decoding {}: {} draft tokens per step; {acceptance}",
        sc.decoding_type, sc.draft_len
    ));
    Some(spec)
}

/// `self.model` of TensorRT-LLM's server: a directory's base name, else the string given.
fn served_model_name(model: &str) -> String {
    let path = std::path::Path::new(model);
    if path.is_dir()
        && let Some(name) = path.file_name()
    {
        return name.to_string_lossy().into_owned();
    }
    model.to_string()
}

async fn load_model(worker: Arc<Worker>, tokenizer_source: String, load_delay: Duration) {
    let started = worker.started;
    let loaded = tokio::task::spawn_blocking(move || {
        Tokenizer::from_dir_or_synthetic(std::path::Path::new(&tokenizer_source))
            .map(|(t, fell_back)| (t, fell_back, tokenizer_source))
    })
    .await;
    let (tokenizer, fell_back, source) = match loaded {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            log::error(&format!("[sim] model load failed: {e}"));
            std::process::exit(1);
        }
        Err(e) => {
            log::error(&format!("[sim] model load task failed: {e}"));
            std::process::exit(1);
        }
    };
    if fell_back {
        log::info(&format!(
            "[sim] no tokenizer.json under {source}: using the {}",
            tokenizer.describe()
        ));
    } else {
        log::info(&format!(
            "[sim] loaded {} from {source}",
            tokenizer.describe()
        ));
    }
    let vocab = Arc::new(OutputVocab::new(tokenizer));
    tokio::time::sleep_until((started + load_delay).into()).await;
    let _ = worker.load_seconds.set(started.elapsed().as_secs_f64());
    let _ = worker.vocab.set(vocab);
    if worker.faults.never_ready() {
        log::warn("[sim] fault injection: never_ready; /health keeps answering 503");
    } else {
        log::info("[sim] model loaded; /health now answers 200 (Application startup complete.)");
    }
}

impl Worker {
    fn ready_vocab(&self) -> Option<&Arc<OutputVocab>> {
        self.vocab.get()
    }
}

fn error_response(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        axum::Json(error_body(message, kind, status.as_u16())),
    )
        .into_response()
}

async fn health(State(w): State<Arc<Worker>>) -> Response {
    if w.vocab.get().is_some() && !w.faults.never_ready() {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "LLM is unavailable. Please check the server logs for more details.",
        )
            .into_response()
    }
}

async fn models(State(w): State<Arc<Worker>>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": w.served_model, "object": "model", "created": unix_now(),
                  "owned_by": "tensorrt_llm"}],
    }))
    .into_response()
}

async fn version() -> Response {
    axum::Json(json!({"version": format!("{}-perfsanity-sim", env!("CARGO_PKG_VERSION"))}))
        .into_response()
}

async fn server_info(State(w): State<Arc<Worker>>) -> Response {
    let c = &w.config;
    let mut loader = serde_json::Map::new();
    if let Some(s) = w.load_seconds.get() {
        loader.insert("total_model_loading_seconds".into(), json!(s));
    }
    axum::Json(json!({
        "simulator": "perfsanity sim",
        "role": w.role,
        "model": w.served_model,
        "ready": w.vocab.get().is_some() && !w.faults.never_ready(),
        "engine_config": {
            "max_batch_size": c.max_batch_size,
            "max_num_tokens": c.max_num_tokens,
            "max_seq_len": c.max_seq_len,
            "stream_interval": c.stream_interval,
            "print_iter_log": c.print_iter_log,
            "disable_overlap_scheduler": c.disable_overlap_scheduler,
            "enable_chunked_prefill": c.enable_chunked_prefill,
            "tensor_parallel_size": c.tensor_parallel_size,
            "enable_attention_dp": c.enable_attention_dp,
            "speculative_config": c.speculative.as_ref().map(|s| json!({
                "decoding_type": s.decoding_type,
                "max_draft_len": s.draft_len,
            })),
        },
        "startup_metrics": {"model_loader": loader},
    }))
    .into_response()
}

async fn metrics(State(w): State<Arc<Worker>>) -> Response {
    let s = &w.engine.stats;
    axum::Json(json!([{
        "iter": s.iterations.load(Ordering::Relaxed),
        "numActiveRequests": s.active_requests.load(Ordering::Relaxed),
        "numGeneratedTokens": s.tokens.load(Ordering::Relaxed),
        "numLateIterations": s.late_iterations.load(Ordering::Relaxed),
    }]))
    .into_response()
}

async fn completions(State(w): State<Arc<Worker>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(w, Endpoint::Completions, headers, body).await
}

async fn chat_completions(
    State(w): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(w, Endpoint::Chat, headers, body).await
}

async fn handle(w: Arc<Worker>, endpoint: Endpoint, headers: HeaderMap, body: Bytes) -> Response {
    let Some(vocab) = w.ready_vocab().cloned() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading",
            "ServiceUnavailableError",
        );
    };
    if w.faults.take_http_500() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated internal error (fault injection: http_500_every)",
            "InternalServerError",
        );
    }
    let bad = |m: &str| error_response(StatusCode::BAD_REQUEST, m, "BadRequestError");
    let req = match parse_request(endpoint, &body) {
        Ok(r) => r,
        Err(e) => return bad(&e.0),
    };
    if let Some(d) = &req.disagg {
        let given = headers.get(auth::AUTH_HEADER).and_then(|v| v.to_str().ok());
        if let Err(m) = auth::verify(
            w.config.internal_request_auth_key.as_deref(),
            &d.encoded_opaque_state,
            &d.ctx_info_endpoint,
            given,
        ) {
            return bad(&m.to_string());
        }
    }
    let prompt_ids = match &req.prompt {
        Prompt::Text(t) => vocab.encode(t, req.add_special_tokens),
        Prompt::Tokens(t) => t.clone(),
    };
    let prompt_len = prompt_ids.len() as u64;
    if prompt_len == 0 {
        return bad("the prompt has no tokens");
    }
    let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let c = &w.config;
    // A generation_only request arrives with its KV cache: it never prefills here, so only
    // context work is bounded by max_num_tokens (TensorRT-LLM's gen workers run with small
    // token budgets, e.g. max_num_tokens 64 with 1k prompts).
    let prefills_here = req
        .disagg
        .as_ref()
        .is_none_or(|d| d.request_type == DisaggRequestType::ContextOnly);
    if prefills_here && !c.enable_chunked_prefill && prompt_len > c.max_num_tokens {
        return bad(&format!(
            "the prompt length ({prompt_len}) exceeds max_num_tokens ({}) and \
             enable_chunked_prefill is false",
            c.max_num_tokens
        ));
    }
    // A context_only request produces one token whatever its max_tokens (TensorRT-LLM's
    // router sends context requests with max_tokens 1), so context workers run with a
    // max_seq_len barely above the input length.
    let context_only = req
        .disagg
        .as_ref()
        .is_some_and(|d| d.request_type == DisaggRequestType::ContextOnly);
    let produced = if context_only { 1 } else { max_tokens };
    if let Some(limit) = c.max_seq_len
        && prompt_len + produced > limit
    {
        return bad(&format!(
            "the prompt length ({prompt_len}) plus max_tokens ({produced}) exceeds \
             max_seq_len ({limit})"
        ));
    }
    let (kind, first_token, reported_prompt) = match &req.disagg {
        None => (RequestKind::Full, None, prompt_len),
        Some(d) if d.request_type == DisaggRequestType::ContextOnly => {
            (RequestKind::ContextOnly, None, prompt_len)
        }
        Some(d) => (
            RequestKind::GenerationOnly,
            d.first_gen_tokens.first().copied(),
            d.ctx_prompt_tokens.unwrap_or(prompt_len),
        ),
    };
    let id = w.next_id.fetch_add(1, Ordering::Relaxed);
    let prefix = match endpoint {
        Endpoint::Completions => "cmpl",
        Endpoint::Chat => "chatcmpl",
    };
    let seed = w.seed_base ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let encoder = Encoder::new(
        ResponseShape {
            endpoint,
            id: format!("{prefix}-{:016x}{:016x}", w.seed_base, id),
            model: req.model.clone(),
            created: unix_now(),
            seed,
            first_token,
            prompt_tokens: reported_prompt,
            include_usage: req.include_usage,
            report_avg_decoded: w.spec.is_some(),
        },
        vocab,
    );
    let draft_tokens = match (&req.disagg, kind) {
        (Some(d), RequestKind::GenerationOnly) => d.draft_tokens.len() as u64,
        _ => 0,
    };
    let (tx, rx) = unbounded_channel();
    let submitted = w.engine.submit(EngineRequest {
        prompt_tokens: prompt_len,
        max_tokens,
        kind,
        streaming: req.stream,
        draft_tokens,
        accept_seed: w.accept_seed_base ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03),
        sink: tx,
    });
    if !submitted {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine has stopped",
            "ServiceUnavailableError",
        );
    }
    if req.stream {
        let stream = SseStream {
            rx,
            encoder,
            done: false,
            aborted: false,
            worker: w.clone(),
        };
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("static response parts are valid");
    }
    let mut rx = rx;
    let (produced, iterations) = loop {
        match rx.recv().await {
            Some(EngineEvent {
                start,
                count,
                iterations,
                finished: true,
            }) => break (start + count, iterations),
            Some(_) => {}
            None => {
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine stopped before the request finished",
                    "ServiceUnavailableError",
                );
            }
        }
    };
    let (disagg, prompt_token_ids) = if kind == RequestKind::ContextOnly {
        let opaque = base64::engine::general_purpose::STANDARD
            .encode(format!("perfsanity-sim-kv:{id}:{prompt_len}"));
        let disagg_request_id = req
            .disagg
            .as_ref()
            .and_then(|d| d.disagg_request_id.clone())
            .unwrap_or(Value::Null);
        (
            Some(json!({
                "request_type": "context_only",
                "first_gen_tokens": [encoder.token_id(0)],
                "first_gen_log_probs": null,
                "first_gen_logits": null,
                "ctx_request_id": id,
                "encoded_opaque_state": opaque,
                // A speculative context worker also proposes the drafts the generation
                // worker's first step verifies (upstream: MTP's `draft_tokens`).
                "draft_tokens": w.spec.map(|p| {
                    (1..=p.draft_len).map(|k| encoder.token_id(k)).collect::<Vec<_>>()
                }),
                "disagg_request_id": disagg_request_id,
                "ctx_dp_rank": null,
                "ctx_info_endpoint": null,
                "schedule_style": null,
                "ctx_usage": null,
                "return_prompt_token_ids_b64": false,
                "resolved_thinking": null,
            })),
            Some(prompt_ids),
        )
    } else {
        (None, None)
    };
    let body = encoder.full_response(produced, iterations, disagg, prompt_token_ids);
    w.faults.request_finished();
    axum::Json(body).into_response()
}

/// The SSE body of one streaming request: engine events in, chunk bytes out. Events that
/// queued up while the connection was busy are coalesced into one write.
struct SseStream {
    rx: UnboundedReceiver<EngineEvent>,
    encoder: Encoder,
    done: bool,
    aborted: bool,
    worker: Arc<Worker>,
}

impl Stream for SseStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.aborted {
            this.aborted = false;
            return Poll::Ready(Some(Err(std::io::Error::other(
                "the engine stopped before the request finished",
            ))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let mut out = String::new();
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => {
                    this.encoder.push_chunk(&ev, &mut out);
                    if ev.finished {
                        this.done = true;
                        this.worker.faults.request_finished();
                        break;
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if out.is_empty() {
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "the engine stopped before the request finished",
                        ))));
                    }
                    this.aborted = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Some(Ok(Bytes::from(out))))
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
