//! Upstream's OpenSearch "dataflow" gateway protocol (upstream-perf-sanity.md §6.4).
//!
//! * Post: `POST {base}/dataflow2/{project}/posting` with a JSON array of records,
//!   `Content-Type: application/json`, `Accept-Charset: UTF-8` and — for non-sandbox projects —
//!   proxy basic auth (`Proxy-Authorization: Basic …`, what Python's `HTTPProxyAuth` sends) from
//!   `OPEN_SEARCH_DB_CREDENTIALS_USR/_PSW`; success is HTTP 200/201/202; bounded attempts.
//! * Query: `GET {base}/opensearch/df-{project}-*/_search` with a JSON body; the answer's
//!   `hits.hits[*]._source` (+ `_id`) are the history documents.
//!
//! Every message this module produces is scrubbed of credentials (and of user info in the URL)
//! before it is returned or logged. Requests run on a scoped thread, so the blocking client is
//! safe to use from code that runs inside an async runtime.

use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{ACCEPT_CHARSET, CONTENT_TYPE, HeaderValue, PROXY_AUTHORIZATION};

use super::context::{Credentials, GatewaySettings, WRITE_ALLOW_LIST};
use super::history::{Doc, parse_search_response};
use super::value::Record;

/// `base64(user:password)` for basic auth.
pub fn basic_token(c: &Credentials) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        c.user.expose(),
        c.password.expose()
    ))
}

/// The `user:password` part of a URL, if any.
pub fn url_userinfo(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map(|(info, _)| info.to_string())
        .filter(|i| !i.is_empty())
}

/// The URL with any user info replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url_userinfo(url) {
        Some(info) => url.replacen(&format!("{info}@"), "***@", 1),
        None => url.to_string(),
    }
}

/// `text` with every secret replaced by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// The posting URL.
pub fn post_url(settings: &GatewaySettings, project: &str) -> String {
    format!("{}/dataflow2/{project}/posting", settings.base_url)
}

/// The search URL.
pub fn search_url(settings: &GatewaySettings) -> String {
    format!(
        "{}/opensearch/df-{}-*/_search",
        settings.base_url, settings.project
    )
}

/// Upstream's pre-checks that do not depend on the records: credentials for non-sandbox
/// projects, and the write allow-list.
pub fn precheck(settings: &GatewaySettings, project: &str) -> Result<(), String> {
    let sandbox = project.contains("sandbox");
    if !sandbox && settings.credentials.is_none() {
        return Err(
            "OPEN_SEARCH_DB_CREDENTIALS_USR / OPEN_SEARCH_DB_CREDENTIALS_PSW are not set \
             (only sandbox projects, USE_POC_DB=true, work without them)"
                .to_string(),
        );
    }
    if !sandbox && !WRITE_ALLOW_LIST.contains(&project) {
        return Err(format!(
            "project {project} is not in the write allow-list ({})",
            WRITE_ALLOW_LIST.join(", ")
        ));
    }
    Ok(())
}

/// The result of a post: delivered or not, after how many attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct PostOutcome {
    /// `Ok` when the gateway accepted the batch; `Err` holds the last error (redacted).
    pub result: Result<(), String>,
    /// Requests made.
    pub attempts: u32,
}

fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

fn client(settings: &GatewaySettings, timeout: Duration) -> Result<Client, String> {
    if settings.base_url.starts_with("https://") {
        return Err(format!(
            "{}: https:// gateway URLs need TLS support, which this build of perfsanity does \
             not include (upstream's gateway is plain http://)",
            redact_url(&settings.base_url)
        ));
    }
    let mut b = Client::builder().timeout(timeout).connect_timeout(timeout);
    if is_loopback(&settings.base_url) {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
}

fn describe(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {:.1}s (timeout)", timeout.as_secs_f64());
    }
    let connect = e.is_connect();
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if connect {
        format!("cannot connect ({msg})")
    } else {
        msg
    }
}

fn excerpt(body: &str) -> String {
    let t: String = body.trim().chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".to_string()
    } else {
        t
    }
}

/// Runs `f` on a scoped thread (the blocking client must not run on an async runtime thread).
fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

