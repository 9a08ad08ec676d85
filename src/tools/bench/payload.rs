//! Request bodies, serialised once before the run so the hot loop only copies bytes.
//!
//! Field sets follow the upstream clients: the standard completions body carries
//! `repetition_penalty`, the SA one `best_of`; chat sends a text content part and
//! `max_completion_tokens`.

use bytes::Bytes;
use serde_json::{Value, json};

use super::args::{Backend, Flavor};
use super::dataset::{Prompt, SampleRequest};

/// Settings shared by every body of a run.
#[derive(Debug, Clone)]
pub struct PayloadSpec {
    /// Client flavor.
    pub flavor: Flavor,
    /// Request format.
    pub backend: Backend,
    /// `model` field.
    pub model: String,
    /// Streamed responses.
    pub streaming: bool,
    /// Send `ignore_eos: true`.
    pub ignore_eos: bool,
}

/// The JSON body of `req`.
pub fn body(spec: &PayloadSpec, req: &SampleRequest) -> Bytes {
    let prompt = match &req.prompt {
        Prompt::Text(t) => Value::String(t.clone()),
        Prompt::Ids(ids) => json!(ids),
    };
    let mut m = serde_json::Map::new();
    m.insert("model".into(), json!(spec.model));
    match spec.backend {
        Backend::Completions => {
            m.insert("prompt".into(), prompt);
            m.insert("temperature".into(), json!(0.0));
            match spec.flavor {
                Flavor::Standard => m.insert("repetition_penalty".into(), json!(1.0)),
                Flavor::Sa => m.insert("best_of".into(), json!(1)),
            };
            m.insert("max_tokens".into(), json!(req.output_len));
            m.insert("logprobs".into(), Value::Null);
        }
        Backend::Chat => {
            m.insert(
                "messages".into(),
                json!([{"role": "user", "content": [{"type": "text", "text": prompt}]}]),
            );
            m.insert("temperature".into(), json!(0.0));
            m.insert("max_completion_tokens".into(), json!(req.output_len));
        }
    }
    m.insert("stream".into(), json!(spec.streaming));
    if spec.streaming {
        m.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if spec.ignore_eos {
        m.insert("ignore_eos".into(), json!(true));
    }
    Bytes::from(serde_json::to_vec(&Value::Object(m)).expect("JSON of plain values"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(prompt: Prompt) -> SampleRequest {
        SampleRequest {
            prompt,
            prompt_len: 3,
            output_len: 5,
        }
    }

    #[test]
    fn standard_completions_body() {
        let spec = PayloadSpec {
            flavor: Flavor::Standard,
            backend: Backend::Completions,
            model: "m".into(),
            streaming: true,
            ignore_eos: true,
        };
        let b = body(&spec, &req(Prompt::Ids(vec![1, 2, 3])));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["prompt"], json!([1, 2, 3]));
        assert_eq!(v["max_tokens"], 5);
        assert_eq!(v["repetition_penalty"], 1.0);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["ignore_eos"], true);
        assert!(v.get("best_of").is_none());
    }

    #[test]
    fn sa_chat_and_non_streaming_bodies() {
        let mut spec = PayloadSpec {
            flavor: Flavor::Sa,
            backend: Backend::Completions,
            model: "m".into(),
            streaming: true,
            ignore_eos: false,
        };
        let v: Value =
            serde_json::from_slice(&body(&spec, &req(Prompt::Text("x".into())))).unwrap();
        assert_eq!(v["best_of"], 1);
        assert!(v.get("ignore_eos").is_none());
        spec.backend = Backend::Chat;
        spec.streaming = false;
        let v: Value =
            serde_json::from_slice(&body(&spec, &req(Prompt::Text("x".into())))).unwrap();
        assert_eq!(v["messages"][0]["content"][0]["text"], "x");
        assert_eq!(v["max_completion_tokens"], 5);
        assert_eq!(v["stream"], false);
        assert!(v.get("stream_options").is_none());
    }
}
