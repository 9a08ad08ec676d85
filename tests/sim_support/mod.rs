//! Shared helpers for the simulator's integration tests: spawning the real binary in its own
//! process group (killed on drop), waiting on rendezvous files and `/health` by polling, and
//! reading SSE streams.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::wait_until;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_perfsanity")
}

/// A spawned simulator process; its whole process group is killed on drop.
pub struct SimProcess {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl SimProcess {
    /// Spawns `perfsanity <args>` with stdout+stderr into `<dir>/<name>.log`.
    pub fn spawn(dir: &Path, name: &str, args: &[&str], envs: &[(&str, &str)]) -> SimProcess {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = crate::support::clean_cmd(bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning perfsanity");
        SimProcess {
            child,
            log,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_wait())
    }

    /// Waits up to `timeout` for the log to contain `needle`; panics (with the log) if the
    /// process exits first or the time passes.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let found = wait_until(timeout, || {
            let text = self.log_text();
            if text.contains(needle) {
                return Some(());
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}; log:\n{text}",
                    self.name
                );
            }
            None
        });
        assert!(
            found.is_some(),
            "{} did not log {needle:?} in time; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Sends a signal to the process itself.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Polls `path` until it holds `host:port`; panics (with the log) if the process exits or
    /// `timeout` passes.
    pub fn wait_addr(&mut self, path: &Path, timeout: Duration) -> String {
        let addr = wait_until(timeout, || {
            if let Ok(text) = std::fs::read_to_string(path)
                && text.ends_with('\n')
            {
                return Some(text.trim().to_string());
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "{} exited ({status}) before reporting its address; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            None
        });
        addr.unwrap_or_else(|| {
            panic!(
                "{} did not report {} in time; log:\n{}",
                self.name,
                path.display(),
                self.log_text()
            )
        })
    }

    /// Polls `/health` until 200.
    pub fn wait_healthy(&mut self, addr: &str, timeout: Duration) {
        let client = http();
        let healthy = wait_until(timeout, || {
            if let Ok(r) = client.get(format!("http://{addr}/health")).send()
                && r.status() == 200
            {
                return Some(());
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "{} exited ({status}) before becoming healthy; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            None
        });
        assert!(
            healthy.is_some(),
            "{} not healthy in time; log:\n{}",
            self.name,
            self.log_text()
        );
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a generous timeout.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Writes `sim-config.json` with the given `sim:` section and returns its path.
pub fn write_sim_config(dir: &Path, sim: &Value) -> PathBuf {
    let path = dir.join("sim-config.json");
    std::fs::write(&path, serde_json::to_string_pretty(sim).unwrap()).unwrap();
    path
}

/// Writes an engine config YAML and returns its path.
pub fn write_engine_config(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A running worker with its address.
pub struct Worker {
    pub process: SimProcess,
    pub addr: String,
}

/// Starts a worker `trtllm-serve <model> --config <engine> --host 127.0.0.1 --port 0
/// --report_addr <dir>/hostnames/<ROLE>.txt` and waits for its address (not for health).
pub fn start_worker(
    dir: &Path,
    role: &str,
    model: &str,
    engine: &Path,
    sim_config: Option<&Path>,
    envs: &[(&str, &str)],
) -> Worker {
    let report = dir.join("hostnames").join(format!("{role}.txt"));
    let mut args: Vec<String> = vec!["sim".into(), "--role".into(), role.into()];
    if let Some(c) = sim_config {
        args.push("--sim-config".into());
        args.push(c.display().to_string());
    }
    for a in [
        "trtllm-serve",
        model,
        "--backend",
        "pytorch",
        "--config",
        &engine.display().to_string(),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--report_addr",
        &report.display().to_string(),
    ] {
        args.push(a.to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = SimProcess::spawn(dir, role, &refs, envs);
    let addr = process.wait_addr(&report, Duration::from_secs(20));
    Worker { process, addr }
}

/// Writes a `server_config` YAML in upstream's format.
pub fn write_server_config(dir: &Path, ctx: &[&str], gen_urls: &[&str], key: &str) -> PathBuf {
    let mut yaml = String::from("backend: pytorch\ncontext_servers:\n");
    yaml += &format!("  num_instances: {}\n  urls:\n", ctx.len());
    for u in ctx {
        yaml += &format!("  - {u}\n");
    }
    if ctx.is_empty() {
        yaml = yaml.replace("  urls:\n", "  urls: []\n");
    }
    yaml += &format!(
        "generation_servers:\n  num_instances: {}\n  urls:\n",
        gen_urls.len()
    );
    for u in gen_urls {
        yaml += &format!("  - {u}\n");
    }
    yaml += &format!("hostname: 127.0.0.1\ninternal_request_auth_key: {key}\nport: 0\n");
    let path = dir.join("server_config.0.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Starts the router and waits for its address.
pub fn start_router(
    dir: &Path,
    server_config: &Path,
    sim_config: Option<&Path>,
    envs: &[(&str, &str)],
) -> Worker {
    let report = dir.join("hostnames").join("DISAGG_SERVER.0.addr");
    let mut args: Vec<String> = vec!["sim".into(), "--role".into(), "DISAGG_SERVER".into()];
    if let Some(c) = sim_config {
        args.push("--sim-config".into());
        args.push(c.display().to_string());
    }
    for a in [
        "trtllm-serve",
        "disaggregated",
        "-c",
        &server_config.display().to_string(),
        "-t",
        "60",
        "-r",
        "60",
        "--report_addr",
        &report.display().to_string(),
    ] {
        args.push(a.to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = SimProcess::spawn(dir, "DISAGG_SERVER", &refs, envs);
    let addr = process.wait_addr(&report, Duration::from_secs(20));
    Worker { process, addr }
}

/// One received SSE event with its arrival time.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub at: Instant,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.data))
    }
}

/// Result of reading an SSE response to its end (or to a transport error).
#[derive(Debug)]
pub struct SseRead {
    pub status: u16,
    pub content_type: String,
    pub events: Vec<SseEvent>,
    pub raw: String,
    pub error: Option<String>,
}

impl SseRead {
    pub fn done(&self) -> bool {
        self.events.last().is_some_and(|e| e.data == "[DONE]")
    }

    /// The JSON events before `[DONE]`.
    pub fn json_events(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(SseEvent::json)
            .collect()
    }

    /// Concatenated `choices[0].text` (completions) or `delta.content` (chat).
    pub fn text(&self) -> String {
        self.json_events()
            .iter()
            .filter_map(|e| {
                let c = e["choices"].get(0)?;
                c["text"]
                    .as_str()
                    .or_else(|| c["delta"]["content"].as_str())
                    .map(String::from)
            })
            .collect()
    }
}

/// POSTs `body` to `http://<addr><path>` and reads the SSE stream line by line.
pub fn post_sse(
    client: &reqwest::blocking::Client,
    addr: &str,
    path: &str,
    body: &Value,
) -> SseRead {
    post_sse_notify(client, addr, path, body, || {})
}

/// [`post_sse`], calling `on_first_event` as soon as the first `data:` event has arrived (so a
/// test can act on a stream that is known to be in flight).
pub fn post_sse_notify(
    client: &reqwest::blocking::Client,
    addr: &str,
    path: &str,
    body: &Value,
    on_first_event: impl FnOnce(),
) -> SseRead {
    let mut on_first_event = Some(on_first_event);
    let resp = client
        .post(format!("http://{addr}{path}"))
        .json(body)
        .send()
        .expect("request sent");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut reader = BufReader::new(resp);
    let mut events = Vec::new();
    let mut raw = String::new();
    let mut error = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                raw.push_str(&line);
                let trimmed = line.trim();
                if let Some(data) = trimmed.strip_prefix("data: ") {
                    events.push(SseEvent {
                        at: Instant::now(),
                        data: data.to_string(),
                    });
                    if let Some(notify) = on_first_event.take() {
                        notify();
                    }
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    SseRead {
        status,
        content_type,
        events,
        raw,
        error,
    }
}

/// A model directory holding a tiny Hugging Face `tokenizer.json` (word-level, whitespace
/// pre-tokenizer) so the real-tokenizer path is exercised without downloads.
pub fn tiny_hf_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-model");
    std::fs::create_dir_all(&model).unwrap();
    let words = [
        "[UNK]", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "then",
        "runs", "back", "home", "to", "rest", "in", "warm", "sun", "while", "birds", "sing",
        "tall", "green", "trees", "hello", "world",
    ];
    let vocab: serde_json::Map<String, Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), Value::from(i)))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(model.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    model
}
