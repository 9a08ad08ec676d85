//! Incremental parsing of an OpenAI-style SSE body into [`ChunkEvent`]s.
//!
//! Follows upstream's line handling: split on `\n`, strip whitespace, skip empty lines, drop a
//! `data: ` prefix, ignore `[DONE]`, parse the rest as JSON (a parse error fails the request).
//! Each event is stamped with the arrival time of the bytes that completed its line.

use std::borrow::Cow;

use serde::Deserialize;

use super::record::{ChunkEvent, Failure, NO_USAGE, RawRequest};

#[derive(Deserialize)]
struct StreamChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceRaw<'a>>>,
    #[serde(default)]
    usage: Option<UsageRaw>,
}

#[derive(Deserialize)]
struct ChoiceRaw<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<DeltaRaw<'a>>,
    #[serde(default)]
    avg_decoded_tokens_per_iter: Option<f64>,
}

#[derive(Deserialize)]
struct DeltaRaw<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UsageRaw {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Longest SSE line accepted without a newline. A real chunk line is a few hundred bytes (a
/// few MB at most, for a huge non-incremental text); a server that never ends its line would
/// otherwise grow the buffer until allocation fails.
pub const MAX_SSE_LINE_BYTES: usize = 16 << 20;

/// Splits body bytes into lines across frame boundaries.
#[derive(Debug, Default)]
pub struct SseParser {
    partial: Vec<u8>,
    /// Read id of the latest `choices` event (0 = none yet).
    last_choices_read: u64,
}

/// Where the bytes of one body frame came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStamp {
    /// Arrival time (ns since epoch) of the read that completed the frame.
    pub t_ns: u64,
    /// Arrival → handling delay of that read.
    pub lag_ns: u32,
    /// Which socket read of the connection delivered it (counts from 1; 0 = unknown).
    pub read_id: u64,
}

impl SseParser {
    /// Feeds one body frame that arrived at `t_ns` (socket read) and was handled `lag_ns` later.
    pub fn feed(
        &mut self,
        data: &[u8],
        t_ns: u64,
        lag_ns: u32,
        rec: &mut RawRequest,
    ) -> Result<(), Failure> {
        self.feed_stamped(
            data,
            FrameStamp {
                t_ns,
                lag_ns,
                read_id: 0,
            },
            rec,
        )
    }

