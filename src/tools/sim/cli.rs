//! Command lines: `perfsanity sim [--role R] [--sim-config F] trtllm-serve …`.
//!
//! Everything after `trtllm-serve` is parsed as the real CLI parses it (click options spelled with
//! underscores, same aliases, same defaults), so the plan's argv is byte-identical between the
//! `trtllm` and `sim` toolchains. Options a plan may pass but the simulator cannot honour
//! (`--metadata_server_config_file`, `--disagg_cluster_uri`, …) are rejected with a clear message;
//! unknown options are clap errors.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// `perfsanity sim …` arguments (sim-only options come before `trtllm-serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Role of this process (`CTX_0`, `GEN_1`, `DISAGG_SERVER`, `AGGR_0`): selects its
    /// `sim.faults.<ROLE>` entry and seeds its jitter.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// JSON file holding the perf YAML's `sim:` section.
    #[arg(long, value_name = "FILE")]
    pub sim_config: Option<PathBuf>,
    /// Shared directory where the `trtllm-llmapi-launch` stand-in's rank 0 publishes its exit
    /// (required with `trtllm-llmapi-launch`, refused otherwise).
    #[arg(long, value_name = "DIR")]
    pub rendezvous: Option<PathBuf>,
    /// `trtllm-serve <model> …`, `trtllm-serve disaggregated …` or
    /// `trtllm-llmapi-launch <command…>`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "trtllm-serve ARGS"
    )]
    pub command: Vec<String>,
}

/// `--backend` choices of `trtllm-serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// PyTorch backend.
    Pytorch,
    /// TensorRT engine backend (alias `trt`).
    #[value(alias = "trt")]
    Tensorrt,
    /// AutoDeploy backend.
    #[value(name = "_autodeploy")]
    Autodeploy,
}

/// `trtllm-serve <model> …` (the worker).
#[derive(Debug, Clone, Parser)]
#[command(name = "trtllm-serve", about = "Simulated trtllm-serve worker")]
pub struct ServeCli {
    /// Model name, HF checkpoint directory or engine directory.
    pub model: String,
    /// Tokenizer path or name (defaults to the model).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Custom tokenizer type.
    #[arg(long = "custom_tokenizer")]
    pub custom_tokenizer: Option<String>,
    /// Host to bind.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Port to bind (0 = kernel-assigned; needs --report_addr).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Backend.
    #[arg(long, value_enum, default_value = "pytorch")]
    pub backend: Backend,
    /// Log level (accepted; the simulator always logs at info).
    #[arg(long = "log_level", default_value = "info")]
    pub log_level: String,
    /// Max beam width (only 1 is simulated).
    #[arg(long = "max_beam_width", default_value_t = 1)]
    pub max_beam_width: u64,
    /// Max requests per iteration.
    #[arg(long = "max_batch_size", default_value_t = 2048)]
    pub max_batch_size: u64,
    /// Max tokens per iteration.
    #[arg(long = "max_num_tokens", default_value_t = 8192)]
    pub max_num_tokens: u64,
    /// Max prompt + output length.
    #[arg(long = "max_seq_len")]
    pub max_seq_len: Option<u64>,
    /// Tensor parallel size.
    #[arg(long = "tensor_parallel_size", alias = "tp_size", default_value_t = 1)]
    pub tensor_parallel_size: u64,
    /// Pipeline parallel size.
    #[arg(
        long = "pipeline_parallel_size",
        alias = "pp_size",
        default_value_t = 1
    )]
    pub pipeline_parallel_size: u64,
    /// Context parallel size.
    #[arg(long = "context_parallel_size", alias = "cp_size", default_value_t = 1)]
    pub context_parallel_size: u64,
    /// Expert parallel size.
    #[arg(long = "moe_expert_parallel_size", alias = "ep_size")]
    pub moe_expert_parallel_size: Option<u64>,
    /// Expert cluster parallel size.
    #[arg(long = "moe_cluster_parallel_size", alias = "cluster_size")]
    pub moe_cluster_parallel_size: Option<u64>,
    /// GPUs per node.
    #[arg(long = "gpus_per_node")]
    pub gpus_per_node: Option<u64>,
    /// KV-cache memory fraction.
    #[arg(
        long = "free_gpu_memory_fraction",
        alias = "kv_cache_free_gpu_memory_fraction",
        default_value_t = 0.9
    )]
    pub free_gpu_memory_fraction: f64,
    /// Post-processing workers.
    #[arg(long = "num_postprocess_workers", default_value_t = 0)]
    pub num_postprocess_workers: u64,
    /// Trust remote code.
    #[arg(long = "trust_remote_code")]
    pub trust_remote_code: bool,
    /// HF revision.
    #[arg(long)]
    pub revision: Option<String>,
    /// Engine config YAML (alias --extra_llm_api_options).
    #[arg(long = "config", alias = "extra_llm_api_options")]
    pub config: Option<PathBuf>,
    /// Reasoning parser.
    #[arg(long = "reasoning_parser")]
    pub reasoning_parser: Option<String>,
    /// Tool parser.
    #[arg(long = "tool_parser")]
    pub tool_parser: Option<String>,
    /// Metadata server config (not simulated).
    #[arg(long = "metadata_server_config_file")]
    pub metadata_server_config_file: Option<String>,
    /// Server role (context / generation), informational.
    #[arg(long = "server_role")]
    pub server_role: Option<String>,
    /// Fail fast on too-large attention windows.
    #[arg(long = "fail_fast_on_attention_window_too_large")]
    pub fail_fast_on_attention_window_too_large: bool,
    /// OpenTelemetry endpoint (not simulated).
    #[arg(long = "otlp_traces_endpoint")]
    pub otlp_traces_endpoint: Option<String>,
    /// Disaggregated cluster URI (not simulated).
    #[arg(long = "disagg_cluster_uri")]
    pub disagg_cluster_uri: Option<String>,
    /// Enable chunked prefill.
    #[arg(long = "enable_chunked_prefill")]
    pub enable_chunked_prefill: bool,
    /// Media I/O kwargs (JSON).
    #[arg(long = "media_io_kwargs")]
    pub media_io_kwargs: Option<String>,
    /// Chat template.
    #[arg(long = "chat_template")]
    pub chat_template: Option<String>,
    /// Custom module directories (not simulated).
    #[arg(long = "custom_module_dirs")]
    pub custom_module_dirs: Vec<PathBuf>,
    /// File to write the bound `host:port` to.
    #[arg(long = "report_addr")]
    pub report_addr: Option<PathBuf>,
}

