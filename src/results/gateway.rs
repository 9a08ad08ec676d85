//! Upstream's OpenSearch "dataflow" gateway protocol (upstream-perf-sanity.md §6.4).
//!
//! * Post: `POST {base}/dataflow2/{project}/posting` with a JSON array of records,
//!   `Content-Type: application/json`, `Accept-Charset: UTF-8` and — for non-sandbox projects —
//!   proxy basic auth (`Proxy-Authorization: Basic …`, what Python's `HTTPProxyAuth` sends) from
//!   `OPEN_SEARCH_DB_CREDENTIALS_USR/_PSW`; success is HTTP 200/201/202; bounded attempts.
//! * Query: `GET {base}/opensearch/df-{project}-*/_search` with a JSON body; the answer's
//!   `hits.hits[*]._source` (+ `_id`) are the history documents.
//!
//! This module owns the gateway's settings: [`GatewaySettings`] (with [`Credentials`] held as
//! [`Secret`]s), the project constants, and [`gateway_from_env`], which parses them from
//! `OPEN_SEARCH_DB_*`, `USE_POC_DB` and the `PERF_DB_*` timeout and attempt knobs.
//!
//! Every message this module produces is scrubbed of credentials (and of user info in the URL)
//! before it is returned or logged. Requests run on a scoped thread, so the blocking client is
//! safe to use from code that runs inside an async runtime.

use std::fmt;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{ACCEPT_CHARSET, CONTENT_TYPE, HeaderValue, PROXY_AUTHORIZATION};

use crate::util::env::EnvSource;

use super::history::{Doc, SearchResponseError, parse_search_response};
use super::value::Record;

/// Upstream's production perf-sanity project (index).
pub const PROD_PROJECT: &str = "swdl-trtllm-infra-ci-prod-perf_sanity_info";
/// Upstream's sandbox project, selected by `USE_POC_DB=true` (needs no credentials).
pub const POC_PROJECT: &str = "sandbox-temp-trtllm-ci-perf-v1-test_info";
/// Projects upstream's client may write to (sandbox projects are always allowed).
pub const WRITE_ALLOW_LIST: &[&str] = &[PROD_PROJECT];

/// Upstream's post timeout.
pub const DEFAULT_POST_TIMEOUT: Duration = Duration::from_secs(20);
/// Upstream's query timeout.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream's attempts per request.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Pause between attempts (upstream retries immediately; a short pause is kinder to a gateway
/// that is restarting).
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for building the authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Gateway credentials (`OPEN_SEARCH_DB_CREDENTIALS_USR` / `_PSW`).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name (treated as secret too: it is half of the credential).
    pub user: Secret,
    /// Password.
    pub password: Secret,
}

/// Where and how to talk to the gateway. `Debug` redacts the URL's user info and credentials.
#[derive(Clone)]
pub struct GatewaySettings {
    /// `OPEN_SEARCH_DB_BASE_URL` without a trailing slash.
    pub base_url: String,
    /// The project (index) records go to and history comes from.
    pub project: String,
    /// Basic-auth credentials, when both variables are set.
    pub credentials: Option<Credentials>,
    /// Per-request timeout of a post (`PERF_DB_POST_TIMEOUT`, default 20 s).
    pub post_timeout: Duration,
    /// Per-request timeout of a history query (`PERF_DB_QUERY_TIMEOUT`, default 10 s).
    pub query_timeout: Duration,
    /// Attempts per request (`PERF_DB_ATTEMPTS`, 1–5, default 5).
    pub attempts: u32,
    /// Pause between attempts.
    pub retry_pause: Duration,
}

impl fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("base_url", &redact_url(&self.base_url))
            .field("project", &self.project)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("post_timeout", &self.post_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl GatewaySettings {
    /// Settings for `base_url` with upstream's defaults and no credentials.
    pub fn new(base_url: &str, project: &str) -> Self {
        GatewaySettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            project: project.to_string(),
            credentials: None,
            post_timeout: DEFAULT_POST_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            retry_pause: DEFAULT_RETRY_PAUSE,
        }
    }

    /// Sandbox projects need no credentials and bypass the allow-list (upstream rule).
    pub fn is_sandbox(&self) -> bool {
        self.project.contains("sandbox")
    }

    /// Every secret string that must never appear in output.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.credentials {
            out.push(c.password.expose().to_string());
            out.push(c.user.expose().to_string());
            out.push(basic_token(c));
        }
        if let Some(userinfo) = url_userinfo(&self.base_url) {
            out.push(userinfo);
        }
        out.retain(|s| s.len() >= 3);
        out
    }
}

