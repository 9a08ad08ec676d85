//! Response bodies: SSE chunks and JSON responses, byte-compatible with TensorRT-LLM's
//! `postprocess_handlers.py`.
//!
//! * completions chunks dump every field (`exclude_unset=False`): `token_ids`, `logprobs`,
//!   `finish_reason`, `stop_reason`, `avg_decoded_tokens_per_iter` and `usage` appear as `null`;
//! * with speculative decoding every choice (completions and chat, streamed or not) carries the
//!   request's `avg_decoded_tokens_per_iter` so far (`spec.rs`); without it the field stays `null`
//!   (chat chunks: absent);
//! * chat chunks drop `None` fields; the first carries `delta.role` (and no average, as upstream's
//!   role chunk) and ends with `" \n\n"`;
//! * with `stream_options.include_usage` a final chunk with `"choices":[]` carries `usage`;
//! * the stream ends with `data: [DONE]`.
//!
//! Every per-request constant (id, model, created) is rendered once into a prefix, so a chunk is
//! a few string appends; no JSON serializer runs on the hot path.

use std::sync::Arc;

use serde_json::{Value, json};

use super::iter_log::write_py_float;
use super::protocol::Endpoint;
use super::scheduler::EngineEvent;
use super::spec::avg_decoded_tokens_per_iter;
use super::tokens::{OutputVocab, json_escape};

/// How a request's output is rendered.
#[derive(Debug, Clone)]
pub struct ResponseShape {
    /// Endpoint (completions or chat).
    pub endpoint: Endpoint,
    /// Response id (`cmpl-…` / `chatcmpl-…`).
    pub id: String,
    /// `model` echoed from the request.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// Seed of the output token sequence.
    pub seed: u64,
    /// Token 0 when it was computed elsewhere (generation_only).
    pub first_token: Option<u32>,
    /// Prompt tokens reported in `usage`.
    pub prompt_tokens: u64,
    /// Append a usage chunk before `[DONE]`.
    pub include_usage: bool,
    /// Speculative decoding is on: choices carry `avg_decoded_tokens_per_iter`.
    pub report_avg_decoded: bool,
}

/// Builds SSE chunks and final responses for one request.
#[derive(Debug)]
pub struct Encoder {
    shape: ResponseShape,
    vocab: Arc<OutputVocab>,
    head: String,
    role_sent: bool,
}

impl Encoder {
    /// Prepares the per-request prefix.
    pub fn new(shape: ResponseShape, vocab: Arc<OutputVocab>) -> Self {
        let object = match shape.endpoint {
            Endpoint::Completions => "text_completion",
            Endpoint::Chat => "chat.completion.chunk",
        };
        let head = format!(
            "{{\"id\":\"{}\",\"object\":\"{object}\",\"created\":{},\"model\":\"{}\",\"choices\":[",
            shape.id,
            shape.created,
            json_escape(&shape.model)
        );
        Self {
            shape,
            vocab,
            head,
            role_sent: false,
        }
    }

    /// Id of output token `k`.
    pub fn token_id(&self, k: u64) -> u32 {
        match (k, self.shape.first_token) {
            (0, Some(first)) => first,
            _ => self.vocab.token_id(self.shape.seed, k),
        }
    }

    /// JSON-escaped text of tokens `start..start+count`.
    pub fn text(&self, start: u64, count: u64, out: &mut String) {
        for k in start..start + count {
            self.vocab.push_text(self.token_id(k), out);
        }
    }

    /// The request's `avg_decoded_tokens_per_iter` after `tokens` tokens in `iterations`
    /// decoding iterations; `None` without speculative decoding.
    pub fn avg_decoded(&self, tokens: u64, iterations: u64) -> Option<f64> {
        self.shape
            .report_avg_decoded
            .then(|| avg_decoded_tokens_per_iter(tokens, iterations))
    }