/// `trtllm-serve disaggregated …` (the router).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "trtllm-serve disaggregated",
    about = "Simulated disaggregated router"
)]
pub struct DisaggCli {
    /// The router's server_config YAML.
    #[arg(short = 'c', long = "config_file", alias = "config")]
    pub config_file: Option<PathBuf>,
    /// Metadata server config (not simulated).
    #[arg(short = 'm', long = "metadata_server_config_file")]
    pub metadata_server_config_file: Option<String>,
    /// Seconds to wait for every worker to become ready.
    #[arg(short = 't', long = "server_start_timeout", default_value_t = 180)]
    pub server_start_timeout: u64,
    /// Per-request timeout towards workers, in seconds.
    #[arg(short = 'r', long = "request_timeout", default_value_t = 180)]
    pub request_timeout: u64,
    /// Log level (accepted).
    #[arg(short = 'l', long = "log_level", default_value = "info")]
    pub log_level: String,
    /// Metrics log interval (accepted; 0 = off).
    #[arg(long = "metrics-log-interval", default_value_t = 0)]
    pub metrics_log_interval: u64,
    /// Schedule style (only context_first is simulated).
    #[arg(long = "schedule_style")]
    pub schedule_style: Option<String>,
    /// File to write the bound `host:port` to.
    #[arg(long = "report_addr")]
    pub report_addr: Option<PathBuf>,
}

/// What `trtllm-serve …` asked for.
#[derive(Debug, Clone)]
pub enum Command {
    /// A worker.
    Serve(Box<ServeCli>),
    /// The router.
    Disaggregated(DisaggCli),
}

/// A command line the simulator cannot run.
#[derive(Debug)]
pub enum CliError {
    /// clap's own error (usage, unknown option, bad value); printed as clap formats it.
    Clap(clap::Error),
    /// A valid option the simulator does not support.
    Unsupported(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Clap(e) => write!(f, "{e}"),
            CliError::Unsupported(m) => f.write_str(m),
        }
    }
}

/// Parses the words after `perfsanity sim [--role …] [--sim-config …]`.
pub fn parse_command(words: &[String]) -> Result<Command, CliError> {
    let Some(program) = words.first() else {
        return Err(CliError::Unsupported(
            "expected `trtllm-serve …` after `perfsanity sim`".into(),
        ));
    };
    if program != "trtllm-serve" {
        return Err(CliError::Unsupported(format!(
            "the simulator provides `trtllm-serve` and `trtllm-llmapi-launch`, got `{program}`"
        )));
    }
    let rest = &words[1..];
    match rest.first().map(String::as_str) {
        Some("disaggregated") => {
            let argv = std::iter::once("trtllm-serve disaggregated".to_string())
                .chain(rest[1..].iter().cloned());
            let cli = DisaggCli::try_parse_from(argv).map_err(CliError::Clap)?;
            check_router(&cli)?;
            Ok(Command::Disaggregated(cli))
        }
        Some(
            other @ ("mm_embedding_serve" | "grpc" | "disaggregated_mpi_worker" | "visual_gen"),
        ) => Err(CliError::Unsupported(format!(
            "`trtllm-serve {other}` is not simulated"
        ))),
        _ => {
            let skip = usize::from(rest.first().is_some_and(|w| w == "serve"));
            let argv =
                std::iter::once("trtllm-serve".to_string()).chain(rest[skip..].iter().cloned());
            let cli = ServeCli::try_parse_from(argv).map_err(CliError::Clap)?;
            check_worker(&cli)?;
            Ok(Command::Serve(Box::new(cli)))
        }
    }
}

