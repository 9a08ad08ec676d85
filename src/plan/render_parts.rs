//! The pieces of the dry-run layout that both dry-runs print — the disaggregated one
//! ([`render_text`](super::render_text)) and the aggregated one
//! ([`render_aggr_text`](super::render_aggr_text)): a labelled header line, the shared header
//! fields, warnings, a process block, a client block and the generated files. Each rule of the
//! layout lives here once; the two renderers only decide what to print and in which order.

use std::fmt::Write;
use std::path::Path;

use super::{ClientSpec, GeneratedFile, ProcessSpec, Scale, Timeouts};
use crate::config::env_string::EnvList;
use crate::plan::toolchain::Toolchain;

/// Shell-quotes one argv element (for display and generated scripts).
pub(super) fn shell_quote(arg: &str) -> String {
    shlex::try_quote(arg)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", arg.replace('\'', "'\\''")))
}

/// One argv as a copy-pasteable shell command line.
pub(super) fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Env additions as `K=V` pairs (values shell-quoted), or `(none)`.
fn env_line(env: &EnvList) -> String {
    if env.is_empty() {
        return "(none)".to_string();
    }
    env.iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One header line: the label left-aligned in 12 columns, then the value.
pub(super) fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<12} {value}");
}

/// The first header lines: the trial, the id it is listed as (when that differs) and its config.
pub(super) fn identity(out: &mut String, trial: &str, test_list_id: &str, config_path: &Path) {
    field(out, "Trial", trial);
    if test_list_id != trial {
        field(out, "Listed as", test_list_id);
    }
    field(out, "Config", config_path.display());
}

/// The `Toolchain` header line, with the load scale.
pub(super) fn toolchain(out: &mut String, toolchain: Toolchain, scale: &Scale) {
    field(
        out,
        "Toolchain",
        format!("{} (scale: {})", toolchain.as_str(), scale.describe()),
    );
}

/// The `Upload` and `Output dir` header lines.
pub(super) fn upload_and_output(out: &mut String, upload: bool, output_dir: &Path) {
    field(
        out,
        "Upload",
        if upload {
            "yes, when OPEN_SEARCH_DB_BASE_URL is set"
        } else {
            "no"
        },
    );
    field(out, "Output dir", output_dir.display());
}

/// The `Timeouts` header line: `wait` is the wait for addresses as the runtime words it (its
/// seconds included), `ready` names what must become ready (`router`, `server`).
pub(super) fn timeouts(out: &mut String, wait: &str, ready: &str, t: &Timeouts) {
    let trial = t
        .trial_s
        .map(|s| format!("{s} s ({})", t.trial_source))
        .unwrap_or_else(|| "unbounded".to_string());
    field(
        out,
        "Timeouts",
        format!(
            "{wait}; {ready} ready {} s ({}); trial {trial}",
            t.ready_s, t.ready_source
        ),
    );
}

/// The `Warnings` section, when there are any.
pub(super) fn warnings(out: &mut String, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWarnings");
    for warning in warnings {
        let _ = writeln!(out, "  - {warning}");
    }
}

/// The lines under a process or client head: its command line (with `target` appended, e.g. the
/// host and port a client is pointed at), its env additions and its log.
fn command(out: &mut String, argv: &[String], target: &str, env: &EnvList, log: &Path) {
    let _ = writeln!(out, "    $ {}{target}", command_line(argv));
    let _ = writeln!(out, "    env additions: {}", env_line(env));
    let _ = writeln!(out, "    log: {}", log.display());
}

/// A process block: its role with its GPU slots, then its command, env additions and log.
pub(super) fn process(out: &mut String, p: &ProcessSpec) {
    let gpus = if p.gpus == 0 {
        String::new()
    } else if p.gpus == 1 {
        format!("  [GPU slot {}]", p.first_gpu)
    } else {
        format!("  [GPU slots {}-{}]", p.first_gpu, p.first_gpu + p.gpus - 1)
    };
    let _ = writeln!(out, "  {}{gpus}", p.role);
    command(out, &p.argv, "", &p.env, &p.log_file);
}

/// The head line of a client block; `tag` follows the client's index (e.g. ` (cmd_idx 2)`).
pub(super) fn client_head(out: &mut String, c: &ClientSpec, tag: &str) {
    let _ = writeln!(
        out,
        "  BENCHMARK client {}{tag}: {} (concurrency {}, {} prompts, warmup request: {})",
        c.index,
        c.name,
        c.concurrency,
        c.num_prompts,
        if c.warmup { "yes" } else { "no" }
    );
}

/// The rest of a client block: its command pointed at `target` (` --host … --port …`), its env
/// additions and its log.
pub(super) fn client_command(out: &mut String, c: &ClientSpec, target: &str) {
    command(out, &c.argv, target, &c.env, &c.log_file);
}

/// The `Generated files` section: each file's path and purpose, then its content.
pub(super) fn files(out: &mut String, files: &[GeneratedFile]) {
    let _ = writeln!(out, "\nGenerated files");
    for f in files {
        let _ = writeln!(out, "--- {} ({})", f.path.display(), f.purpose);
        out.push_str(&f.content);
    }
}
