//! Measurements read from what the processes wrote: the gen workers' iteration logs.

pub mod gen_log;
