//! OpenAI-compatible request bodies as TensorRT-LLM's `openai_protocol.py` defines them.
//!
//! Like the real server (pydantic models with `extra="forbid"`), unknown top-level fields are
//! rejected, so a client that works against the simulator does not send something a real
//! `trtllm-serve` would refuse. Features the simulated model cannot honour (`n > 1`, beam
//! search, log-probs, echo, guided decoding, …) are refused with a 400 that says so, never
//! silently ignored. Field names follow upstream; the `disaggregated_params` object carries
//! `request_type`, `first_gen_tokens`, `ctx_request_id`, `encoded_opaque_state`, … verbatim.

use serde_json::{Map, Value};

/// Which endpoint a body was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`
    Completions,
    /// `/v1/chat/completions`
    Chat,
}

/// The prompt of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Text, tokenized by the worker.
    Text(String),
    /// Token ids given by the client (or relayed from a context worker).
    Tokens(Vec<u32>),
}

/// `disaggregated_params.request_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisaggRequestType {
    /// Prefill only; return the first token and the params a generation server needs.
    ContextOnly,
    /// Continue decoding from the params of a context server.
    GenerationOnly,
}

/// The parts of `disaggregated_params` the simulator uses.
#[derive(Debug, Clone, PartialEq)]
pub struct DisaggParams {
    /// `request_type`.
    pub request_type: DisaggRequestType,
    /// `first_gen_tokens` (required for generation_only).
    pub first_gen_tokens: Vec<u32>,
    /// `ctx_request_id` (required for generation_only).
    pub ctx_request_id: Option<u64>,
    /// `draft_tokens`: drafts a speculative context worker proposed after the first token.
    pub draft_tokens: Vec<u32>,
    /// `disagg_request_id`, echoed back by a context worker.
    pub disagg_request_id: Option<Value>,
    /// `ctx_usage.prompt_tokens`: the generation server reports this prompt length.
    pub ctx_prompt_tokens: Option<u64>,
    /// `encoded_opaque_state` (protected: needs the router's signature).
    pub encoded_opaque_state: Value,
    /// `ctx_info_endpoint` (protected).
    pub ctx_info_endpoint: Value,
}

