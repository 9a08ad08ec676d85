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

/// What sizing needs from a config: counts and parallelism, nothing else (small enough to
/// cache, see `list_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Shape {
    /// `hardware.gpus_per_node`.
    pub gpus_per_node: u64,
    /// `hardware.num_ctx_servers`.
    pub num_ctx: u64,
    /// `hardware.num_gen_servers`.
    pub num_gen: u64,
    /// Context workers' (tp, pp, cp, ep).
    pub ctx: [u64; 4],
    /// Generation workers' (tp, pp, cp, ep).
    pub gen_workers: [u64; 4],
}

impl Shape {
    /// The shape of `config`.
    pub fn of(config: &PerfConfig) -> Self {
        let par = |w: &WorkerSection| [w.tp, w.pp, w.cp, w.ep];
        Shape {
            gpus_per_node: config.hardware.gpus_per_node,
            num_ctx: config.hardware.num_ctx_servers,
            num_gen: config.hardware.num_gen_servers,
            ctx: par(&config.ctx_worker),
            gen_workers: par(&config.gen_worker),
        }
    }
}

impl WorkerTopology {
    /// Sizing for `count` workers with parallelism `[tp, pp, cp, ep]` on nodes with
    /// `gpus_per_node` GPUs.
    pub fn new(count: u64, [tp, pp, cp, ep]: [u64; 4], gpus_per_node: u64) -> Self {
        // Saturating: config bounds keep real shapes far from overflow, but a shape may also
        // come from the list cache on disk.
        let gpus = tp.saturating_mul(pp).saturating_mul(cp);
        let gpn = gpus_per_node.max(1);
        WorkerTopology {
            count,
            tp,
            pp,
            cp,
            ep,
            gpus_per_worker: gpus,
            nodes_per_worker: gpus.div_ceil(gpn),
            gpus_per_node_per_worker: gpus.min(gpn),
        }
    }

    /// Nodes of all workers of this kind.
    pub fn nodes(&self) -> u64 {
        self.count.saturating_mul(self.nodes_per_worker)
    }

    /// GPUs actually used by all workers of this kind.
    pub fn gpus(&self) -> u64 {
        self.count.saturating_mul(self.gpus_per_worker)
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
    /// Topology of `config`; `no_context` (gen_only_no_context) drops the context workers.
    pub fn of(config: &PerfConfig, no_context: bool) -> Self {
        Self::from_shape(&Shape::of(config), no_context)
    }

    /// Topology of a [`Shape`].
    pub fn from_shape(shape: &Shape, no_context: bool) -> Self {
        let gpn = shape.gpus_per_node;
        let ctx_count = if no_context { 0 } else { shape.num_ctx };
        let ctx = WorkerTopology::new(ctx_count, shape.ctx, gpn);
        let gen_workers = WorkerTopology::new(shape.num_gen, shape.gen_workers, gpn);
        let total_nodes = ctx.nodes().saturating_add(gen_workers.nodes());
        Topology {
            gpus_per_node: gpn,
            ctx,
            gen_workers,
            total_nodes,
            total_gpus: total_nodes.saturating_mul(gpn),
            gpus_used: ctx.gpus().saturating_add(gen_workers.gpus()),
        }
    }
}
