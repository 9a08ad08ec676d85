//! The job layout of a trial: how many nodes and tasks the allocation has and which node slice
//! each worker step gets, with upstream's launcher math (spec `upstream-perf-sanity.md` §1.4.1):
//! every worker owns `nodes_per_worker = ⌈tp·pp·cp / gpus_per_node⌉` whole nodes; generation
//! workers take the first nodes in index order, then context workers; the allocation is the sum.
//! Pure: computed once from the plan's topology, so `#SBATCH --nodes` and the steps' `-N` cannot
//! disagree.

use crate::plan::{Plan, Role};

/// One worker step: `srun -N nodes -w <nodes first..first+nodes> --ntasks … --ntasks-per-node …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStep {
    /// `GEN_i` or `CTX_i`.
    pub role: Role,
    /// Index of its first node in the expanded job node list.
    pub first_node: u64,
    /// Nodes it owns.
    pub nodes: u64,
    /// Tasks (MPI ranks, one per GPU): the worker's GPU count tp × pp × cp. Upstream's launcher
    /// writes nodes × tasks-per-node, which is the same number unless the GPU count is above
    /// and not a multiple of gpus_per_node — then it would start more ranks than the worker's
    /// world size, so we start exactly the world size.
    pub ntasks: u64,
    /// Tasks per node: min(GPUs of the worker, gpus_per_node).
    pub ntasks_per_node: u64,
    /// GPUs the worker uses (tp × pp × cp).
    pub gpus: u64,
}

/// The allocation and its worker steps, in launch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLayout {
    /// `#SBATCH --nodes`.
    pub total_nodes: u64,
    /// `#SBATCH --ntasks`: total nodes × gpus per node.
    pub total_tasks: u64,
    /// `#SBATCH --ntasks-per-node` and `--gpus-per-node`.
    pub gpus_per_node: u64,
    /// `GEN_0 … GEN_{m-1}`, then `CTX_0 … CTX_{n-1}` (none for gen_only_no_context).
    pub workers: Vec<WorkerStep>,
}

impl JobLayout {
    /// The layout of `plan` (its workers are already in launch order: gen, then ctx).
    pub fn of(plan: &Plan) -> Self {
        let topo = &plan.topology;
        let mut next = 0;
        let workers = plan
            .workers
            .iter()
            .map(|w| {
                let kind = match w.role {
                    Role::Gen(_) => &topo.gen_workers,
                    _ => &topo.ctx,
                };
                let step = WorkerStep {
                    role: w.role,
                    first_node: next,
                    nodes: kind.nodes_per_worker,
                    ntasks: kind.gpus_per_worker,
                    ntasks_per_node: kind.gpus_per_node_per_worker,
                    gpus: kind.gpus_per_worker,
                };
                next += step.nodes;
                step
            })
            .collect();
        JobLayout {
            total_nodes: topo.total_nodes,
            total_tasks: topo.total_gpus,
            gpus_per_node: topo.gpus_per_node,
            workers,
        }
    }

    /// Node names of every worker step, given the job's expanded node list.
    pub fn slices<'a>(&self, nodes: &'a [String]) -> Vec<(Role, &'a [String])> {
        self.workers
            .iter()
            .map(|w| {
                let first = (w.first_node as usize).min(nodes.len());
                let end = (first + w.nodes as usize).min(nodes.len());
                (w.role, &nodes[first..end])
            })
            .collect()
    }
}
