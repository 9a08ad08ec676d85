//! The disaggregated router's `server_config.<s>.yaml`. Worker addresses are only known at run
//! time, so the plan holds a template and [`RouterConfigTemplate::render`] fills in the URLs.
//! PyYAML's default `yaml.dump` sorts keys, and so do we.

use serde::Serialize;

use crate::util::yaml::{KeyOrder, Mapping, Node, Value, to_yaml_string};

/// Everything in `server_config.<s>.yaml` except the worker URLs.
#[derive(Debug, Clone, Serialize)]
pub struct RouterConfigTemplate {
    /// `hostname`: the router's host.
    pub hostname: String,
    /// `internal_request_auth_key`.
    pub auth_key: String,
    /// `context_servers.num_instances`.
    pub num_ctx: u64,
    /// `generation_servers.num_instances`.
    pub num_gen: u64,
    /// `context_servers.router` (`ctx_router_config` or `router_config`).
    pub ctx_router: Option<Node>,
    /// `generation_servers.router` (`gen_router_config` or `router_config`).
    pub gen_router: Option<Node>,
    /// `server_config_extra`, merged last.
    pub extra: Mapping,
}

fn s(v: &str) -> Node {
    Node::synthetic(Value::Str(v.to_string()))
}

fn int(v: u64) -> Node {
    Node::synthetic(Value::Int(v as i64))
}

impl RouterConfigTemplate {
    /// The config with the given `host:port` URLs (in role-index order).
    pub fn to_node(&self, ctx_urls: &[String], gen_urls: &[String]) -> Node {
        let group = |n: u64, urls: &[String], router: &Option<Node>| {
            let mut m = Mapping::default();
            m.insert("num_instances", int(n));
            m.insert(
                "urls",
                Node::synthetic(Value::Seq(urls.iter().map(|u| s(u)).collect())),
            );
            if let Some(r) = router {
                m.insert("router", r.clone());
            }
            Node::synthetic(Value::Map(m))
        };
        let mut m = Mapping::default();
        m.insert("backend", s("pytorch"));
        m.insert(
            "context_servers",
            group(self.num_ctx, ctx_urls, &self.ctx_router),
        );
        m.insert(
            "generation_servers",
            group(self.num_gen, gen_urls, &self.gen_router),
        );
        m.insert("hostname", s(&self.hostname));
        m.insert("internal_request_auth_key", s(&self.auth_key));
        m.insert("port", int(0));
        for (k, v) in &self.extra.entries {
            m.insert(&k.name, v.clone());
        }
        Node::synthetic(Value::Map(m))
    }

    /// The YAML text with the given URLs.
    pub fn render(&self, ctx_urls: &[String], gen_urls: &[String]) -> String {
        to_yaml_string(&self.to_node(ctx_urls, gen_urls), KeyOrder::Sorted)
    }

    /// The YAML text with `<CTX_i address>` placeholders, for dry runs.
    pub fn render_placeholder(&self) -> String {
        let ctx: Vec<String> = (0..self.num_ctx)
            .map(|i| format!("<CTX_{i} host:port>"))
            .collect();
        let gens: Vec<String> = (0..self.num_gen)
            .map(|i| format!("<GEN_{i} host:port>"))
            .collect();
        self.render(&ctx, &gens)
    }
}
