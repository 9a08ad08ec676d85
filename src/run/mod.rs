//! The run stage: the only stage that touches processes. [`execute`] takes one trial from plan
//! to outcome on this host through [`launch`]; [`slurm`] does the same across a cluster; every
//! path reports a `crate::results::outcome::TrialOutcome`.

pub mod execute;
pub mod launch;
pub mod progress;
pub mod slurm;
