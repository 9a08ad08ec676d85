//! perfsanity: a `cargo test` harness for TensorRT-LLM serving perf tests.
//!
//! The tree follows the pipeline: `app` (the edge: argv, environment, output, exit codes) →
//! `run` (processes: local, role mode, SLURM) → `results` / `report` → `measure` → `plan` →
//! `catalog` / `config` → `util`; `tools` (the simulator and the native client) sit beside the
//! stages. Every stage but `run` and `app` is pure: data in, data out. `docs/DESIGN.md` is the map.

pub mod app;
pub mod catalog;
pub mod config;
pub mod measure;
pub mod plan;
pub mod report;
pub mod results;
pub mod run;
pub mod tools;
pub mod util;