/// Why the gateway settings in the environment are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewaySettingsError {
    /// `OPEN_SEARCH_DB_BASE_URL` is not an http(s) URL (shown with its user info redacted).
    #[error("OPEN_SEARCH_DB_BASE_URL={shown:?}: expected an http:// URL")]
    BaseUrl {
        /// The value, user info replaced by `***`.
        shown: String,
    },
    /// A timeout knob is not a number of seconds in range.
    #[error(
        "{name}={value:?}: expected a number of seconds in (0, {}]",
        crate::util::deadline::MAX_KNOB_SECONDS
    )]
    Seconds {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `PERF_DB_ATTEMPTS` is not an integer from 1 to [`DEFAULT_ATTEMPTS`].
    #[error("PERF_DB_ATTEMPTS={0:?}: expected an integer from 1 to {DEFAULT_ATTEMPTS}")]
    Attempts(String),
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn seconds(
    env: &dyn EnvSource,
    name: &'static str,
    default: Duration,
) -> Result<Duration, GatewaySettingsError> {
    match non_empty(env.var(name)) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(crate::util::deadline::knob_seconds)
            .ok_or(GatewaySettingsError::Seconds { name, value: v }),
    }
}

/// The project upstream would use: the sandbox when `USE_POC_DB` is `true` (any case).
pub fn project_from_env(env: &dyn EnvSource) -> String {
    let poc = env
        .var("USE_POC_DB")
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if poc { POC_PROJECT } else { PROD_PROJECT }.to_string()
}

/// Gateway settings from `OPEN_SEARCH_DB_BASE_URL` (`None` when unset or empty).
pub fn gateway_from_env(
    env: &dyn EnvSource,
) -> Result<Option<GatewaySettings>, GatewaySettingsError> {
    let Some(base) = non_empty(env.var("OPEN_SEARCH_DB_BASE_URL")) else {
        return Ok(None);
    };
    let base = base.trim();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(GatewaySettingsError::BaseUrl {
            shown: redact_url(base),
        });
    }
    let mut settings = GatewaySettings::new(base, &project_from_env(env));
    let user = non_empty(env.var("OPEN_SEARCH_DB_CREDENTIALS_USR"));
    let password = non_empty(env.var("OPEN_SEARCH_DB_CREDENTIALS_PSW"));
    if let (Some(user), Some(password)) = (user, password) {
        settings.credentials = Some(Credentials {
            user: Secret::new(user),
            password: Secret::new(password),
        });
    }
    settings.post_timeout = seconds(env, "PERF_DB_POST_TIMEOUT", DEFAULT_POST_TIMEOUT)?;
    settings.query_timeout = seconds(env, "PERF_DB_QUERY_TIMEOUT", DEFAULT_QUERY_TIMEOUT)?;
    if let Some(v) = non_empty(env.var("PERF_DB_ATTEMPTS")) {
        settings.attempts = match v.trim().parse::<u32>() {
            Ok(n) if (1..=DEFAULT_ATTEMPTS).contains(&n) => n,
            _ => return Err(GatewaySettingsError::Attempts(v)),
        };
    }
    Ok(Some(settings))
}

/// Why records may not be posted to a project (upstream's pre-checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecheckError {
    /// A non-sandbox project needs credentials.
    #[error(
        "OPEN_SEARCH_DB_CREDENTIALS_USR / OPEN_SEARCH_DB_CREDENTIALS_PSW are not set \
         (only sandbox projects, USE_POC_DB=true, work without them)"
    )]
    NoCredentials,
    /// The project is neither a sandbox nor on the write allow-list.
    #[error("project {project} is not in the write allow-list ({})", WRITE_ALLOW_LIST.join(", "))]
    NotAllowed {
        /// The project.
        project: String,
    },
}

