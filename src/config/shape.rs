//! The shape of a config: what sizing (node math, the catalog's list) needs from it, and
//! nothing else. Lives in the config stage so the catalog and the planner share it without the
//! catalog importing the planner.

use serde::Serialize;

use crate::config::{PerfConfig, WorkerSection};

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
