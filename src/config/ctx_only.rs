//! The ctx_only trial's single aggregated server, derived from a disaggregated config's context
//! worker as upstream derives it (upstream-perf-sanity.md §2.2, §3.3): name `ctx_only-<stem>`,
//! the ctx engine block without `cache_transceiver_config`, the ctx worker env, and one client per
//! concurrency value with `osl = 1` on the random dataset.

use super::aggregated::{AggrClient, AggrServer, without};
use super::env_string::merge;
use super::model::PerfConfig;

/// Engine keys a ctx_only server drops from the ctx worker block.
const CTX_ONLY_DROPPED: &[&str] = &["cache_transceiver_config"];

/// The server of `aggr[_upload]-ctx_only-<stem>`.
pub fn ctx_only_server(config: &PerfConfig, stem: &str) -> AggrServer {
    let mut engine = config.ctx_worker.clone();
    engine.options = without(&engine.options, CTX_ONLY_DROPPED);
    let gpus = engine.gpus_per_worker();
    let env = &config.environment;
    let b = &config.benchmark;
    let client_env = merge(&env.client_env, &b.env_var);
    let clients = b
        .concurrency_list
        .iter()
        .map(|&concurrency| {
            let (iterations, isl, osl) = (b.multi_round, b.input_length.value, 1);
            AggrClient {
                name: format!("con{concurrency}_iter{iterations}_isl{isl}_osl{osl}"),
                concurrency,
                iterations,
                isl,
                osl,
                random_range_ratio: Some(b.benchmark_ratio),
                backend: "openai".to_string(),
                use_chat_template: false,
                streaming: b.streaming,
                trust_remote_code: true,
                dataset_file: None,
                use_nv_sa_benchmark: b.use_nv_sa_benchmark,
                client_env_var: env.client_env_var.clone(),
                env: client_env.clone(),
                line: 0,
            }
        })
        .collect();
    AggrServer {
        name: format!("ctx_only-{stem}"),
        model_name: config.metadata.model_name.clone(),
        gpus,
        gpus_per_node: if config.hardware.gpus_per_node == 0 {
            gpus
        } else {
            config.hardware.gpus_per_node
        },
        server_env_var: [env.worker_env_var.as_str(), env.ctx_worker_env_var.as_str()]
            .iter()
            .filter(|t| !t.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        env: env.ctx_env.clone(),
        engine,
        clients,
        extra_llm_api_config_path: None,
    }
}