/// How one attempt failed.
#[derive(Debug)]
enum Attempt {
    /// Worth another attempt (transport error, non-2xx answer).
    Retry(String),
    /// Not worth another attempt (an accepted answer that cannot be read).
    Final(String),
}

/// How a retried operation ended without success.
#[derive(Debug)]
enum RetryEnd {
    /// A final error.
    Final(String),
    /// Every attempt failed; the last error.
    GaveUp(String),
}

/// Runs `op` up to `attempts` times with `pause` between attempts (backon, constant
/// back-off), retrying only [`Attempt::Retry`]. Returns the result and the attempts made.
fn with_retries<T>(
    attempts: u32,
    pause: Duration,
    mut op: impl FnMut() -> Result<T, Attempt>,
) -> (Result<T, RetryEnd>, u32) {
    use backon::{BlockingRetryable, ConstantBuilder};
    let mut made = 0;
    let backoff = ConstantBuilder::new()
        .with_delay(pause)
        .with_max_times(attempts.saturating_sub(1) as usize);
    let result = (|| {
        made += 1;
        op()
    })
    .retry(backoff)
    .sleep(std::thread::sleep)
    .when(|e| matches!(e, Attempt::Retry(_)))
    .call();
    let result = result.map_err(|e| match e {
        Attempt::Retry(last) => RetryEnd::GaveUp(last),
        Attempt::Final(e) => RetryEnd::Final(e),
    });
    (result, made)
}

/// Posts `records` as one JSON array to `project`, retrying up to `settings.attempts` times.
pub fn post_records(settings: &GatewaySettings, project: &str, records: &[Record]) -> PostOutcome {
    let secrets = settings.secrets();
    let url = post_url(settings, project);
    let shown = redact_url(&url);
    let body = match serde_json::to_string(records) {
        Ok(b) => b,
        Err(e) => {
            return PostOutcome {
                result: Err(format!("cannot serialise the records: {e}")),
                attempts: 0,
            };
        }
    };
    let outcome = off_thread(|| {
        let client = match client(settings, settings.post_timeout) {
            Ok(c) => c,
            Err(e) => {
                return PostOutcome {
                    result: Err(e),
                    attempts: 0,
                };
            }
        };
        let attempts = settings.attempts.max(1);
        let (result, made) = with_retries(attempts, settings.retry_pause, || {
            let mut req = client
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT_CHARSET, "UTF-8")
                .body(body.clone());
            if !project.contains("sandbox")
                && let Some(c) = &settings.credentials
                && let Ok(mut v) = HeaderValue::from_str(&format!("Basic {}", basic_token(c)))
            {
                v.set_sensitive(true);
                req = req.header(PROXY_AUTHORIZATION, v);
            }
            match req.send() {
                Ok(resp) if matches!(resp.status().as_u16(), 200..=202) => Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().unwrap_or_default();
                    Err(Attempt::Retry(format!("HTTP {status}: {}", excerpt(&text))))
                }
                Err(e) => Err(Attempt::Retry(describe(e, settings.post_timeout))),
            }
        });
        PostOutcome {
            result: result.map_err(|end| match end {
                RetryEnd::Final(e) => e,
                RetryEnd::GaveUp(last) => {
                    format!("POST {shown} failed after {attempts} attempt(s): {last}")
                }
            }),
            attempts: made,
        }
    });
    let outcome = PostOutcome {
        result: outcome.result.map_err(|e| redact(&e, &secrets)),
        attempts: outcome.attempts,
    };
    match &outcome.result {
        Ok(()) => tracing::info!(
            "posted {} record(s) to {project} in {} attempt(s)",
            records.len(),
            outcome.attempts
        ),
        Err(e) => tracing::warn!("{e}"),
    }
    outcome
}

