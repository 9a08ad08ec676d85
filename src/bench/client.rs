//! One keep-alive HTTP/1.1 connection and one request on it, recording raw timestamps.
//!
//! The connection future is polled by the same task that reads the response, so a chunk is
//! handled in the poll that read it from the socket: no hand-off to another task sits between
//! the bytes arriving and their timestamp. [`TimedStream`] stamps every socket read; an event's
//! time is that stamp, and the gap to the moment the event was handled is kept as
//! `handle_lag_ns` so client-side delay is visible.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::record::{Failure, RawRequest};
use super::sse::SseParser;

/// Nanoseconds since `epoch`.
pub fn ns_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// A TCP stream that records when it last read bytes.
pub struct TimedStream {
    inner: TcpStream,
    epoch: Instant,
    last_read_ns: Arc<AtomicU64>,
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.last_read_ns
                .store(ns_since(this.epoch), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

type ConnFuture = http1::Connection<TokioIo<TimedStream>, Full<Bytes>>;

/// A keep-alive connection whose driver future is polled by its owner.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Option<Pin<Box<ConnFuture>>>,
    last_read_ns: Arc<AtomicU64>,
}

impl Connection {
    /// Opens a connection to `addr`.
    pub async fn open(addr: SocketAddr, epoch: Instant) -> Result<Self, Failure> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::new("ConnectError", format!("cannot connect to {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::new("ConnectError", e.to_string()))?;
        let last_read_ns = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(TimedStream {
            inner: stream,
            epoch,
            last_read_ns: last_read_ns.clone(),
        });
        let (sender, driver) = http1::Builder::new()
            .max_buf_size(1 << 20)
            .handshake(io)
            .await
            .map_err(|e| Failure::new("ConnectError", e.to_string()))?;
        Ok(Connection {
            sender,
            driver: Some(Box::pin(driver)),
            last_read_ns,
        })
    }

    /// True when the connection can no longer carry requests.
    pub fn is_closed(&self) -> bool {
        self.driver.is_none() || self.sender.is_closed()
    }

    /// Waits until the connection can take a request; false if it closed.
    async fn ready(&mut self) -> bool {
        if self.is_closed() {
            return false;
        }
        let sender = &mut self.sender;
        drive(&mut self.driver, poll_fn(|cx| sender.poll_ready(cx)))
            .await
            .is_ok()
    }
}

/// Awaits `fut` while driving the connection (if still alive) in the same task.
async fn drive<F: Future>(driver: &mut Option<Pin<Box<ConnFuture>>>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    poll_fn(|cx| {
        if let Some(d) = driver.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            *driver = None;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// What every request of a run shares.
pub struct Target {
    /// Resolved server address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Request path.
    pub path: String,
    /// `Authorization` header value.
    pub auth: HeaderValue,
    /// Streaming responses.
    pub streaming: bool,
    /// Clock origin.
    pub epoch: Instant,
}

/// Sends one request on `conn` (opening or replacing it as needed) and records it into `rec`,
/// whose scheduling fields the caller has set. `sent_ns` is taken here.
pub async fn send(
    conn: &mut Option<Connection>,
    target: &Target,
    body: Bytes,
    rec: &mut RawRequest,
) {
    rec.sent_ns = ns_since(target.epoch);
    let reusable = match conn.as_mut() {
        Some(c) => c.ready().await,
        None => false,
    };
    if !reusable {
        *conn = None;
        match Connection::open(target.addr, target.epoch).await {
            Ok(c) => {
                rec.connect_ns = Some(ns_since(target.epoch) - rec.sent_ns);
                *conn = Some(c);
            }
            Err(f) => {
                rec.failure = Some(f);
                rec.end_ns = ns_since(target.epoch);
                return;
            }
        }
    }
    let c = conn.as_mut().expect("connection present");
    let result = exchange(c, target, body, rec).await;
    rec.end_ns = ns_since(target.epoch);
    if let Err(f) = result {
        rec.failure = Some(f);
        // The connection state is unknown after a failure: never reuse it.
        *conn = None;
    }
}

async fn exchange(
    c: &mut Connection,
    target: &Target,
    body: Bytes,
    rec: &mut RawRequest,
) -> Result<(), Failure> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(target.path.as_str())
        .header(HOST, target.host.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(AUTHORIZATION, target.auth.clone())
        .body(Full::new(body))
        .map_err(|e| Failure::new("RequestError", e.to_string()))?;
    let fut = c.sender.send_request(req);
    let resp = drive(&mut c.driver, fut)
        .await
        .map_err(|e| Failure::new("HttpError", e.to_string()))?;
    rec.headers_ns = Some(ns_since(target.epoch));
    let status = resp.status();
    rec.status = Some(status.as_u16());
    let mut body = resp.into_body();
    if status != hyper::StatusCode::OK {
        // Drain so the connection stays usable; the error is the reason phrase, as upstream.
        let _ = drive(&mut c.driver, body.collect()).await;
        return Err(Failure::new(
            "HTTPStatus",
            status.canonical_reason().unwrap_or("").to_string(),
        ));
    }
    if !target.streaming {
        let all = drive(&mut c.driver, body.collect())
            .await
            .map_err(|e| Failure::new("BodyError", e.to_string()))?
            .to_bytes();
        return parse_full_response(&all, rec);
    }
    let mut parser = SseParser::default();
    loop {
        let frame = drive(&mut c.driver, body.frame()).await;
        let handled = ns_since(target.epoch);
        let frame = match frame {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(Failure::new("BodyError", e.to_string())),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let read = c.last_read_ns.load(Ordering::Relaxed);
        let t = if read == 0 || read > handled {
            handled
        } else {
            read
        };
        let lag = (handled - t).min(u64::from(u32::MAX)) as u32;
        parser.feed(&data, t, lag, rec)?;
    }
    parser.finish(ns_since(target.epoch), rec)
}

#[derive(serde::Deserialize)]
struct FullResponse {
    #[serde(default)]
    choices: Vec<FullChoice>,
    #[serde(default)]
    usage: Option<FullUsage>,
}

#[derive(serde::Deserialize)]
struct FullChoice {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    message: Option<FullMessage>,
}

#[derive(serde::Deserialize)]
struct FullMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(serde::Deserialize)]
struct FullUsage {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

fn parse_full_response(body: &[u8], rec: &mut RawRequest) -> Result<(), Failure> {
    let r: FullResponse = serde_json::from_slice(body)
        .map_err(|e| Failure::new("JSONDecodeError", format!("non-streaming response: {e}")))?;
    if let Some(c) = r.choices.into_iter().next() {
        rec.text = c
            .text
            .or_else(|| c.message.and_then(|m| m.content))
            .unwrap_or_default();
    }
    rec.usage_tokens = r.usage.and_then(|u| u.completion_tokens);
    Ok(())
}