fn unsupported(option: &str) -> CliError {
    CliError::Unsupported(format!(
        "trtllm-serve option {option} is not supported by the simulator"
    ))
}

fn check_worker(cli: &ServeCli) -> Result<(), CliError> {
    if cli.metadata_server_config_file.is_some() {
        return Err(unsupported("--metadata_server_config_file"));
    }
    if cli.disagg_cluster_uri.is_some() {
        return Err(unsupported("--disagg_cluster_uri"));
    }
    if !cli.custom_module_dirs.is_empty() {
        return Err(unsupported("--custom_module_dirs"));
    }
    if cli.max_beam_width != 1 {
        return Err(CliError::Unsupported(format!(
            "--max_beam_width {}: the simulator decodes greedily (beam width 1)",
            cli.max_beam_width
        )));
    }
    if cli.port == 0 && cli.report_addr.is_none() {
        return Err(CliError::Unsupported(
            "--port 0 needs --report_addr (otherwise nobody can learn the port)".into(),
        ));
    }
    Ok(())
}

fn check_router(cli: &DisaggCli) -> Result<(), CliError> {
    if cli.metadata_server_config_file.is_some() {
        return Err(unsupported("-m/--metadata_server_config_file"));
    }
    if cli.config_file.is_none() {
        return Err(CliError::Unsupported(
            "trtllm-serve disaggregated needs -c/--config_file".into(),
        ));
    }
    if let Some(style) = &cli.schedule_style
        && style != "context_first"
    {
        return Err(CliError::Unsupported(format!(
            "--schedule_style {style}: the simulator supports only context_first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn worker_command_line_from_the_plan() {
        let c = parse_command(&words(
            "trtllm-serve /models/Qwen3-8B --backend pytorch --config /tod/e.yml \
             --host node1 --port 0 --report_addr /tod/hostnames-local-0/CTX_0.txt",
        ))
        .unwrap();
        let Command::Serve(s) = c else { panic!() };
        assert_eq!(s.model, "/models/Qwen3-8B");
        assert_eq!(s.port, 0);
        assert_eq!(s.config.unwrap().to_str(), Some("/tod/e.yml"));
        assert_eq!(s.host, "node1");
    }

    #[test]
    fn aliases_and_serve_subcommand() {
        let c = parse_command(&words(
            "trtllm-serve serve m --tp_size 2 --extra_llm_api_options x.yml --backend trt",
        ))
        .unwrap();
        let Command::Serve(s) = c else { panic!() };
        assert_eq!(s.tensor_parallel_size, 2);
        assert_eq!(s.backend, Backend::Tensorrt);
        assert!(s.config.is_some());
    }

    #[test]
    fn router_command_line_from_the_plan() {
        let c = parse_command(&words(
            "trtllm-serve disaggregated -c /tod/server_config.0.yaml -t 10800 -r 10800 \
             --report_addr /tod/hostnames-local-0/DISAGG_SERVER.0.addr",
        ))
        .unwrap();
        let Command::Disaggregated(d) = c else {
            panic!()
        };
        assert_eq!(d.server_start_timeout, 10800);
        assert_eq!(d.request_timeout, 10800);
    }

    #[test]
    fn bad_command_lines() {
        assert!(matches!(
            parse_command(&words("trtllm-serve m --no_such_flag")),
            Err(CliError::Clap(_))
        ));
        assert!(matches!(
            parse_command(&words("trtllm-serve m --port 0")),
            Err(CliError::Unsupported(_))
        ));
        assert!(matches!(
            parse_command(&words("trtllm-serve m --disagg_cluster_uri x")),
            Err(CliError::Unsupported(_))
        ));
        assert!(matches!(
            parse_command(&words("trtllm-bench m")),
            Err(CliError::Unsupported(_))
        ));
        assert!(matches!(
            parse_command(&words("trtllm-serve disaggregated -t 5")),
            Err(CliError::Unsupported(_))
        ));
        assert!(matches!(
            parse_command(&words("trtllm-serve m --backend vllm")),
            Err(CliError::Clap(_))
        ));
    }
}
