//! The run stage: the only stage that touches processes. [`execute`] takes one trial from plan
//! to outcome on this host through [`launch`]; [`slurm`] does the same across a cluster;
//! [`outcome`] is what every path reports.

pub mod execute;
pub mod execute_aggr;
pub mod launch;
pub mod log_explain;
pub mod outcome;
pub mod progress;
pub mod slurm;
