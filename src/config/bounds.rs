//! Upper bounds on a config's numbers. Every integer a config gives is later multiplied or added
//! (GPUs = count × tp × pp × cp, prompts = concurrency × multi_round, deadlines = now + timeout),
//! so each is capped here, where the error can name the key and its line; past this check the
//! arithmetic cannot overflow. The caps and why they are what they are: docs/LIMITS.md.

use crate::util::yaml::{Node, Value};

use super::error::Problems;
use super::parse_concurrency_list;

/// `hardware.gpus_per_node` (the largest single systems today expose 72 GPUs as one domain).
pub const MAX_GPUS_PER_NODE: u64 = 1024;
/// `hardware.num_ctx_servers` / `hardware.num_gen_servers`.
pub const MAX_SERVERS: u64 = 4096;
/// Each parallel size, and the GPUs of one worker (tp × pp × cp).
pub const MAX_GPUS_PER_WORKER: u64 = 65_536;
/// GPUs of all workers of a trial.
pub const MAX_TOTAL_GPUS: u64 = 1 << 20;
/// Each `benchmark.concurrency_list` value.
pub const MAX_CONCURRENCY: u64 = 1 << 20;
/// `benchmark.multi_round`.
pub const MAX_MULTI_ROUND: u64 = 1 << 20;
/// Prompts of one client run: concurrency × multi_round (each prompt is held in memory).
pub const MAX_PROMPTS: u64 = 10_000_000;
/// `input_length` / `output_length`, tokens (a prompt is generated in memory at this length).
pub const MAX_SEQUENCE_LENGTH: u64 = 1 << 21;
/// `slurm.timeout`, seconds (30 days; the default is 10,800).
pub const MAX_SLURM_TIMEOUT_S: u64 = 30 * 86_400;

const PARALLEL_KEYS: [&str; 4] = [
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "context_parallel_size",
    "moe_expert_parallel_size",
];

/// Records a problem for every number of `root` (a parsed config document) that is out of its
/// range. Type errors are reported by the readers; values of the wrong type are skipped here.
pub fn check_bounds(root: &Node, p: &mut Problems) {
    let gpn = capped(root, "hardware.gpus_per_node", MAX_GPUS_PER_NODE, p);
    let _ = gpn;
    let mut total_gpus: u64 = 0;
    let mut total_ok = true;
    for role in ["ctx", "gen"] {
        let count_key = format!("hardware.num_{role}_servers");
        let count = capped(root, &count_key, MAX_SERVERS, p).unwrap_or(1);
        let worker = format!("worker_config.{role}");
        let mut per_worker: Option<u64> = Some(1);
        for key in PARALLEL_KEYS {
            let v = capped(root, &format!("{worker}.{key}"), MAX_GPUS_PER_WORKER, p).unwrap_or(1);
            // ep lives inside the tp world and never multiplies the GPU count.
            if key != "moe_expert_parallel_size" {
                per_worker = per_worker.and_then(|g| g.checked_mul(v.max(1)));
            }
        }
        match per_worker {
            Some(g) if g <= MAX_GPUS_PER_WORKER => {
                match count.checked_mul(g).and_then(|n| total_gpus.checked_add(n)) {
                    Some(t) => total_gpus = t,
                    None => total_ok = false,
                }
            }
            _ => {
                let (line, _) = locate(root, &worker);
                p.push(
                    &worker,
                    line,
                    format!(
                        "tensor × pipeline × context parallel size exceeds \
                         {MAX_GPUS_PER_WORKER} GPUs per worker"
                    ),
                );
                total_ok = false;
            }
        }
    }
    if total_ok && total_gpus > MAX_TOTAL_GPUS {
        let (line, _) = locate(root, "hardware");
        p.push(
            "hardware",
            line,
            format!(
                "the workers need {total_gpus} GPUs in all; the limit is {MAX_TOTAL_GPUS} \
                 (num_*_servers × tensor × pipeline × context parallel size)"
            ),
        );
    }
    check_prompts(root, p);
    for section in ["benchmark", "sequence"] {
        for key in ["input_length", "output_length"] {
            positive_capped(root, &format!("{section}.{key}"), MAX_SEQUENCE_LENGTH, p);
        }
    }
    capped(root, "slurm.timeout", MAX_SLURM_TIMEOUT_S, p);
}

