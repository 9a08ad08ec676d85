//! Standalone scripted server, for running third-party clients (e.g. the Python SA client)
//! against the same script the tests use:
//!
//! `cargo run --release --example scripted_server -- --port 8123 --ttft-ms 50 --gap-ms 10`
//!
//! Prints the bound address, serves until stdin closes or Ctrl-C, then prints the truth
//! summary (also at `GET /perfsanity/truth`).

use std::io::Read;
use std::time::Duration;

use clap::Parser;
use perfsanity::tools::bench::scripted_server::{FailMode, Script, ScriptedServer};

#[derive(Parser)]
struct Opts {
    /// Port (0 = any free port).
    #[arg(long, default_value_t = 8123)]
    port: u16,
    /// Arrival → first chunk (ms).
    #[arg(long, default_value_t = 50.0)]
    ttft_ms: f64,
    /// Gaps between chunks (ms), comma list, cycled.
    #[arg(long, default_value = "10")]
    gap_ms: String,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 1)]
    tokens_per_chunk: u32,
    /// Output tokens per request (default: the request's max_tokens).
    #[arg(long)]
    output_tokens: Option<u32>,
    /// Fail every n-th request with HTTP 500.
    #[arg(long)]
    fail_every: Option<u64>,
    /// Server runtime worker threads (0 = single-threaded).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Opts::parse();
    let gaps = o
        .gap_ms
        .split(',')
        .map(|g| {
            g.trim()
                .parse::<f64>()
                .map(|ms| Duration::from_secs_f64(ms / 1e3))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let script = Script {
        ttft: Duration::from_secs_f64(o.ttft_ms / 1e3),
        gaps,
        tokens_per_chunk: o.tokens_per_chunk,
        output_tokens: o.output_tokens,
        fail_every: o.fail_every,
        fail_mode: FailMode::Status(500),
        record_truth: false,
        ..Script::default()
    };
    let server = ScriptedServer::start(script, o.port, o.threads)?;
    println!("listening on http://{}", server.addr);
    // Serve until stdin reaches EOF (or the process is killed).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("{}", serde_json::to_string(&server.state.summary())?);
    Ok(())
}
