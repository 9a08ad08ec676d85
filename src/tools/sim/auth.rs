//! Authentication of protected disaggregated fields (`internal_request_auth_key`).
//!
//! As in TensorRT-LLM's `disagg_auth.py`: a request whose `disaggregated_params` carries
//! `encoded_opaque_state` or `ctx_info_endpoint` must come with header `x-trtllm-disagg-auth:
//! sha256=<hex HMAC-SHA256>` over the compact, key-sorted JSON
//! `{"ctx_info_endpoint":…,"encoded_opaque_state":…}`, keyed with the shared secret that the
//! router's `server_config` and the workers' engine configs both carry. A mismatched key between
//! the files the plan generates therefore fails here exactly as it would upstream.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Header carrying the signature.
pub const AUTH_HEADER: &str = "x-trtllm-disagg-auth";

/// True when the params carry a protected field.
pub fn requires_auth(encoded_opaque_state: &Value, ctx_info_endpoint: &Value) -> bool {
    !encoded_opaque_state.is_null() || !ctx_info_endpoint.is_null()
}

fn canonical_endpoint(endpoint: &Value) -> Value {
    match endpoint {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// The header value for the given protected fields.
pub fn sign(key: &str, encoded_opaque_state: &Value, ctx_info_endpoint: &Value) -> String {
    let payload = format!(
        "{{\"ctx_info_endpoint\":{},\"encoded_opaque_state\":{}}}",
        canonical_endpoint(ctx_info_endpoint),
        encoded_opaque_state
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = hex::encode(digest);
    format!("sha256={hex}")
}

/// Why a worker refused a request's protected fields; the texts match upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Protected fields arrived, but this worker has no key to check them with.
    #[error(
        "Protected disaggregated request fields require authenticated disaggregated request \
         forwarding"
    )]
    NoKey,
    /// The signature header is missing or does not match.
    #[error("Invalid internal disaggregated request authentication")]
    BadSignature,
}

/// Checks a worker-side request.
pub fn verify(
    key: Option<&str>,
    encoded_opaque_state: &Value,
    ctx_info_endpoint: &Value,
    header: Option<&str>,
) -> Result<(), AuthError> {
    if !requires_auth(encoded_opaque_state, ctx_info_endpoint) {
        return Ok(());
    }
    let Some(key) = key else {
        return Err(AuthError::NoKey);
    };
    let expected = sign(key, encoded_opaque_state, ctx_info_endpoint);
    match header {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(AuthError::BadSignature),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_and_verify() {
        let state = json!("b3BhcXVl");
        let sig = sign("secret", &state, &Value::Null);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(Some("secret"), &state, &Value::Null, Some(&sig)).is_ok());
        assert_eq!(
            verify(Some("other"), &state, &Value::Null, Some(&sig)),
            Err(AuthError::BadSignature)
        );
        assert!(verify(Some("secret"), &state, &Value::Null, None).is_err());
        assert_eq!(
            verify(None, &state, &Value::Null, Some(&sig))
                .unwrap_err()
                .to_string(),
            "Protected disaggregated request fields require authenticated disaggregated request \
             forwarding"
        );
        assert!(verify(None, &Value::Null, &Value::Null, None).is_ok());
        assert_eq!(
            sign("k", &state, &json!(["a", "b"])),
            sign("k", &state, &json!("a"))
        );
    }

    /// Python: hmac.new(b"k", b'{"ctx_info_endpoint":null,"encoded_opaque_state":"x"}',
    /// hashlib.sha256).hexdigest()
    #[test]
    fn matches_python_hmac() {
        let sig = sign("k", &json!("x"), &Value::Null);
        assert_eq!(
            sig,
            "sha256=286c491d83e8349f87e837602fc0d4603e32f06452741f9b8a52033d9a65df71"
        );
    }
}
