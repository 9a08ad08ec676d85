//! Launch stage: executing plans. Processes are owned ([`process`]), torn down on signals
//! ([`signals`]), given GPUs ([`gpus`]); [`local`] runs a whole trial on one host.

pub mod dataset;
pub mod gpus;
pub mod local;
pub mod logs;
pub mod process;
pub mod signals;

pub use local::{ClientRun, RunContext, RunReport, Timeline, read_address, run_plan};
