//! One keep-alive HTTP/1.1 connection and one request on it, recording raw timestamps.
//!
//! An event's time is when its bytes reached this host: [`TimedStream`] reads with `recvmsg`
//! and takes the kernel's receive timestamp of the data (`SO_TIMESTAMPNS`), so a client that is
//! busy or wakes late does not shift what it measures; the delay from arrival to the moment
//! the client handled the event is kept as `lag_ns`, which makes the client's own lag visible.
//! Without kernel timestamps (or with `--timestamp-source read`) the read time is used. The
//! connection future is polled by the same task that reads the response, so no hand-off to
//! another task sits between a read and its event.

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
use super::sse::{FrameStamp, SseParser};

/// Largest non-streamed body (a whole response or an error body) the client keeps; a server
/// that sends more fails the request instead of exhausting memory.
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// Collects a non-streamed body up to [`MAX_BODY_BYTES`].
async fn collect_capped(
    driver: &mut Option<Pin<Box<ConnFuture>>>,
    body: hyper::body::Incoming,
) -> Result<Bytes, Failure> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    drive(driver, limited.collect())
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            let message = if e.is::<http_body_util::LengthLimitError>() {
                format!(
                    "response body larger than {} MiB (MAX_BODY_BYTES)",
                    MAX_BODY_BYTES >> 20
                )
            } else {
                e.to_string()
            };
            Failure::new("BodyError", message)
        })
}

/// Nanoseconds since `epoch`.
pub fn ns_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Converts the kernel's `CLOCK_REALTIME` receive timestamps to nanoseconds since the run's
/// monotonic epoch.
#[derive(Debug, Clone, Copy)]
pub struct KernelClock {
    /// `realtime_ns − monotonic_ns_since_epoch`, sampled once.
    offset_ns: i128,
}

impl KernelClock {
    /// Samples the offset between the wall clock and `epoch`.
    pub fn new(epoch: Instant) -> Self {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        KernelClock {
            offset_ns: real - ns_since(epoch) as i128,
        }
    }

    fn to_epoch_ns(self, ts: nix::sys::time::TimeSpec) -> i128 {
        i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec()) - self.offset_ns
    }
}

/// Keeps kernel receive timestamping switched on for the run.
///
/// Linux turns timestamping on lazily (deferred work after the first socket asks for it), and
/// TCP — unlike UDP, which stamps at `recvmsg` time when a packet has none — then simply returns
/// no timestamp. This TCP loopback pair asks first and sends bytes across until they come back
/// stamped, so the run's connections find timestamping on.
pub struct TimestampKeeper {
    _sockets: (std::net::TcpStream, std::net::TcpStream),
    /// True when a stamped segment was seen.
    pub active: bool,
}