/// Why a post or a history query failed. Every text in it is scrubbed of credentials and of
/// user info in the URL ([`GatewayError::redacted`]) before it leaves this module.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The URL is `https://`, and this build has no TLS.
    #[error(
        "{url}: https:// gateway URLs need TLS support, which this build of perfsanity does \
         not include (upstream's gateway is plain http://)"
    )]
    NoTls {
        /// The base URL (redacted).
        url: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The records could not be serialised.
    #[error("cannot serialise the records: {0}")]
    Serialise(#[source] serde_json::Error),
    /// Every attempt failed (transport error or non-2xx answer); the last failure.
    #[error("{method} {url} failed after {attempts} attempt(s): {last}")]
    GaveUp {
        /// `POST` or `GET`.
        method: &'static str,
        /// The request URL (redacted).
        url: String,
        /// Attempts allowed.
        attempts: u32,
        /// How the last attempt failed.
        last: String,
    },
    /// An accepted answer could not be read.
    #[error("{method} {url}: {message}")]
    Unreadable {
        /// `POST` or `GET`.
        method: &'static str,
        /// The request URL (redacted).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An accepted search answer is not a usable search response.
    #[error("GET {url}: {source}")]
    BadAnswer {
        /// The request URL (redacted).
        url: String,
        /// What is wrong with it.
        source: SearchResponseError,
    },
}

impl GatewayError {
    /// The error with every secret in its texts replaced by `***`.
    fn redacted(self, secrets: &[String]) -> Self {
        let r = |s: String| redact(&s, secrets);
        match self {
            GatewayError::NoTls { url } => GatewayError::NoTls { url: r(url) },
            GatewayError::GaveUp {
                method,
                url,
                attempts,
                last,
            } => GatewayError::GaveUp {
                method,
                url: r(url),
                attempts,
                last: r(last),
            },
            GatewayError::Unreadable {
                method,
                url,
                message,
            } => GatewayError::Unreadable {
                method,
                url: r(url),
                message: r(message),
            },
            GatewayError::BadAnswer { url, source } => GatewayError::BadAnswer {
                url: r(url),
                source,
            },
            other @ (GatewayError::Client(_) | GatewayError::Serialise(_)) => other,
        }
    }
}

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
pub fn precheck(settings: &GatewaySettings, project: &str) -> Result<(), PrecheckError> {
    let sandbox = project.contains("sandbox");
    if !sandbox && settings.credentials.is_none() {
        return Err(PrecheckError::NoCredentials);
    }
    if !sandbox && !WRITE_ALLOW_LIST.contains(&project) {
        return Err(PrecheckError::NotAllowed {
            project: project.to_string(),
        });
    }
    Ok(())
}

/// The result of a post: delivered or not, after how many attempts.
#[derive(Debug)]
pub struct PostOutcome {
    /// `Ok` when the gateway accepted the batch; `Err` holds the last error (redacted).
    pub result: Result<(), GatewayError>,
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

fn client(settings: &GatewaySettings, timeout: Duration) -> Result<Client, GatewayError> {
    if settings.base_url.starts_with("https://") {
        return Err(GatewayError::NoTls {
            url: redact_url(&settings.base_url),
        });
    }
    let mut b = Client::builder().timeout(timeout).connect_timeout(timeout);
    if is_loopback(&settings.base_url) {
        b = b.no_proxy();
    }
    b.build().map_err(|e| GatewayError::Client(e.without_url()))
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
    Final(GatewayError),
}

/// How a retried operation ended without success.
#[derive(Debug)]
enum RetryEnd {
    /// A final error.
    Final(GatewayError),
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
                result: Err(GatewayError::Serialise(e)),
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
                RetryEnd::GaveUp(last) => GatewayError::GaveUp {
                    method: "POST",
                    url: shown.clone(),
                    attempts,
                    last,
                },
            }),
            attempts: made,
        }
    });
    let outcome = PostOutcome {
        result: outcome.result.map_err(|e| e.redacted(&secrets)),
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
) -> Result<Vec<Doc>, GatewayError> {
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
                        Attempt::Final(GatewayError::Unreadable {
                            method: "GET",
                            url: shown.clone(),
                            message: describe(e, settings.query_timeout),
                        })
                    })?;
                    parse_search_response(&text).map_err(|source| {
                        Attempt::Final(GatewayError::BadAnswer {
                            url: shown.clone(),
                            source,
                        })
                    })
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
            RetryEnd::GaveUp(last) => GatewayError::GaveUp {
                method: "GET",
                url: shown.clone(),
                attempts,
                last,
            },
        })
    });
    result.map_err(|e| {
        let e = e.redacted(&secrets);
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
        let (r, made) = with_retries(3, pause, || {
            Err::<(), _>(Attempt::Final(GatewayError::NoTls { url: "bad".into() }))
        });
        assert!(matches!(r, Err(RetryEnd::Final(_))));
        assert_eq!(made, 1);
    }

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
        let e = out.result.unwrap_err().to_string();
        assert!(e.contains("TLS support") && !e.contains("u:p"), "{e}");
        assert_eq!(out.attempts, 0);
        assert!(
            query_history(&s, &serde_json::json!({}))
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
    }

    #[test]
    fn prechecks() {
        let mut s = GatewaySettings::new("http://gw", PROD_PROJECT);
        assert!(precheck(&s, &s.project.clone()).is_err());
        s.credentials = Some(Credentials {
            user: Secret::new("u"),
            password: Secret::new("p"),
        });
        assert!(precheck(&s, &s.project.clone()).is_ok());
        assert!(precheck(&s, "some-other-project").is_err());
        assert!(precheck(&s, POC_PROJECT).is_ok());
    }
}
