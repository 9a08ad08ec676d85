//! The catalog stage: which configs exist ([`scan`]), which trial ids name them ([`trial_id`]),
//! CI test lists ([`testlist`]) and the selection of trials to run ([`selection`]), plus the
//! summary cache behind `perfsanity list` ([`list_cache`]).

pub mod list_cache;
pub mod scan;
pub mod selection;
pub mod testlist;
pub mod trial_id;
