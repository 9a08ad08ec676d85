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

/// Splits body bytes into lines across frame boundaries.
#[derive(Debug, Default)]
pub struct SseParser {
    partial: Vec<u8>,
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
        let mut rest = data;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.partial.is_empty() {
                handle_line(line, t_ns, lag_ns, rec)?;
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                handle_line(&whole, t_ns, lag_ns, rec)?;
            }
        }
        self.partial.extend_from_slice(rest);
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
}