    /// Appends the SSE event(s) for the tokens of `ev`; when it is the last, also the usage
    /// chunk (if asked for) and `data: [DONE]`.
    pub fn push_chunk(&mut self, ev: &EngineEvent, out: &mut String) {
        let EngineEvent {
            start,
            count,
            iterations,
            finished,
        } = *ev;
        let finish = if finished { "\"length\"" } else { "null" };
        let avg = self.avg_decoded(start + count, iterations);
        match self.shape.endpoint {
            Endpoint::Completions => {
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str("{\"index\":0,\"text\":\"");
                self.text(start, count, out);
                out.push_str("\",\"token_ids\":null,\"logprobs\":null,\"finish_reason\":");
                out.push_str(finish);
                out.push_str(",\"stop_reason\":null,\"avg_decoded_tokens_per_iter\":");
                match avg {
                    Some(v) => write_py_float(out, v),
                    None => out.push_str("null"),
                }
                out.push_str("}],\"usage\":null}\n\n");
            }
            Endpoint::Chat => {
                if !self.role_sent {
                    self.role_sent = true;
                    out.push_str("data: ");
                    out.push_str(&self.head);
                    out.push_str("{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]} \n\n");
                }
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str("{\"index\":0,\"delta\":{\"content\":\"");
                self.text(start, count, out);
                out.push_str("\",\"reasoning_content\":\"\"}");
                if finished {
                    out.push_str(",\"finish_reason\":\"length\"");
                }
                if let Some(v) = avg {
                    out.push_str(",\"avg_decoded_tokens_per_iter\":");
                    write_py_float(out, v);
                }
                out.push_str("}]}\n\n");
            }
        }
        if finished {
            if self.shape.include_usage {
                let completion = start + count;
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str("],\"usage\":");
                out.push_str(&usage(self.shape.prompt_tokens, completion).to_string());
                out.push_str("}\n\n");
            }
            out.push_str("data: [DONE]\n\n");
        }
    }

    /// The non-streaming response after `completion_tokens` tokens in `iterations` decoding
    /// iterations; `disagg` is the `disaggregated_params` of a context-only response and
    /// `prompt_token_ids` its prompt.
    pub fn full_response(
        &self,
        completion_tokens: u64,
        iterations: u64,
        disagg: Option<Value>,
        prompt_token_ids: Option<Vec<u32>>,
    ) -> Value {
        let avg = self.avg_decoded(completion_tokens, iterations);
        let mut text = String::new();
        self.text(0, completion_tokens, &mut text);
        let text: String = serde_json::from_str(&format!("\"{text}\"")).expect("escaped text");
        let usage = usage(self.shape.prompt_tokens, completion_tokens);
        match self.shape.endpoint {
            Endpoint::Completions => json!({
                "id": self.shape.id,
                "object": "text_completion",
                "created": self.shape.created,
                "model": self.shape.model,
                "choices": [{
                    "index": 0,
                    "text": text,
                    "token_ids": null,
                    "logprobs": null,
                    "context_logits": null,
                    "finish_reason": "length",
                    "stop_reason": null,
                    "disaggregated_params": disagg,
                    "avg_decoded_tokens_per_iter": avg,
                }],
                "usage": usage,
                "prompt_token_ids": prompt_token_ids,
            }),
            Endpoint::Chat => json!({
                "id": self.shape.id,
                "object": "chat.completion",
                "created": self.shape.created,
                "model": self.shape.model,
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "reasoning_content": "",
                        "reasoning": null,
                        "tool_calls": [],
                    },
                    "logprobs": null,
                    "finish_reason": "length",
                    "stop_reason": null,
                    "mm_embedding_handle": null,
                    "disaggregated_params": disagg,
                    "avg_decoded_tokens_per_iter": avg,
                }],
                "usage": usage,
                "prompt_token_ids": prompt_token_ids,
                "prompt_token_ids_b64": null,
            }),
        }
    }
}

/// `UsageInfo` (`prompt_tokens`, `total_tokens`, `completion_tokens`, `prompt_tokens_details`).
pub fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    })
}

