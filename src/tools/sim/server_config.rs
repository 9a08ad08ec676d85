//! The router's `server_config.<s>.yaml` in upstream's disaggregated format.
//!
//! Keys read: `hostname`, `port`, `context_servers` / `generation_servers` (`num_instances`,
//! `urls`, `router.type`), `internal_request_auth_key`, `schedule_style`. Features the simulator
//! does not have (`disagg_cluster`, `conditional_disagg_config`, generation-first scheduling,
//! several router processes) are rejected by name instead of being silently ignored.

use std::path::Path;

use serde_json::Value;

use super::yaml_json::{KeyError, Keys, load_file};

/// One pool of workers (context or generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPool {
    /// `host:port` of every worker, in config order.
    pub urls: Vec<String>,
    /// `router.type` (upstream default `round_robin`).
    pub router_type: String,
}

/// The parts of `server_config` the simulated router uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisaggServerConfig {
    /// Host to bind.
    pub hostname: String,
    /// Port to bind (0 = kernel-assigned).
    pub port: u16,
    /// Context workers.
    pub context: ServerPool,
    /// Generation workers.
    pub generation: ServerPool,
    /// Shared secret for signing protected disaggregated fields.
    pub internal_request_auth_key: Option<String>,
}

/// Why `server_config` was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    /// Could not read or parse the file.
    #[error(transparent)]
    File(#[from] super::yaml_json::YamlFileError),
    /// A key is missing, mistyped or unsupported.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// Key and what was expected.
        source: KeyError,
    },
}

impl DisaggServerConfig {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, ServerConfigError> {
        let value = load_file(path)?;
        Self::from_value(&value).map_err(|source| ServerConfigError::Key {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads the keys from an already-parsed YAML tree.
    pub fn from_value(v: &Value) -> Result<Self, KeyError> {
        if !v.is_object() {
            return Err(KeyError::not_a_mapping(v));
        }
        let k = Keys::new(v, "");
        for unsupported in [
            "disagg_cluster",
            "conditional_disagg_config",
            "disagg_coordinator_url",
        ] {
            if v.get(unsupported).is_some_and(|x| !x.is_null()) {
                return Err(KeyError::invalid(
                    unsupported,
                    "not supported by the simulator",
                ));
            }
        }
        if let Some(workers) = k.uint("num_workers")?
            && workers > 1
        {
            return Err(KeyError::invalid(
                "num_workers",
                format!("the simulator runs one router process, got {workers}"),
            ));
        }
        if let Some(style) = k.string("schedule_style")?
            && style != "context_first"
        {
            return Err(KeyError::invalid(
                "schedule_style",
                format!("the simulator supports only context_first, got {style:?}"),
            ));
        }
        let port = k.uint("port")?.unwrap_or(8000);
        let port = u16::try_from(port)
            .map_err(|_| KeyError::invalid("port", format!("expected 0..=65535, got {port}")))?;
        Ok(Self {
            hostname: k.string("hostname")?.unwrap_or_else(|| "localhost".into()),
            port,
            context: pool(&k, "context_servers")?,
            generation: pool(&k, "generation_servers")?,
            internal_request_auth_key: k.string("internal_request_auth_key")?,
        })
    }
}

fn pool(top: &Keys<'_>, key: &str) -> Result<ServerPool, KeyError> {
    let Some(section) = top.mapping(key)? else {
        return Ok(ServerPool {
            urls: Vec::new(),
            router_type: "round_robin".into(),
        });
    };
    let k = Keys::new(section, format!("{key}."));
    let urls = k.strings("urls")?.unwrap_or_default();
    let num_instances = k.uint("num_instances")?.unwrap_or(1);
    if urls.len() as u64 != num_instances {
        return Err(KeyError::invalid(
            key,
            format!(
                "number of urls ({}) should be equal to num_instances ({num_instances})",
                urls.len()
            ),
        ));
    }
    for url in &urls {
        let ok = url
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(KeyError::invalid(
                format!("{key}.urls"),
                format!("expected host:port, got {url:?}"),
            ));
        }
    }
    let router_type = match k.mapping("router")? {
        Some(router) => Keys::new(router, format!("{key}.router."))
            .string("type")?
            .unwrap_or_else(|| "round_robin".into()),
        None => "round_robin".into(),
    };
    Ok(ServerPool { urls, router_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::sim::yaml_json::load_str;

    #[test]
    fn reads_upstream_shape() {
        let v = load_str(
            "backend: pytorch\ncontext_servers:\n  num_instances: 1\n  urls:\n  - h1:8001\n\
             generation_servers:\n  num_instances: 2\n  urls:\n  - h2:8002\n  - h3:8003\n\
             hostname: myhost\ninternal_request_auth_key: k\nport: 0\n",
        )
        .unwrap();
        let c = DisaggServerConfig::from_value(&v).unwrap();
        assert_eq!(c.hostname, "myhost");
        assert_eq!(c.port, 0);
        assert_eq!(c.context.urls, vec!["h1:8001"]);
        assert_eq!(c.generation.urls.len(), 2);
        assert_eq!(c.generation.router_type, "round_robin");
        assert_eq!(c.internal_request_auth_key.as_deref(), Some("k"));
    }

    #[test]
    fn mismatched_instances_and_unsupported_keys_fail() {
        let v = load_str("generation_servers:\n  num_instances: 2\n  urls: [a:1]\n").unwrap();
        let err = |v: &Value| DisaggServerConfig::from_value(v).unwrap_err().to_string();
        assert_eq!(
            err(&v),
            "generation_servers: number of urls (1) should be equal to num_instances (2)"
        );
        let v = load_str("disagg_cluster: {cluster_uri: x}\n").unwrap();
        assert_eq!(err(&v), "disagg_cluster: not supported by the simulator");
        let v = load_str("generation_servers:\n  num_instances: 1\n  urls: [nohost]\n").unwrap();
        assert_eq!(
            err(&v),
            "generation_servers.urls: expected host:port, got \"nohost\""
        );
        let v = load_str("schedule_style: generation_first\n").unwrap();
        assert_eq!(
            err(&v),
            "schedule_style: the simulator supports only context_first, got \"generation_first\""
        );
        let v = load_str("port: 70000\nnum_workers: 1\n").unwrap();
        assert_eq!(err(&v), "port: expected 0..=65535, got 70000");
        let v = load_str("num_workers: 2\n").unwrap();
        assert_eq!(
            err(&v),
            "num_workers: the simulator runs one router process, got 2"
        );
    }
}
