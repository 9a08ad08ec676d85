//! Topology: how many GPUs and nodes a trial needs, with upstream's launcher math.
//!
//! GPUs per worker = tp × pp × cp (EP lives inside the TP world and never multiplies);
//! nodes per worker = ⌈GPUs / gpus_per_node⌉; every worker gets its own node slice, generation
//! workers first, then context workers; total GPUs = total nodes × gpus_per_node.

use serde::Serialize;

use crate::config::{PerfConfig, WorkerSection};

/// Sizing of one worker kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkerTopology {
    /// Number of workers of this kind.
    pub count: u64,
    /// Tensor parallel size.
    pub tp: u64,
    /// Pipeline parallel size.
    pub pp: u64,
    /// Context parallel size.
    pub cp: u64,
    /// MoE expert parallel size (informational; not a GPU multiplier).
    pub ep: u64,
    /// GPUs of one worker: tp × pp × cp.
    pub gpus_per_worker: u64,
    /// Nodes of one worker: ⌈gpus_per_worker / gpus_per_node⌉.
    pub nodes_per_worker: u64,
    /// srun tasks per node of one worker: min(gpus_per_worker, gpus_per_node).
    pub gpus_per_node_per_worker: u64,
}

impl WorkerTopology {
    /// Sizing for `count` workers configured by `w` on nodes with `gpus_per_node` GPUs.
    pub fn new(count: u64, w: &WorkerSection, gpus_per_node: u64) -> Self {
        let gpus = w.gpus_per_worker();
        let gpn = gpus_per_node.max(1);
        WorkerTopology {
            count,
            tp: w.tp,
            pp: w.pp,
            cp: w.cp,
            ep: w.ep,
            gpus_per_worker: gpus,
            nodes_per_worker: gpus.div_ceil(gpn),
            gpus_per_node_per_worker: gpus.min(gpn),
        }
    }

    /// Nodes of all workers of this kind.
    pub fn nodes(&self) -> u64 {
        self.count * self.nodes_per_worker
    }

    /// GPUs actually used by all workers of this kind.
    pub fn gpus(&self) -> u64 {
        self.count * self.gpus_per_worker
    }
}

/// Sizing of a whole trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// `hardware.gpus_per_node`.
    pub gpus_per_node: u64,
    /// Context workers.
    pub ctx: WorkerTopology,
    /// Generation workers.
    pub gen_workers: WorkerTopology,
    /// Nodes of the allocation: ctx nodes + gen nodes.
    pub total_nodes: u64,
    /// GPUs of the allocation: total nodes × gpus per node.
    pub total_gpus: u64,
    /// GPUs the workers use (what one host must show to run the trial locally).
    pub gpus_used: u64,
}

impl Topology {
    /// Topology of `config` (`num_ctx_servers` is already 0 for gen_only_no_context).
    pub fn of(config: &PerfConfig, no_context: bool) -> Self {
        let gpn = config.hardware.gpus_per_node;
        let ctx_count = if no_context {
            0
        } else {
            config.hardware.num_ctx_servers
        };
        let ctx = WorkerTopology::new(ctx_count, &config.ctx_worker, gpn);
        let gen_workers =
            WorkerTopology::new(config.hardware.num_gen_servers, &config.gen_worker, gpn);
        let total_nodes = ctx.nodes() + gen_workers.nodes();
        Topology {
            gpus_per_node: gpn,
            ctx,
            gen_workers,
            total_nodes,
            total_gpus: total_nodes * gpn,
            gpus_used: ctx.gpus() + gen_workers.gpus(),
        }
    }
}