/// Queries history: `GET {base}/opensearch/df-{project}-*/_search` with `body`, retrying
/// non-2xx answers and transport errors up to `settings.attempts` times.
pub fn query_history(
    settings: &GatewaySettings,
    body: &serde_json::Value,
) -> Result<Vec<Doc>, String> {
    let secrets = settings.secrets();
    let url = search_url(settings);
    let shown = redact_url(&url);
    let body = body.to_string();
    let result = off_thread(|| {
        let client = client(settings, settings.query_timeout)?;
        let attempts = settings.attempts.max(1);
        let (result, _) = with_retries(attempts, settings.retry_pause, || {
            let req = client
                .get(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT_CHARSET, "UTF-8")
                .body(body.clone());
            match req.send() {
                Ok(resp) if matches!(resp.status().as_u16(), 200..=202) => {
                    let text = resp.text().map_err(|e| {
                        Attempt::Final(format!(
                            "GET {shown}: {}",
                            describe(e, settings.query_timeout)
                        ))
                    })?;
                    parse_search_response(&text)
                        .map_err(|e| Attempt::Final(format!("GET {shown}: {e}")))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().unwrap_or_default();
                    Err(Attempt::Retry(format!("HTTP {status}: {}", excerpt(&text))))
                }
                Err(e) => Err(Attempt::Retry(describe(e, settings.query_timeout))),
            }
        });
        result.map_err(|e| match e {
            RetryEnd::Final(e) => e,
            RetryEnd::GaveUp(last) => {
                format!("GET {shown} failed after {attempts} attempt(s): {last}")
            }
        })
    });
    result.map_err(|e| {
        let e = redact(&e, &secrets);
        tracing::warn!("history query: {e}");
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_count_attempts_and_stop_on_a_final_error() {
        let pause = Duration::ZERO;
        let mut n = 0;
        let (r, made) = with_retries(3, pause, || {
            n += 1;
            if n < 2 {
                Err(Attempt::Retry("busy".into()))
            } else {
                Ok(n)
            }
        });
        assert_eq!((r.ok(), made), (Some(2), 2));
        let (r, made) = with_retries(3, pause, || Err::<(), _>(Attempt::Retry("down".into())));
        assert!(matches!(r, Err(RetryEnd::GaveUp(ref e)) if e == "down"));
        assert_eq!(made, 3);
        let (r, made) = with_retries(3, pause, || Err::<(), _>(Attempt::Final("bad".into())));
        assert!(matches!(r, Err(RetryEnd::Final(_))));
        assert_eq!(made, 1);
    }
    use crate::results::context::Secret;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("http://bob:hunter2@gw.example/x"),
            "http://***@gw.example/x"
        );
        assert_eq!(redact_url("http://gw.example/a@b"), "http://gw.example/a@b");
        assert_eq!(
            url_userinfo("http://bob:hunter2@gw:80/"),
            Some("bob:hunter2".to_string())
        );
        let c = Credentials {
            user: Secret::new("bob"),
            password: Secret::new("hunter2"),
        };
        assert_eq!(basic_token(&c), "Ym9iOmh1bnRlcjI=");
        assert_eq!(
            redact(
                "hunter2 and Ym9iOmh1bnRlcjI=",
                &["hunter2".into(), basic_token(&c)]
            ),
            "*** and ***"
        );
        assert!(is_loopback("http://127.0.0.1:9/"));
        assert!(is_loopback("http://localhost:9/"));
        assert!(is_loopback("http://[::1]:9/"));
        assert!(!is_loopback("http://gpuwa.nvidia.com"));
    }

    #[test]
    fn https_is_refused_clearly() {
        let s = GatewaySettings::new("https://u:p@gw.example", "sandbox-x");
        let out = post_records(&s, "sandbox-x", &[]);
        let e = out.result.unwrap_err();
        assert!(e.contains("TLS support") && !e.contains("u:p"), "{e}");
        assert_eq!(out.attempts, 0);
        assert!(
            query_history(&s, &serde_json::json!({}))
                .unwrap_err()
                .contains("TLS")
        );
    }

    #[test]
    fn prechecks() {
        let mut s = GatewaySettings::new("http://gw", crate::results::context::PROD_PROJECT);
        assert!(precheck(&s, &s.project.clone()).is_err());
        s.credentials = Some(Credentials {
            user: Secret::new("u"),
            password: Secret::new("p"),
        });
        assert!(precheck(&s, &s.project.clone()).is_ok());
        assert!(precheck(&s, "some-other-project").is_err());
        assert!(precheck(&s, crate::results::context::POC_PROJECT).is_ok());
    }
}