/// `concurrency × multi_round` for every concurrency value.
fn check_prompts(root: &Node, p: &mut Problems) {
    let rounds = capped(root, "benchmark.multi_round", MAX_MULTI_ROUND, p).unwrap_or(1);
    let (line, node) = locate(root, "benchmark.concurrency_list");
    let Some(values) = node.and_then(|n| parse_concurrency_list(n).ok()) else {
        return;
    };
    for c in values {
        if c > MAX_CONCURRENCY {
            p.push(
                "benchmark.concurrency_list",
                line,
                format!("concurrency {c} is above the limit of {MAX_CONCURRENCY}"),
            );
        } else if c.saturating_mul(rounds.max(1)) > MAX_PROMPTS {
            p.push(
                "benchmark.concurrency_list",
                line,
                format!(
                    "concurrency {c} × multi_round {rounds} = {} prompts; the limit is \
                     {MAX_PROMPTS} prompts per client run",
                    c.saturating_mul(rounds)
                ),
            );
        }
    }
}

/// The node at a dotted path and the line of its key (0 when absent).
fn locate<'a>(root: &'a Node, dotted: &str) -> (usize, Option<&'a Node>) {
    let mut cur = root;
    let mut line = 0;
    for part in dotted.split('.') {
        let Some(m) = cur.as_map() else {
            return (line, None);
        };
        let (Some(k), Some(v)) = (m.key(part), m.get(part)) else {
            return (line, None);
        };
        line = k.line;
        cur = v;
    }
    (line, Some(cur))
}

/// The integer at `dotted` when it is one; a problem when it is above `max`.
fn capped(root: &Node, dotted: &str, max: u64, p: &mut Problems) -> Option<u64> {
    let (line, node) = locate(root, dotted);
    let Value::Int(i) = node?.value else {
        return None;
    };
    let v = u64::try_from(i).ok()?;
    if v > max {
        p.push(
            dotted,
            line,
            format!("{v} is above the limit of {max} (docs/LIMITS.md)"),
        );
        return None;
    }
    Some(v)
}

/// Like [`capped`], and 0 is a problem too (a length of zero tokens cannot be benchmarked).
fn positive_capped(root: &Node, dotted: &str, max: u64, p: &mut Problems) {
    if capped(root, dotted, max, p) == Some(0) {
        let (line, _) = locate(root, dotted);
        p.push(
            dotted,
            line,
            "expected a positive number of tokens, found 0",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::yaml::load_str;

    fn problems(text: &str) -> String {
        let root = load_str(text).unwrap();
        let mut p = Problems::default();
        check_bounds(&root, &mut p);
        match p.into_result(std::path::Path::new("c.yaml")) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn products_that_would_wrap_are_refused() {
        let e = problems(
            "hardware:\n  num_gen_servers: 1\nworker_config:\n  gen:\n    \
             tensor_parallel_size: 65536\n    pipeline_parallel_size: 65536\n",
        );
        assert!(e.contains("c.yaml:4: `worker_config.gen`"), "{e}");
        let e = problems(
            "worker_config:\n  gen:\n    tensor_parallel_size: 4294967296\n    \
             pipeline_parallel_size: 4294967296\n",
        );
        assert!(
            e.contains("`worker_config.gen.tensor_parallel_size`: 4294967296 is above"),
            "{e}"
        );
        let e = problems(
            "hardware:\n  num_gen_servers: 4096\n  num_ctx_servers: 4096\nworker_config:\n  \
             gen:\n    tensor_parallel_size: 256\n",
        );
        assert!(e.contains("GPUs in all"), "{e}");
        let e = problems("hardware:\n  num_gen_servers: 9223372036854775807\n");
        assert!(e.contains("c.yaml:2: `hardware.num_gen_servers`"), "{e}");
    }

    #[test]
    fn prompts_lengths_and_timeouts() {
        let e = problems("benchmark:\n  concurrency_list: '1 4294967296'\n  multi_round: 8\n");
        assert!(e.contains("concurrency 4294967296 is above"), "{e}");
        let e = problems("benchmark:\n  concurrency_list: [65536]\n  multi_round: 1000\n");
        assert!(e.contains("65536 × multi_round 1000"), "{e}");
        let e = problems("benchmark:\n  input_length: 0\nsequence:\n  output_length: 3000000\n");
        assert!(
            e.contains("c.yaml:2: `benchmark.input_length`: expected a positive"),
            "{e}"
        );
        assert!(
            e.contains("`sequence.output_length`: 3000000 is above"),
            "{e}"
        );
        let e = problems("slurm:\n  timeout: 18446744073709551\n");
        assert!(e.contains("`slurm.timeout`"), "{e}");
        assert_eq!(
            problems(
                "hardware: {gpus_per_node: 4, num_ctx_servers: 2, num_gen_servers: 1}\n\
                 benchmark: {concurrency_list: '1 2 1024', multi_round: 10, input_length: 8192}\n\
                 worker_config: {gen: {tensor_parallel_size: 32, moe_expert_parallel_size: 32}}\n\
                 slurm: {timeout: 10800}\n"
            ),
            ""
        );
    }
}
