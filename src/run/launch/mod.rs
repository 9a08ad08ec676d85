//! Launch stage: executing plans. Processes are owned ([`process`]) and torn down on signals
//! ([`signals`]); GPUs are handed out by [`gpus`]. A trial is made of [`steps`]: [`local`] runs
//! all of them on one host, [`role`] runs one role of a multi-host trial.

pub mod aggr;
pub mod dataset;
pub mod folder_lock;
pub mod gpus;
pub mod groups;
pub mod health;
pub mod local;
pub mod ports;
pub mod process;
pub mod role;
pub mod signals;
pub mod startup;
pub mod steps;
pub mod tree;
pub mod watch;

pub use aggr::{AggrClientRun, AggrRunReport, run_aggr_plan};
pub use local::run_plan;
pub use role::run_role;
pub use steps::{ClientRun, RunContext, RunReport, Timeline, read_address};