/// A validated completion or chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// Endpoint it came in on.
    pub endpoint: Endpoint,
    /// `model`, echoed in responses.
    pub model: String,
    /// Prompt.
    pub prompt: Prompt,
    /// `max_tokens` / `max_completion_tokens` (None = TensorRT-LLM's default).
    pub max_tokens: Option<u64>,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage` (defaults to true when `stream_options` is given).
    pub include_usage: bool,
    /// `ignore_eos` (the simulated model never emits EOS, so it has no visible effect).
    pub ignore_eos: bool,
    /// `add_special_tokens` (completions default true, chat default false).
    pub add_special_tokens: bool,
    /// `disaggregated_params`.
    pub disagg: Option<DisaggParams>,
}

/// A 400-class problem with a request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(message.into()))
}

const COMMON_FIELDS: &[&str] = &[
    "model",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "user",
    "lora_request",
    "prompt_ignore_length",
    "use_beam_search",
    "top_k",
    "top_p_min",
    "min_p",
    "repetition_penalty",
    "length_penalty",
    "early_stopping",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "truncate_prompt_tokens",
    "thinking_token_budget",
    "add_special_tokens",
    "response_format",
    "disaggregated_params",
    "priority",
    "conversation_params",
];

const COMPLETION_FIELDS: &[&str] = &["prompt", "suffix", "return_context_logits", "detokenize"];

const CHAT_FIELDS: &[&str] = &[
    "messages",
    "prompt_token_ids",
    "prompt_token_ids_b64",
    "top_logprobs",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "thinking",
    "add_generation_prompt",
    "documents",
    "chat_template",
    "chat_template_kwargs",
    "injected_chat_template_kwargs",
    "media_io_kwargs",
    "cache_salt",
    "agent_hierarchy",
    "mm_processor_kwargs",
];

const DISAGG_FIELDS: &[&str] = &[
    "request_type",
    "first_gen_tokens",
    "first_gen_log_probs",
    "first_gen_logits",
    "ctx_request_id",
    "encoded_opaque_state",
    "draft_tokens",
    "disagg_request_id",
    "ctx_dp_rank",
    "ctx_info_endpoint",
    "schedule_style",
    "ctx_usage",
    "return_prompt_token_ids_b64",
    "resolved_thinking",
    "conversation_id",
];

/// Field lookup with `null` treated as absent, as pydantic does for optional fields.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn as_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ProtocolError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => err(format!("{key}: expected a boolean, got {v}")),
    }
}

fn as_uint(key: &str, v: &Value) -> Result<u64, ProtocolError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 => Ok(f as u64),
        _ => err(format!("{key}: expected a non-negative integer, got {v}")),
    }
}

fn opt_uint(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ProtocolError> {
    field(obj, key).map(|v| as_uint(key, v)).transpose()
}

fn token_list(key: &str, v: &Value) -> Result<Vec<u32>, ProtocolError> {
    let Value::Array(items) = v else {
        return err(format!("{key}: expected a list of token ids, got {v}"));
    };
    items
        .iter()
        .map(|i| {
            i.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ProtocolError(format!("{key}: expected token ids, got {i}")))
        })
        .collect()
}

/// Parses and validates a request body posted to `endpoint`.
pub fn parse_request(endpoint: Endpoint, body: &[u8]) -> Result<ParsedRequest, ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ProtocolError(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return err("request body must be a JSON object");
    };
    let specific = match endpoint {
        Endpoint::Completions => COMPLETION_FIELDS,
        Endpoint::Chat => CHAT_FIELDS,
    };
    let extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !COMMON_FIELDS.contains(k) && !specific.contains(k))
        .collect();
    if !extra.is_empty() {
        return err(format!(
            "extra inputs are not permitted (TensorRT-LLM rejects unknown fields): {}",
            extra.join(", ")
        ));
    }
    let model = match obj.get("model") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return err(format!("model: expected a string, got {v}")),
        None => return err("model: field required"),
    };
    check_unsupported(endpoint, &obj)?;
    let stream = as_bool(&obj, "stream")?.unwrap_or(false);
    let include_usage = match field(&obj, "stream_options") {
        None => false,
        Some(Value::Object(opts)) => {
            if !stream {
                return err("Stream options can only be defined when stream is true.");
            }
            for k in opts.keys() {
                if k != "include_usage" && k != "continuous_usage_stats" {
                    return err(format!(
                        "stream_options.{k}: extra inputs are not permitted"
                    ));
                }
            }
            if as_bool(opts, "continuous_usage_stats")?.unwrap_or(false) {
                return err(
                    "stream_options.continuous_usage_stats is not supported by the simulator",
                );
            }
            as_bool(opts, "include_usage")?.unwrap_or(true)
        }
        Some(v) => return err(format!("stream_options: expected an object, got {v}")),
    };
    let max_tokens = match endpoint {
        Endpoint::Completions => opt_uint(&obj, "max_tokens")?,
        Endpoint::Chat => match opt_uint(&obj, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_uint(&obj, "max_tokens")?,
        },
    };
    if max_tokens == Some(0) {
        return err("max_tokens: must be at least 1");
    }
    let prompt = match endpoint {
        Endpoint::Completions => completion_prompt(&obj)?,
        Endpoint::Chat => chat_prompt(&obj)?,
    };
    let add_special_tokens =
        as_bool(&obj, "add_special_tokens")?.unwrap_or(endpoint == Endpoint::Completions);
    let disagg = field(&obj, "disaggregated_params")
        .map(parse_disagg)
        .transpose()?;
    Ok(ParsedRequest {
        endpoint,
        model,
        prompt,
        max_tokens,
        stream,
        include_usage,
        ignore_eos: as_bool(&obj, "ignore_eos")?.unwrap_or(false),
        add_special_tokens,
        disagg,
    })
}

fn check_unsupported(endpoint: Endpoint, obj: &Map<String, Value>) -> Result<(), ProtocolError> {
    let unsupported = |what: &str| err(format!("{what} is not supported by the simulator"));
    if opt_uint(obj, "n")?.is_some_and(|n| n != 1) {
        return unsupported("n != 1");
    }
    if opt_uint(obj, "best_of")?.is_some_and(|n| n > 1) {
        return unsupported("best_of > 1");
    }
    if as_bool(obj, "use_beam_search")?.unwrap_or(false) {
        return unsupported("use_beam_search");
    }
    if as_bool(obj, "echo")?.unwrap_or(false) {
        return unsupported("echo");
    }
    match (endpoint, field(obj, "logprobs")) {
        (_, None) | (_, Some(Value::Bool(false))) => {}
        (Endpoint::Completions, Some(v)) if v.as_u64() == Some(0) => {}
        _ => return unsupported("logprobs"),
    }
    if let Some(s) = field(obj, "suffix")
        && s.as_str() != Some("")
    {
        return err("suffix is not supported");
    }
    if as_bool(obj, "return_context_logits")?.unwrap_or(false) {
        return unsupported("return_context_logits");
    }
    if as_bool(obj, "detokenize")? == Some(false) {
        return unsupported("detokenize=false");
    }
    if let Some(format) = field(obj, "response_format")
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return unsupported("response_format other than text (guided decoding)");
    }
    if field(obj, "prompt_token_ids_b64").is_some() {
        return unsupported("prompt_token_ids_b64");
    }
    Ok(())
}

fn completion_prompt(obj: &Map<String, Value>) -> Result<Prompt, ProtocolError> {
    let Some(prompt) = obj.get("prompt") else {
        return err("prompt: field required");
    };
    let prompt = match prompt {
        Value::String(s) => Prompt::Text(s.clone()),
        Value::Array(items) if items.first().is_some_and(Value::is_number) || items.is_empty() => {
            Prompt::Tokens(token_list("prompt", prompt)?)
        }
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(s) => Prompt::Text(s.clone()),
            inner @ Value::Array(_) => Prompt::Tokens(token_list("prompt", inner)?),
            v => return err(format!("prompt: expected text or token ids, got {v}")),
        },
        Value::Array(_) => {
            return err("prompt: the simulator serves one prompt per request (got a batch)");
        }
        v => return err(format!("prompt: expected text or token ids, got {v}")),
    };
    match &prompt {
        Prompt::Text(s) if s.trim().is_empty() => err("prompt: must not be empty"),
        Prompt::Tokens(t) if t.is_empty() => err("prompt: must not be empty"),
        _ => Ok(prompt),
    }
}

fn chat_prompt(obj: &Map<String, Value>) -> Result<Prompt, ProtocolError> {
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) => m,
        Some(v) => return err(format!("messages: expected a list, got {v}")),
        None => return err("messages: field required"),
    };
    let mut text = String::new();
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(m) = message else {
            return err(format!("messages[{i}]: expected an object, got {message}"));
        };
        if !m.get("role").is_some_and(Value::is_string) {
            return err(format!("messages[{i}].role: field required (a string)"));
        }
        match field(m, "content") {
            None => {}
            Some(Value::String(s)) => push_line(&mut text, s),
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    match (part.get("type").and_then(Value::as_str), part.get("text")) {
                        (Some("text"), Some(Value::String(s))) => push_line(&mut text, s),
                        (Some(kind), _) => {
                            return err(format!(
                                "messages[{i}].content[{j}]: content type {kind:?} is not \
                                 supported by the simulator (text only)"
                            ));
                        }
                        (None, _) => {
                            return err(format!("messages[{i}].content[{j}].type: field required"));
                        }
                    }
                }
            }
            Some(v) => {
                return err(format!(
                    "messages[{i}].content: expected a string or a list of parts, got {v}"
                ));
            }
        }
    }
    if let Some(ids) = field(obj, "prompt_token_ids") {
        let ids = token_list("prompt_token_ids", ids)?;
        if ids.is_empty() {
            return err("prompt_token_ids: must not be empty");
        }
        return Ok(Prompt::Tokens(ids));
    }
    if text.trim().is_empty() {
        return err("messages: no text content to prompt with");
    }
    Ok(Prompt::Text(text))
}

fn push_line(text: &mut String, s: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(s);
}

fn parse_disagg(v: &Value) -> Result<DisaggParams, ProtocolError> {
    let Value::Object(obj) = v else {
        return err(format!("disaggregated_params: expected an object, got {v}"));
    };
    for k in obj.keys() {
        if !DISAGG_FIELDS.contains(&k.as_str()) {
            return err(format!(
                "disaggregated_params.{k}: extra inputs are not permitted"
            ));
        }
    }
    let request_type = match obj.get("request_type") {
        Some(Value::String(s)) if s == "context_only" => DisaggRequestType::ContextOnly,
        Some(Value::String(s)) if s == "generation_only" => DisaggRequestType::GenerationOnly,
        Some(v) => {
            return err(format!(
                "disaggregated_params.request_type: expected \"context_only\" or \
                 \"generation_only\", got {v}"
            ));
        }
        None => return err("disaggregated_params.request_type: field required"),
    };
    let first_gen_tokens = match field(obj, "first_gen_tokens") {
        Some(t) => token_list("disaggregated_params.first_gen_tokens", t)?,
        None => Vec::new(),
    };
    let ctx_request_id = opt_uint(obj, "ctx_request_id")?;
    let draft_tokens = match field(obj, "draft_tokens") {
        Some(t) => token_list("disaggregated_params.draft_tokens", t)?,
        None => Vec::new(),
    };
    if request_type == DisaggRequestType::GenerationOnly {
        if first_gen_tokens.is_empty() {
            return err("disaggregated_params.first_gen_tokens: required for generation_only");
        }
        if ctx_request_id.is_none() {
            return err("disaggregated_params.ctx_request_id: required for generation_only");
        }
    }
    let ctx_prompt_tokens = match field(obj, "ctx_usage") {
        None => None,
        Some(Value::Object(u)) => opt_uint(u, "prompt_tokens")?,
        Some(v) => {
            return err(format!(
                "disaggregated_params.ctx_usage: expected an object, got {v}"
            ));
        }
    };
    Ok(DisaggParams {
        request_type,
        first_gen_tokens,
        ctx_request_id,
        draft_tokens,
        disagg_request_id: field(obj, "disagg_request_id").cloned(),
        ctx_prompt_tokens,
        encoded_opaque_state: obj
            .get("encoded_opaque_state")
            .cloned()
            .unwrap_or(Value::Null),
        ctx_info_endpoint: obj.get("ctx_info_endpoint").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completions(body: &str) -> Result<ParsedRequest, ProtocolError> {
        parse_request(Endpoint::Completions, body.as_bytes())
    }

    #[test]
    fn benchmark_serving_body_parses() {
        let r = completions(
            r#"{"model":"m","prompt":[1,2,3],"temperature":0.0,"repetition_penalty":1.0,
               "max_tokens":8,"logprobs":null,"stream":true,
               "stream_options":{"include_usage":true},"ignore_eos":true}"#,
        )
        .unwrap();
        assert_eq!(r.prompt, Prompt::Tokens(vec![1, 2, 3]));
        assert_eq!(r.max_tokens, Some(8));
        assert!(r.stream && r.include_usage && r.ignore_eos);
        assert!(r.disagg.is_none());
    }

    #[test]
    fn prompt_shapes() {
        let r = completions(r#"{"model":"m","prompt":["hello world"]}"#).unwrap();
        assert_eq!(r.prompt, Prompt::Text("hello world".into()));
        let r = completions(r#"{"model":"m","prompt":[[4,5]]}"#).unwrap();
        assert_eq!(r.prompt, Prompt::Tokens(vec![4, 5]));
        assert!(completions(r#"{"model":"m","prompt":["a","b"]}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":""}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":[-1]}"#).is_err());
    }

    #[test]
    fn malformed_and_unknown_fields_are_rejected() {
        assert!(completions("{not json").is_err());
        assert!(completions("[1]").is_err());
        assert!(
            completions(r#"{"prompt":"x"}"#)
                .unwrap_err()
                .0
                .contains("model")
        );
        let e = completions(r#"{"model":"m","prompt":"x","bogus":1}"#).unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
        let e = completions(r#"{"model":"m","prompt":"x","stream_options":{}}"#).unwrap_err();
        assert!(e.0.contains("Stream options"), "{e}");
        assert!(completions(r#"{"model":"m","prompt":"x","max_tokens":0}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":"x","max_tokens":"5"}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":"x","n":2}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":"x","logprobs":2}"#).is_err());
        assert!(completions(r#"{"model":"m","prompt":"x","messages":[]}"#).is_err());
    }

    #[test]
    fn chat_bodies() {
        let r = parse_request(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi there"}]}],
                "max_completion_tokens":4,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(r.prompt, Prompt::Text("be brief\nhi there".into()));
        assert_eq!(r.max_tokens, Some(4));
        assert!(!r.include_usage && !r.add_special_tokens);
        let r = parse_request(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":3,
                "prompt_token_ids":[9,9]}"#,
        )
        .unwrap();
        assert_eq!(r.prompt, Prompt::Tokens(vec![9, 9]));
        assert_eq!(r.max_tokens, Some(3));
        let e = parse_request(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("image_url"), "{e}");
    }

    #[test]
    fn disaggregated_params() {
        let r = completions(
            r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"generation_only",
               "first_gen_tokens":[7],"ctx_request_id":1,"encoded_opaque_state":null,
               "draft_tokens":null,"ctx_usage":{"prompt_tokens":12,"total_tokens":13}}}"#,
        )
        .unwrap();
        let d = r.disagg.unwrap();
        assert_eq!(d.request_type, DisaggRequestType::GenerationOnly);
        assert_eq!(d.first_gen_tokens, vec![7]);
        assert_eq!(d.ctx_prompt_tokens, Some(12));
        assert!(d.draft_tokens.is_empty());
        let r = completions(
            r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"generation_only",
               "first_gen_tokens":[7],"ctx_request_id":1,"draft_tokens":[8,9,10]}}"#,
        )
        .unwrap();
        assert_eq!(r.disagg.unwrap().draft_tokens, vec![8, 9, 10]);
        let e = completions(
            r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"generation_only",
               "first_gen_tokens":[7],"ctx_request_id":1,"draft_tokens":"x"}}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("draft_tokens"), "{e}");
        let e = completions(
            r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"generation_only"}}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("first_gen_tokens"), "{e}");
        assert!(
            completions(
                r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"x"}}"#
            )
            .is_err()
        );
        assert!(
            completions(
                r#"{"model":"m","prompt":[1],"disaggregated_params":{"request_type":"context_only","zzz":1}}"#
            )
            .is_err()
        );
    }
}
