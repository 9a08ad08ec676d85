//! A deterministic OpenAI-compatible streaming server whose timing is a script.
//!
//! Every response follows absolute deadlines measured from the request's arrival: the first
//! chunk at `ttft`, chunk k at `ttft + Σ gaps[0..k]` (gaps cycle), `tokens_per_chunk` tokens
//! each (token i is the synthetic word ` t<i>`, so the built-in tokenizer counts it exactly).
//! Deadlines never drift with load: a late chunk does not delay the next one's deadline. The
//! server also records when it actually handed each chunk to the HTTP layer — the "truth" a
//! client's measurements are compared with — and can inject failures (an HTTP status, a
//! stream without chunks, a dropped connection).
//!
//! It runs on its own thread and runtime ([`ScriptedServer::start`]), so a client in the same
//! process cannot share its scheduler, or standalone via `examples/scripted_server.rs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Sleep;

use crate::util::tokenizer::SyntheticTokenizer;

/// How injected failures look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Answer with this HTTP status and a JSON error body.
    Status(u16),
    /// Answer 200 but stream no `choices` chunk (only `[DONE]`).
    NoChunks,
    /// Drop the connection after this many chunks.
    Disconnect {
        /// Chunks sent before the drop.
        after_chunks: u32,
    },
}

/// The timing script of every response.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Arrival → first chunk.
    pub ttft: Duration,
    /// Gap before chunk k (k ≥ 1) is `gaps[(k − 1) % len]`.
    pub gaps: Vec<Duration>,
    /// Tokens per chunk.
    pub tokens_per_chunk: u32,
    /// Output tokens per request (`None` = the request's `max_tokens`, default 16).
    pub output_tokens: Option<u32>,
    /// Put running `usage` in every chunk (continuous usage stats).
    pub continuous_usage: bool,
    /// Send `avg_decoded_tokens_per_iter` in each choice.
    pub avg_decoded_tokens_per_iter: Option<f64>,
    /// Fail every n-th request (1-based arrival order: n, 2n, …).
    pub fail_every: Option<u64>,
    /// How failures look.
    pub fail_mode: FailMode,
    /// Record per-chunk send times (memory grows with the run).
    pub record_truth: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            ttft: Duration::from_millis(50),
            gaps: vec![Duration::from_millis(10)],
            tokens_per_chunk: 1,
            output_tokens: None,
            continuous_usage: false,
            avg_decoded_tokens_per_iter: None,
            fail_every: None,
            fail_mode: FailMode::Status(500),
            record_truth: true,
        }
    }
}

impl Script {
    /// Offset of chunk `k` from the request's arrival.
    pub fn chunk_offset(&self, k: u32) -> Duration {
        let mut d = self.ttft;
        if !self.gaps.is_empty() {
            for i in 0..k as usize {
                d += self.gaps[i % self.gaps.len()];
            }
        }
        d
    }
}

/// What the server actually did for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRequest {
    /// 1-based arrival number.
    pub arrival_no: u64,
    /// When the request head arrived.
    pub arrival: Instant,
    /// When each chunk was handed to the HTTP layer.
    pub chunk_sent: Vec<Instant>,
    /// Tokens in each chunk.
    pub chunk_tokens: Vec<u32>,
    /// Injected failure, if any.
    pub failed: bool,
    /// First prompt token id, when the prompt was a token-id list (identifies the request).
    pub prompt_head: Option<u64>,
}

/// Aggregate truth, cheap to keep for any run length.
#[derive(Debug, Default)]
struct Totals {
    requests: AtomicU64,
    chunks: AtomicU64,
    late_ns_sum: AtomicU64,
    late_ns_max: AtomicU64,
    gap_ns_sum: AtomicU64,
    gaps: AtomicU64,
    ttft_ns_sum: AtomicU64,
    ttfts: AtomicU64,
}

/// Shared state of a running server.
#[derive(Debug)]
pub struct ServerState {
    script: Script,
    totals: Totals,
    served: Mutex<Vec<ServedRequest>>,
}