impl TimestampKeeper {
    /// Enables timestamping and waits (≤ 500 probes, 1 ms apart) until it is in effect.
    pub fn start() -> io::Result<Self> {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let receiver = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (mut sender, _) = listener.accept()?;
        sender.set_nodelay(true)?;
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
        nix::sys::socket::setsockopt(
            &receiver,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .map_err(io::Error::from)?;
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut buf = [0u8; 64];
        let mut active = false;
        for _ in 0..500 {
            sender.write_all(b"p")?;
            let (_, ts) = recv_stamped(receiver.as_raw_fd(), &mut buf, &mut cmsg)?;
            if ts.is_some() {
                active = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(TimestampKeeper {
            _sockets: (sender, receiver),
            active,
        })
    }
}

/// When the bytes of the latest read arrived: the kernel's receive timestamp of the last
/// segment consumed (`SO_TIMESTAMPNS`), or the read time when the kernel gave none.
#[derive(Debug, Default)]
pub struct ReadStamps {
    /// Arrival time (ns since epoch) of the data returned by the latest read.
    pub arrival_ns: AtomicU64,
    /// When that read happened (ns since epoch).
    pub read_ns: AtomicU64,
    /// Reads with data so far on this connection (the latest read's id).
    pub reads: AtomicU64,
}

/// A TCP stream that stamps every read with the kernel's receive time of its bytes.
pub struct TimedStream {
    inner: TcpStream,
    epoch: Instant,
    clock: KernelClock,
    kernel_stamps: bool,
    cmsg: Vec<u8>,
    stamps: Arc<ReadStamps>,
    unstamped: Arc<AtomicU64>,
}

impl TimedStream {
    fn record(&self, kernel: Option<nix::sys::time::TimeSpec>) {
        let read = ns_since(self.epoch);
        if self.kernel_stamps && kernel.is_none() {
            self.unstamped.fetch_add(1, Ordering::Relaxed);
        }
        let arrival = kernel
            .map(|ts| self.clock.to_epoch_ns(ts))
            // A stepped wall clock would give nonsense: keep the read time then.
            .filter(|&a| a <= read as i128 && a >= read as i128 - 10_000_000_000)
            .map_or(read, |a| a as u64);
        self.stamps.read_ns.store(read, Ordering::Relaxed);
        self.stamps.arrival_ns.store(arrival, Ordering::Relaxed);
        self.stamps.reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// One `recvmsg`, returning the byte count and the kernel receive timestamp, if any.
fn recv_stamped(
    fd: std::os::fd::RawFd,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> io::Result<(usize, Option<nix::sys::time::TimeSpec>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg =
        recvmsg::<()>(fd, &mut iov, Some(cmsg), MsgFlags::empty()).map_err(io::Error::from)?;
    let mut ts = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(t) = c {
                ts = Some(t);
            }
        }
    }
    Ok((msg.bytes, ts))
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.kernel_stamps {
            let before = buf.filled().len();
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                this.record(None);
            }
            return r;
        }
        loop {
            std::task::ready!(this.inner.poll_read_ready(cx))?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&this.inner);
            let unfilled = buf.initialize_unfilled();
            let cmsg = &mut this.cmsg;
            // `try_io` clears the readiness when the read would block, so the loop re-arms.
            let res = this.inner.try_io(tokio::io::Interest::READABLE, || {
                recv_stamped(fd, unfilled, cmsg)
            });
            match res {
                Ok((n, ts)) => {
                    buf.advance(n);
                    if n > 0 {
                        this.record(ts);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
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
    stamps: Arc<ReadStamps>,
}

impl Connection {
    /// Opens a connection to `target`.
    pub async fn open(target: &Target) -> Result<Self, Failure> {
        let (addr, epoch) = (target.addr, target.epoch);
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::new("ConnectError", format!("cannot connect to {addr}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::new("ConnectError", e.to_string()))?;
        let kernel_stamps = target.kernel_timestamps
            && nix::sys::socket::setsockopt(
                &stream,
                nix::sys::socket::sockopt::ReceiveTimestampns,
                &true,
            )
            .is_ok();
        if !kernel_stamps {
            target.read_fallback.store(true, Ordering::Relaxed);
        }
        let stamps = Arc::new(ReadStamps::default());
        let io = TokioIo::new(TimedStream {
            inner: stream,
            epoch,
            clock: target.kernel_clock,
            kernel_stamps,
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
            stamps: stamps.clone(),
            unstamped: target.unstamped_reads.clone(),
        });
        let (sender, driver) = http1::Builder::new()
            .max_buf_size(1 << 20)
            .handshake(io)
            .await
            .map_err(|e| Failure::new("ConnectError", e.to_string()))?;
        Ok(Connection {
            sender,
            driver: Some(Box::pin(driver)),
            stamps,
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
    /// Wall-clock offset for kernel timestamps.
    pub kernel_clock: KernelClock,
    /// Stamp chunks with the kernel's receive time (`SO_TIMESTAMPNS`) instead of the read time.
    pub kernel_timestamps: bool,
    /// Set when some connection had to fall back to read-time stamps.
    pub read_fallback: std::sync::atomic::AtomicBool,
    /// Reads that carried no kernel timestamp (stamped with the read time instead).
    pub unstamped_reads: Arc<AtomicU64>,
}

/// Like [`send`], but gives up after `timeout` (from the send): the request then fails with
/// kind `Timeout` and its connection is dropped.
pub async fn send_with_timeout(
    conn: &mut Option<Connection>,
    target: &Target,
    body: Bytes,
    rec: &mut RawRequest,
    timeout: Option<std::time::Duration>,
) {
    let Some(limit) = timeout else {
        return send(conn, target, body, rec).await;
    };
    if tokio::time::timeout(limit, send(conn, target, body, rec))
        .await
        .is_err()
    {
        *conn = None;
        rec.end_ns = ns_since(target.epoch);
        rec.failure = Some(Failure::new(
            "Timeout",
            format!(
                "no complete response within {} s (--request-timeout-s); {} chunks received",
                limit.as_secs_f64(),
                rec.events.len()
            ),
        ));
    }
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
        match Connection::open(target).await {
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
        // Drain so the connection stays usable. The error is the reason phrase, as upstream,
        // followed by the server's own message so a failed run says why.
        let text = collect_capped(&mut c.driver, body)
            .await
            .map(|b| error_message(&b))
            .unwrap_or_default();
        let reason = status.canonical_reason().unwrap_or("").to_string();
        return Err(Failure::new(
            "HTTPStatus",
            if text.is_empty() {
                reason
            } else {
                format!("{reason}: {text}")
            },
        ));
    }
    if !target.streaming {
        let all = collect_capped(&mut c.driver, body).await?;
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
        let arrival = c.stamps.arrival_ns.load(Ordering::Relaxed);
        let t = if arrival == 0 || arrival > handled {
            handled
        } else {
            arrival
        };
        let stamp = FrameStamp {
            t_ns: t,
            lag_ns: (handled - t).min(u64::from(u32::MAX)) as u32,
            read_id: c.stamps.reads.load(Ordering::Relaxed),
        };
        parser.feed_stamped(&data, stamp, rec)?;
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

/// The `message` of a JSON error body (OpenAI / TensorRT-LLM `ErrorResponse`), else the body's
/// first 300 characters.
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error").and_then(|e| e.get("message")))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.trim().to_string());
    message.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_late_read_keeps_the_kernel_arrival_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keeper = TimestampKeeper::start().unwrap();
        assert!(keeper.active, "kernel receive timestamps available");
        let epoch = Instant::now();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        nix::sys::socket::setsockopt(
            &client,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .unwrap();
        let stamps = Arc::new(ReadStamps::default());
        let unstamped = Arc::new(AtomicU64::new(0));
        let mut stream = TimedStream {
            inner: client,
            epoch,
            clock: KernelClock::new(epoch),
            kernel_stamps: true,
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
            stamps: stamps.clone(),
            unstamped: unstamped.clone(),
        };
        server.write_all(b"chunk").await.unwrap();
        let sent = ns_since(epoch);
        // The client reads 30 ms after the bytes arrived: its stamp must still say "arrived".
        std::thread::sleep(Duration::from_millis(30));
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"chunk");
        let arrival = stamps.arrival_ns.load(Ordering::Relaxed);
        let read = stamps.read_ns.load(Ordering::Relaxed);
        assert!(read - sent >= 30_000_000);
        assert!(
            arrival + 20_000_000 < read,
            "arrival {arrival} should precede the read {read} by ~30 ms"
        );
        assert!(arrival + 5_000_000 > sent, "arrival close to the send");
        assert_eq!(unstamped.load(Ordering::Relaxed), 0);

        // Two segments 20 ms apart, read together: the kernel merged them into one buffer
        // and keeps only the later arrival time — the first chunk's own time is gone, which
        // is why merged reads are counted (`ChunkEvent::merged`) rather than corrected.
        server.write_all(b"one").await.unwrap();
        std::thread::sleep(Duration::from_millis(20));
        server.write_all(b"two").await.unwrap();
        let second = ns_since(epoch);
        std::thread::sleep(Duration::from_millis(5));
        let n = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"onetwo");
        let arrival = stamps.arrival_ns.load(Ordering::Relaxed);
        assert!(arrival + 2_000_000 > second, "the later segment's time");
        assert_eq!(stamps.reads.load(Ordering::Relaxed), 2);
    }
}