/// TensorRT-LLM's `ErrorResponse` body.
pub fn error_body(message: &str, kind: &str, code: u16) -> Value {
    json!({"object": "error", "message": message, "type": kind, "param": null, "code": code})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::tokenizer::Tokenizer;

    fn encoder(endpoint: Endpoint, include_usage: bool) -> Encoder {
        encoder_with(endpoint, include_usage, false)
    }

    fn encoder_with(endpoint: Endpoint, include_usage: bool, spec: bool) -> Encoder {
        Encoder::new(
            ResponseShape {
                endpoint,
                id: "cmpl-1".into(),
                model: "m\"x".into(),
                created: 5,
                seed: 3,
                first_token: Some(7),
                prompt_tokens: 4,
                include_usage,
                report_avg_decoded: spec,
            },
            Arc::new(OutputVocab::new(Tokenizer::synthetic())),
        )
    }

    fn ev(start: u64, count: u64, iterations: u64, finished: bool) -> EngineEvent {
        EngineEvent {
            start,
            count,
            iterations,
            finished,
        }
    }

    fn events(text: &str) -> Vec<Value> {
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.trim().strip_prefix("data: ").unwrap())
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    #[test]
    fn completion_chunks_are_valid_json_with_null_fields() {
        let mut e = encoder(Endpoint::Completions, true);
        let mut out = String::new();
        e.push_chunk(&ev(0, 1, 1, false), &mut out);
        e.push_chunk(&ev(1, 2, 3, true), &mut out);
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert!(out.contains("\"avg_decoded_tokens_per_iter\":null}"));
        let ev = events(&out);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0]["choices"][0]["text"], " t7");
        assert!(ev[0]["choices"][0]["finish_reason"].is_null());
        assert!(ev[0]["usage"].is_null());
        assert_eq!(ev[0]["model"], "m\"x");
        assert_eq!(ev[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(ev[2]["choices"], json!([]));
        assert_eq!(ev[2]["usage"]["completion_tokens"], 3);
        assert_eq!(ev[2]["usage"]["total_tokens"], 7);
    }

    #[test]
    fn chat_chunks_start_with_role() {
        let mut e = encoder(Endpoint::Chat, false);
        let mut out = String::new();
        e.push_chunk(&ev(0, 2, 2, true), &mut out);
        assert!(out.starts_with("data: {") && out.contains("]} \n\n"));
        assert!(!out.contains("avg_decoded_tokens_per_iter"));
        let ev = events(&out);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(ev[0]["object"], "chat.completion.chunk");
        assert!(
            ev[1]["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .starts_with(" t7 t")
        );
        assert_eq!(ev[1]["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn full_responses() {
        let e = encoder(Endpoint::Completions, false);
        let r = e.full_response(
            3,
            3,
            Some(json!({"request_type": "context_only"})),
            Some(vec![1]),
        );
        assert!(r["choices"][0]["avg_decoded_tokens_per_iter"].is_null());
        assert_eq!(r["usage"]["completion_tokens"], 3);
        assert_eq!(
            r["choices"][0]["disaggregated_params"]["request_type"],
            "context_only"
        );
        assert_eq!(r["prompt_token_ids"], json!([1]));
        let e = encoder(Endpoint::Chat, false);
        let r = e.full_response(1, 1, None, None);
        assert_eq!(r["choices"][0]["message"]["content"], " t7");
        assert_eq!(r["object"], "chat.completion");
    }

    #[test]
    fn speculative_chunks_carry_the_running_average() {
        let mut e = encoder_with(Endpoint::Completions, true, true);
        let mut out = String::new();
        e.push_chunk(&ev(0, 1, 1, false), &mut out);
        e.push_chunk(&ev(1, 8, 3, false), &mut out);
        e.push_chunk(&ev(9, 2, 4, true), &mut out);
        // Python prints the C++ float: 1.0, 3.0 and 11/4 = 2.75.
        assert!(out.contains("\"stop_reason\":null,\"avg_decoded_tokens_per_iter\":1.0}"));
        assert!(out.contains("\"avg_decoded_tokens_per_iter\":3.0}"));
        assert!(out.contains("\"avg_decoded_tokens_per_iter\":2.75}"));
        let ev_json = events(&out);
        assert_eq!(
            ev_json[2]["choices"][0]["avg_decoded_tokens_per_iter"],
            2.75
        );
        assert!(
            ev_json[3]["choices"].as_array().unwrap().is_empty(),
            "usage chunk"
        );

        let mut e = encoder_with(Endpoint::Chat, false, true);
        let mut out = String::new();
        e.push_chunk(&ev(0, 1, 1, false), &mut out);
        e.push_chunk(&ev(1, 10, 3, true), &mut out);
        let ev_json = events(&out);
        assert!(
            ev_json[0]["choices"][0]
                .get("avg_decoded_tokens_per_iter")
                .is_none()
        );
        assert_eq!(ev_json[1]["choices"][0]["avg_decoded_tokens_per_iter"], 1.0);
        assert_eq!(
            ev_json[2]["choices"][0]["avg_decoded_tokens_per_iter"].as_f64(),
            Some(f64::from(11.0f32 / 3.0f32))
        );
        // Upstream's field order: ..., finish_reason, (stop_reason: None, dropped), average.
        assert!(
            out.contains(
                "\"finish_reason\":\"length\",\"avg_decoded_tokens_per_iter\":3.6666667461395264}]}\n\n"
            ),
            "{out}"
        );

        let e = encoder_with(Endpoint::Chat, false, true);
        let r = e.full_response(41, 11, None, None);
        assert_eq!(
            r["choices"][0]["avg_decoded_tokens_per_iter"]
                .as_f64()
                .unwrap(),
            3.7272727489471436
        );
        assert!(
            r.to_string()
                .contains("\"avg_decoded_tokens_per_iter\":3.7272727489471436")
        );
    }
}