/// Summary of what the server did (JSON at `GET /perfsanity/truth`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TruthSummary {
    /// Requests received.
    pub requests: u64,
    /// Chunks sent.
    pub chunks: u64,
    /// Mean actual arrival → first chunk (ms).
    pub mean_ttft_ms: f64,
    /// Mean actual gap between consecutive chunks (ms).
    pub mean_gap_ms: f64,
    /// Mean lateness of chunks against their deadlines (ms).
    pub mean_late_ms: f64,
    /// Max lateness (ms).
    pub max_late_ms: f64,
}

impl ServerState {
    /// Aggregate truth so far.
    pub fn summary(&self) -> TruthSummary {
        let t = &self.totals;
        let div = |a: &AtomicU64, b: &AtomicU64| {
            let n = b.load(Ordering::Relaxed);
            if n == 0 {
                0.0
            } else {
                a.load(Ordering::Relaxed) as f64 / n as f64 / 1e6
            }
        };
        TruthSummary {
            requests: t.requests.load(Ordering::Relaxed),
            chunks: t.chunks.load(Ordering::Relaxed),
            mean_ttft_ms: div(&t.ttft_ns_sum, &t.ttfts),
            mean_gap_ms: div(&t.gap_ns_sum, &t.gaps),
            mean_late_ms: div(&t.late_ns_sum, &t.chunks),
            max_late_ms: t.late_ns_max.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// Per-request records (when `record_truth`), in completion order.
    pub fn served(&self) -> Vec<ServedRequest> {
        self.served.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Removes and returns the per-request records, and zeroes the aggregate truth (call
    /// between runs, while no request is in flight).
    pub fn take_served(&self) -> Vec<ServedRequest> {
        let t = &self.totals;
        for a in [
            &t.requests,
            &t.chunks,
            &t.late_ns_sum,
            &t.late_ns_max,
            &t.gap_ns_sum,
            &t.gaps,
            &t.ttft_ns_sum,
            &t.ttfts,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.served
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Accept-queue length requested from the kernel (capped by `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A server running on its own thread.
pub struct ScriptedServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// Shared state (truth).
    pub state: Arc<ServerState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:port` (0 = any free port) and serves on a new thread with a
    /// single-threaded runtime (`threads == 0`) or a multi-threaded one.
    pub fn start(script: Script, port: u16, threads: usize) -> std::io::Result<Self> {
        let state = Arc::new(ServerState {
            script,
            totals: Totals::default(),
            served: Mutex::new(Vec::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let rt = if threads == 0 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?
        };
        // A deep accept queue: with the default (128) a burst of connects overflows it and the
        // dropped SYNs are retried a second later, which would show up as client TTFT.
        let listener = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
            socket.listen(LISTEN_BACKLOG)
        })?;
        let addr = listener.local_addr()?;
        let thread = std::thread::Builder::new()
            .name("scripted-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = serve(listener, st) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(ScriptedServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts connections forever on `listener` (HTTP/1.1 keep-alive).
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

fn full(status: StatusCode, ctype: &str, body: String) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(
            http_body_util::Full::new(Bytes::from(body))
                .map_err(|e: Infallible| -> BoxError { match e {} })
                .boxed_unsync(),
        )
        .expect("static response parts")
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<ServerState>,
) -> Result<Response<ResponseBody>, Infallible> {
    let arrival = Instant::now();
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => return Ok(full(StatusCode::OK, "text/plain", String::new())),
        (&Method::GET, "/perfsanity/truth") => {
            let s = serde_json::to_string(&state.summary()).unwrap_or_default();
            return Ok(full(StatusCode::OK, "application/json", s));
        }
        (&Method::POST, "/v1/completions") | (&Method::POST, "/v1/chat/completions") => {}
        _ => {
            return Ok(full(
                StatusCode::NOT_FOUND,
                "application/json",
                json!({"error": format!("no route {path}")}).to_string(),
            ));
        }
    }
    let chat = path.ends_with("chat/completions");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(full(
                StatusCode::BAD_REQUEST,
                "application/json",
                json!({"error": e.to_string()}).to_string(),
            ));
        }
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Ok(full(
            StatusCode::BAD_REQUEST,
            "application/json",
            json!({"error": "request body is not JSON"}).to_string(),
        ));
    };
    let no = state.totals.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let prompt_head = v.pointer("/prompt/0").and_then(Value::as_u64);
    let script = &state.script;
    let fail = script
        .fail_every
        .is_some_and(|n| n > 0 && no.is_multiple_of(n));
    if fail && let FailMode::Status(code) = script.fail_mode {
        record(&state, no, arrival, vec![], vec![], true, prompt_head);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(full(
            status,
            "application/json",
            json!({"error": "injected failure"}).to_string(),
        ));
    }
    let max_tokens = v
        .get(if chat {
            "max_completion_tokens"
        } else {
            "max_tokens"
        })
        .and_then(Value::as_u64)
        .unwrap_or(16) as u32;
    let prompt_tokens = match v.get("prompt") {
        Some(Value::Array(a)) => a.len() as u64,
        Some(Value::String(s)) => SyntheticTokenizer.encode(s).len() as u64,
        _ => 0,
    };
    let streaming = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let tokens = script.output_tokens.unwrap_or(max_tokens);
    let per = script.tokens_per_chunk.max(1);
    let (n_chunks, fail_after) = match (fail, script.fail_mode) {
        (true, FailMode::NoChunks) => (0, None),
        (true, FailMode::Disconnect { after_chunks }) => (tokens.div_ceil(per), Some(after_chunks)),
        _ => (tokens.div_ceil(per), None),
    };
    let body = ScriptedBody {
        state: state.clone(),
        no,
        arrival,
        chat,
        streaming,
        include_usage,
        tokens,
        n_chunks,
        fail_after,
        failed: fail,
        prompt_head,
        prompt_tokens,
        next: 0,
        done: false,
        sent: Vec::new(),
        sent_tokens: Vec::new(),
        sleep: Box::pin(tokio::time::sleep_until(
            (arrival
                + if streaming {
                    script.ttft
                } else {
                    script.chunk_offset(n_chunks.saturating_sub(1))
                })
            .into(),
        )),
    };
    let ctype = if streaming {
        "text/event-stream"
    } else {
        "application/json"
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", ctype)
        .body(body.boxed_unsync())
        .expect("static response parts"))
}

fn record(
    state: &ServerState,
    no: u64,
    arrival: Instant,
    chunk_sent: Vec<Instant>,
    chunk_tokens: Vec<u32>,
    failed: bool,
    prompt_head: Option<u64>,
) {
    if state.script.record_truth
        && let Ok(mut v) = state.served.lock()
    {
        v.push(ServedRequest {
            arrival_no: no,
            arrival,
            chunk_sent,
            chunk_tokens,
            failed,
            prompt_head,
        });
    }
}

struct ScriptedBody {
    state: Arc<ServerState>,
    no: u64,
    arrival: Instant,
    chat: bool,
    streaming: bool,
    include_usage: bool,
    tokens: u32,
    n_chunks: u32,
    fail_after: Option<u32>,
    failed: bool,
    prompt_head: Option<u64>,
    prompt_tokens: u64,
    next: u32,
    done: bool,
    sent: Vec<Instant>,
    sent_tokens: Vec<u32>,
    sleep: Pin<Box<Sleep>>,
}

impl ScriptedBody {
    fn token_text(&self, first: u32, count: u32) -> String {
        (first..first + count)
            .map(SyntheticTokenizer::token_text)
            .collect()
    }

    fn usage(&self, completion: u32) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
               "total_tokens": self.prompt_tokens + u64::from(completion)})
    }

    fn chunk_json(&self, k: u32, first: u32, count: u32) -> Value {
        let text = self.token_text(first, count);
        let mut choice = if self.chat {
            json!({"index": 0, "delta": {"content": text}, "finish_reason": null})
        } else {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": null})
        };
        if k + 1 == self.n_chunks {
            choice["finish_reason"] = json!("length");
        }
        if let Some(a) = self.state.script.avg_decoded_tokens_per_iter {
            choice["avg_decoded_tokens_per_iter"] = json!(a);
        }
        let mut c = json!({"id": format!("cmpl-{}", self.no),
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": 0, "model": "scripted", "choices": [choice]});
        if self.state.script.continuous_usage {
            c["usage"] = self.usage(first + count);
        }
        c
    }

    fn finish(&mut self) {
        self.done = true;
        let totals = &self.state.totals;
        if let Some(first) = self.sent.first() {
            totals.ttfts.fetch_add(1, Ordering::Relaxed);
            totals.ttft_ns_sum.fetch_add(
                first.duration_since(self.arrival).as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        for w in self.sent.windows(2) {
            totals.gaps.fetch_add(1, Ordering::Relaxed);
            totals.gap_ns_sum.fetch_add(
                w[1].duration_since(w[0]).as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        record(
            &self.state,
            self.no,
            self.arrival,
            std::mem::take(&mut self.sent),
            std::mem::take(&mut self.sent_tokens),
            self.failed,
            self.prompt_head,
        );
    }
}

impl Body for ScriptedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let script = self.state.script.clone();
        let per = script.tokens_per_chunk.max(1);
        if !self.streaming {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let text = self.token_text(0, self.tokens);
            let choice = if self.chat {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"})
            } else {
                json!({"index": 0, "text": text, "finish_reason": "length"})
            };
            let body = json!({"id": format!("cmpl-{}", self.no), "object": "text_completion",
                "choices": [choice], "usage": self.usage(self.tokens)});
            let now = Instant::now();
            self.sent.push(now);
            let tokens = self.tokens;
            self.sent_tokens.push(tokens);
            self.finish();
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(body.to_string())))));
        }
        if self.next < self.n_chunks {
            if self.fail_after == Some(self.next) {
                self.finish();
                return Poll::Ready(Some(Err("injected disconnect".into())));
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let k = self.next;
            let first = k * per;
            let count = per.min(self.tokens - first);
            let mut bytes = format!("data: {}\n\n", self.chunk_json(k, first, count));
            let now = Instant::now();
            let deadline = self.arrival + script.chunk_offset(k);
            let late = now.saturating_duration_since(deadline).as_nanos() as u64;
            let totals = &self.state.totals;
            totals.chunks.fetch_add(1, Ordering::Relaxed);
            totals.late_ns_sum.fetch_add(late, Ordering::Relaxed);
            totals.late_ns_max.fetch_max(late, Ordering::Relaxed);
            self.sent.push(now);
            self.sent_tokens.push(count);
            self.next += 1;
            if self.next < self.n_chunks {
                let at = self.arrival + script.chunk_offset(self.next);
                self.sleep.as_mut().reset(at.into());
            } else {
                if self.include_usage {
                    let usage = json!({"id": format!("cmpl-{}", self.no),
                        "object": "text_completion", "created": 0, "model": "scripted",
                        "choices": [], "usage": self.usage(self.tokens)});
                    bytes.push_str(&format!("data: {usage}\n\n"));
                }
                bytes.push_str("data: [DONE]\n\n");
                self.finish();
            }
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))));
        }
        // No chunks at all (empty output or injected NoChunks).
        self.finish();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            b"data: [DONE]\n\n",
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Writes a Hugging Face `tokenizer.json` (WordLevel, whitespace split, no special tokens)
/// plus a minimal `tokenizer_config.json` into `dir`, whose vocabulary is the synthetic words
/// `t0 … t<vocab−1>`. Real tokenizer loaders (the `tokenizers` crate, `transformers`) then count
/// the scripted server's tokens exactly as the built-in synthetic tokenizer does.
pub fn write_wordlevel_tokenizer(dir: &std::path::Path, vocab: u32) -> std::io::Result<()> {
    let words: serde_json::Map<String, Value> =
        (0..vocab).map(|i| (format!("t{i}"), json!(i))).collect();
    let tok = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": words, "unk_token": "t0"}
    });
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("tokenizer.json"), tok.to_string())?;
    std::fs::write(
        dir.join("tokenizer_config.json"),
        json!({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1_000_000})
            .to_string(),
    )
}