    /// Feeds one body frame with its read's stamp; events completed by the same read as the
    /// stream's previous `choices` event are marked `merged`.
    pub fn feed_stamped(
        &mut self,
        data: &[u8],
        stamp: FrameStamp,
        rec: &mut RawRequest,
    ) -> Result<(), Failure> {
        let mut rest = data;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(line, stamp, rec)?;
            } else {
                self.check_len(line.len())?;
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                self.line(&whole, stamp, rec)?;
            }
        }
        self.check_len(rest.len())?;
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn check_len(&self, more: usize) -> Result<(), Failure> {
        if self.partial.len().saturating_add(more) > MAX_SSE_LINE_BYTES {
            return Err(Failure::new(
                "BodyError",
                format!(
                    "a stream line grew past {} MiB without a newline (MAX_SSE_LINE_BYTES); \
                     the server is not sending server-sent events",
                    MAX_SSE_LINE_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    fn line(
        &mut self,
        line: &[u8],
        stamp: FrameStamp,
        rec: &mut RawRequest,
    ) -> Result<(), Failure> {
        let before = rec.events.len();
        handle_line(line, stamp.t_ns, stamp.lag_ns, rec)?;
        if let Some(e) = rec.events.get_mut(before)
            && e.has_choices
        {
            e.merged = stamp.read_id != 0 && stamp.read_id == self.last_choices_read;
            self.last_choices_read = stamp.read_id;
        }
        Ok(())
    }

    /// Handles a last line without a trailing newline at end of body.
    pub fn finish(&mut self, t_ns: u64, rec: &mut RawRequest) -> Result<(), Failure> {
        let whole = std::mem::take(&mut self.partial);
        handle_line(&whole, t_ns, 0, rec)
    }
}

fn handle_line(line: &[u8], t_ns: u64, lag_ns: u32, rec: &mut RawRequest) -> Result<(), Failure> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    let payload = line.strip_prefix(b"data: ").unwrap_or(line);
    if payload == b"[DONE]" {
        return Ok(());
    }
    let chunk: StreamChunk<'_> = serde_json::from_slice(payload).map_err(|e| {
        Failure::new(
            "JSONDecodeError",
            format!(
                "{e} in stream line {:?}",
                String::from_utf8_lossy(&payload[..payload.len().min(200)])
            ),
        )
    })?;
    let mut has_choices = false;
    if let Some(first) = chunk.choices.as_ref().and_then(|c| c.first()) {
        has_choices = true;
        let text = first
            .text
            .as_deref()
            .or_else(|| first.delta.as_ref().and_then(|d| d.content.as_deref()));
        if let Some(t) = text {
            rec.text.push_str(t);
        }
        if let Some(a) = first.avg_decoded_tokens_per_iter {
            rec.avg_decoded_tokens_per_iter = Some(a);
        }
    }
    let usage_tokens = chunk
        .usage
        .and_then(|u| u.completion_tokens)
        .map_or(NO_USAGE, |n| n.min(u64::from(NO_USAGE - 1)) as u32);
    rec.events.push(ChunkEvent {
        t_ns,
        lag_ns,
        text_end: rec.text.len().min(u32::MAX as usize) as u32,
        usage_tokens,
        has_choices,
        merged: false,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_frames_get_the_completing_frame_time() {
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        let a = b"data: {\"choices\":[{\"text\":\" t1\"}]}\n\ndata: {\"choi";
        let b = b"ces\":[{\"text\":\" t2\",\"avg_decoded_tokens_per_iter\":2.5}]}\n\n";
        let c = b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        p.feed(a, 100, 1, &mut rec).unwrap();
        p.feed(b, 200, 2, &mut rec).unwrap();
        p.feed(c, 300, 3, &mut rec).unwrap();
        p.finish(400, &mut rec).unwrap();
        assert_eq!(rec.text, " t1 t2");
        assert_eq!(rec.avg_decoded_tokens_per_iter, Some(2.5));
        let times: Vec<u64> = rec.events.iter().map(|e| e.t_ns).collect();
        assert_eq!(times, vec![100, 200, 300]);
        assert_eq!(rec.events[1].text_end, 6);
        assert!(rec.events[1].has_choices && !rec.events[2].has_choices);
        assert_eq!(rec.events[2].usage_tokens, 2);
        assert_eq!(rec.events[0].usage_tokens, NO_USAGE);
    }

    #[test]
    fn chat_deltas_and_bad_json() {
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        p.feed(
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n",
            5,
            0,
            &mut rec,
        )
        .unwrap();
        assert_eq!(rec.text, "hi");
        assert_eq!(rec.events.len(), 2);
        let err = p.feed(b": keep-alive\n", 6, 0, &mut rec).unwrap_err();
        assert_eq!(err.kind, "JSONDecodeError");
    }

    #[test]
    fn events_of_one_read_are_marked_merged() {
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        let one = b"data: {\"choices\":[{\"text\":\" a\"}]}\n\n";
        let two = b"data: {\"choices\":[{\"text\":\" b\"}]}\n\ndata: {\"choices\":[{\"text\":\" c\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n";
        let stamp = |t, id| FrameStamp {
            t_ns: t,
            lag_ns: 0,
            read_id: id,
        };
        p.feed_stamped(one, stamp(10, 1), &mut rec).unwrap();
        // Two frames of one read (hyper splits chunked bodies per HTTP chunk).
        p.feed_stamped(two, stamp(30, 2), &mut rec).unwrap();
        let merged: Vec<bool> = rec.events.iter().map(|e| e.merged).collect();
        assert_eq!(merged, vec![false, false, true, false]);
    }

    #[test]
    fn a_line_without_newline_is_capped() {
        let mut p = SseParser::default();
        let mut rec = RawRequest::default();
        let block = vec![b'x'; 1 << 20];
        let mut err = None;
        for _ in 0..(MAX_SSE_LINE_BYTES >> 20) + 2 {
            if let Err(e) = p.feed(&block, 1, 0, &mut rec) {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("capped");
        assert_eq!(err.kind, "BodyError");
        assert!(err.message.contains("without a newline"), "{}", err.message);
        assert!(p.partial.len() <= MAX_SSE_LINE_BYTES);
    }
}
