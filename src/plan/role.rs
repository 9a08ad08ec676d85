//! Process roles, spelled as upstream's `DISAGG_SERVING_TYPE` values.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A role in a disaggregated trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Context (prefill) worker `CTX_i`.
    Ctx(u32),
    /// Generation (decode) worker `GEN_i`.
    Gen(u32),
    /// The disaggregated router `DISAGG_SERVER`.
    DisaggServer,
    /// The benchmark client driver `BENCHMARK`.
    Benchmark,
    /// Aggregated server `AGGR_<s>` (`s` = index among the trial's selected servers).
    Aggr(u32),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Ctx(i) => write!(f, "CTX_{i}"),
            Role::Gen(i) => write!(f, "GEN_{i}"),
            Role::DisaggServer => f.write_str("DISAGG_SERVER"),
            Role::Benchmark => f.write_str("BENCHMARK"),
            Role::Aggr(s) => write!(f, "AGGR_{s}"),
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let index = |rest: &str| {
            rest.parse::<u32>()
                .map_err(|_| format!("{s:?}: expected a worker index after the underscore"))
        };
        match s {
            "DISAGG_SERVER" => Ok(Role::DisaggServer),
            "BENCHMARK" => Ok(Role::Benchmark),
            _ => {
                if let Some(rest) = s.strip_prefix("CTX_") {
                    Ok(Role::Ctx(index(rest)?))
                } else if let Some(rest) = s.strip_prefix("GEN_") {
                    Ok(Role::Gen(index(rest)?))
                } else if let Some(rest) = s.strip_prefix("AGGR_") {
                    Ok(Role::Aggr(index(rest)?))
                } else {
                    Err(format!(
                        "unknown role {s:?}; expected CTX_<i>, GEN_<i>, DISAGG_SERVER or BENCHMARK"
                    ))
                }
            }
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Role {
    /// True for context and generation workers.
    pub fn is_worker(self) -> bool {
        matches!(self, Role::Ctx(_) | Role::Gen(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for r in [
            Role::Ctx(0),
            Role::Gen(12),
            Role::DisaggServer,
            Role::Benchmark,
            Role::Aggr(3),
        ] {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
        }
        assert!("CTX_x".parse::<Role>().is_err());
        assert!("ROUTER".parse::<Role>().is_err());
    }
}
