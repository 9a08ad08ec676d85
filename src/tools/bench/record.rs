//! Raw per-request samples recorded by the hot loop; nothing here is derived.
//!
//! All times are nanoseconds on one monotonic clock, counted from the run's epoch. Metrics
//! (TTFT, ITL, …) are computed after the run from these samples by [`super::metrics`], which
//! is also how `--save-detailed` output can be recomputed offline.

use serde::Serialize;

/// Sentinel for "this event carried no usage".
pub const NO_USAGE: u32 = u32::MAX;

/// One SSE `data:` event of a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChunkEvent {
    /// When the bytes completing this event arrived (kernel receive timestamp, else read time).
    pub t_ns: u64,
    /// Delay from that arrival to the moment the client handled the event (client lag).
    pub lag_ns: u32,
    /// Byte offset in the request's generated text after this event's text.
    pub text_end: u32,
    /// `usage.completion_tokens` carried by this event, or [`NO_USAGE`].
    pub usage_tokens: u32,
    /// True when the event had a non-empty `choices` list.
    pub has_choices: bool,
    /// True when this `choices` event came in the same socket read as the stream's previous
    /// `choices` event: the two carry one arrival time, so the gap between them (and the one
    /// before) is not a measurement. See [`super::metrics::MERGED_SHARE_OF_TAIL`].
    pub merged: bool,
}

/// How a request failed on the transport or protocol level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Error type used to group failures (`ConnectError`, `HTTPStatus`, …).
    pub kind: String,
    /// Human-readable message (upstream's `error` field).
    pub message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.to_string(),
            message: message.into(),
        }
    }
}

/// Everything observed for one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RawRequest {
    /// Index in the dataset.
    pub index: usize,
    /// Intended dispatch time (0 with `--request-rate inf`).
    pub scheduled_ns: u64,
    /// Time spent waiting for a free concurrency slot after the intended dispatch time.
    pub slot_wait_ns: u64,
    /// How late the dispatch timer woke (finite request rates only).
    pub timer_late_ns: u64,
    /// Timer start: just before the connection is (re)used or opened and the request written.
    pub sent_ns: u64,
    /// Duration of opening a new connection for this request, if one was opened.
    pub connect_ns: Option<u64>,
    /// When the response head arrived.
    pub headers_ns: Option<u64>,
    /// When the response ended (or failed).
    pub end_ns: u64,
    /// HTTP status.
    pub status: Option<u16>,
    /// Streamed events in arrival order.
    pub events: Vec<ChunkEvent>,
    /// Concatenated generated text.
    pub text: String,
    /// Last `avg_decoded_tokens_per_iter` the server sent.
    pub avg_decoded_tokens_per_iter: Option<f64>,
    /// Non-streaming responses: `usage.completion_tokens`.
    pub usage_tokens: Option<u64>,
    /// Transport or protocol failure.
    pub failure: Option<Failure>,
}
