//! Waiting for a server to become ready: `GET /health` until it answers 200, remembering the last
//! answer for the `never_ready` message. The disaggregated router and the aggregated servers
//! are probed the same way.

use std::cell::Cell;
use std::time::Duration;

use crate::results::outcome::TrialFailure;

/// Timeout of one `/health` request.
pub const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A `/health` probe of one server.
pub struct HealthProbe {
    http: reqwest::blocking::Client,
    url: String,
    last: Cell<Option<u16>>,
}

impl HealthProbe {
    /// A probe of `http://{host}:{port}/health` (no proxy: the servers are on the cluster).
    pub fn new(host: &str, port: u16) -> Result<Self, TrialFailure> {
        let http = reqwest::blocking::Client::builder()
            .timeout(HEALTH_REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| TrialFailure::config(format!("cannot create an HTTP client: {e}")))?;
        Ok(HealthProbe {
            http,
            url: format!("http://{host}:{port}/health"),
            last: Cell::new(None),
        })
    }

    /// One request: `Some(())` once it answers 200 (a probe for `Graph::wait_for`).
    pub fn ready(&self) -> Option<()> {
        let status = self
            .http
            .get(&self.url)
            .send()
            .ok()
            .map(|r| r.status().as_u16());
        self.last.set(status.or(self.last.get()));
        (status == Some(200)).then_some(())
    }

    /// The URL probed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last status it answered, or `none`.
    pub fn last_answer(&self) -> String {
        self.last
            .get()
            .map_or("none".to_string(), |s| s.to_string())
    }

    /// The HTTP client (for probing other servers with the same settings).
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.http
    }
}
