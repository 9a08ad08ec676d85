//! The tools a plan runs in place of upstream's programs: [`sim`], a drop-in `trtllm-serve`
//! (worker and disaggregated router), and [`bench`], a drop-in `benchmark_serving` client.
//! They depend only on [`crate::util`] and on the config schema they share with the planner.

pub mod bench;
pub mod sim;
