//! Trial ids: our names (`disagg_upload-<stem>`, `disagg-<stem>`) and upstream's test-id grammar
//! (`disagg_upload-e2e-<stem>`, `disagg-gen_only-<stem>`, `aggr_upload-gen_only_no_context-<stem>`,
//! full pytest node ids), resolved against the set of known config stems.
//!
//! Stems may contain `-`, so an id is never split naively: a mode label is only taken as a label
//! when what follows it is a known stem.

use crate::config::BenchmarkMode;

/// The trial name for a stem.
pub fn trial_name(upload: bool, stem: &str) -> String {
    format!("{}-{stem}", prefix(upload))
}

/// The trial name for a stem run in a mode other than its YAML's (from a testlist label).
pub fn labelled_trial_name(upload: bool, mode: BenchmarkMode, stem: &str) -> String {
    format!("{}-{}-{stem}", prefix(upload), mode.as_str())
}

fn prefix(upload: bool) -> &'static str {
    if upload { "disagg_upload" } else { "disagg" }
}

/// A test id resolved to a config stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedId {
    /// `_upload` prefix: the record is uploaded when a database is configured.
    pub upload: bool,
    /// The config stem.
    pub stem: String,
    /// The mode label of an upstream id, which overrides `benchmark.mode`.
    pub mode_label: Option<BenchmarkMode>,
}

/// Why an id could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The prefix is not one we run.
    #[error("{0}")]
    Unsupported(String),
    /// Grammatically fine, but no config has that stem.
    #[error("no config named {stem:?} in the config folders{hint}")]
    NoSuchConfig {
        /// The stem looked for.
        stem: String,
        /// A " (did you mean …?)" hint or empty.
        hint: String,
    },
    /// Not an id at all.
    #[error("{0}")]
    Malformed(String),
}

const MODIFIERS: &[&str] = &["time_breakdown"];

/// Resolves `id` (the part inside `test_e2e[...]`, or a bare id) against the known stems.
pub fn resolve(id: &str, known_stems: &[&str]) -> Result<ResolvedId, IdError> {
    let id = id.trim();
    let Some((label0, rest)) = id.split_once('-') else {
        return Err(IdError::Malformed(format!(
            "{id:?} is not a perf-sanity test id; expected disagg_upload-<config stem> or \
             disagg-<config stem>"
        )));
    };
    let known = |s: &str| known_stems.contains(&s);
    match label0 {
        "disagg" | "disagg_upload" => {
            let upload = label0 == "disagg_upload";
            if let Some((label, after)) = rest.split_once('-')
                && let Some(mode) = BenchmarkMode::parse(label)
            {
                if let Some((modifier, _)) = after.split_once('-')
                    && MODIFIERS.contains(&modifier)
                    && !known(after)
                {
                    return Err(IdError::Unsupported(format!(
                        "test-id modifier {modifier:?} in {id:?} is not supported by \
                                 perfsanity"
                    )));
                }
                if known(after) {
                    if mode == BenchmarkMode::GenOnlyNoContext {
                        return Err(IdError::Unsupported(format!(
                            "{id:?}: gen_only_no_context is spelled \
                                 {label0_aggr}-gen_only_no_context-{after} upstream",
                            label0_aggr = if upload { "aggr_upload" } else { "aggr" }
                        )));
                    }
                    return Ok(ResolvedId {
                        upload,
                        stem: after.to_string(),
                        mode_label: Some(mode),
                    });
                }
                if !known(rest) {
                    return Err(no_such(after, known_stems));
                }
            }
            if known(rest) {
                Ok(ResolvedId {
                    upload,
                    stem: rest.to_string(),
                    mode_label: None,
                })
            } else {
                Err(no_such(rest, known_stems))
            }
        }
        "aggr" | "aggr_upload" => {
            let upload = label0 == "aggr_upload";
            if let Some(stem) = rest.strip_prefix("gen_only_no_context-") {
                if known(stem) {
                    return Ok(ResolvedId {
                        upload,
                        stem: stem.to_string(),
                        mode_label: Some(BenchmarkMode::GenOnlyNoContext),
                    });
                }
                return Err(no_such(stem, known_stems));
            }
            if rest.starts_with("ctx_only-") {
                return Err(IdError::Unsupported(format!(
                    "{id:?}: ctx_only runs an aggregated server from a disaggregated config; \
                     perfsanity runs disaggregated process graphs only"
                )));
            }
            Err(IdError::Unsupported(format!(
                "{id:?} is an aggregated (aggr) test; perfsanity runs the disaggregated configs of \
                 test_configs/disagg/perf and test_configs/wideep/perf only"
            )))
        }
        other if other.contains("disagg") || other.contains("aggr") => Err(IdError::Malformed(
            format!("{id:?}: unknown prefix {other:?}; expected disagg_upload or disagg"),
        )),
        _ => Err(IdError::Malformed(format!(
            "{id:?} is not a perf-sanity test id; expected disagg_upload-<config stem> or \
             disagg-<config stem>"
        ))),
    }
}

fn no_such(stem: &str, known_stems: &[&str]) -> IdError {
    let hint = crate::config::reader::closest(stem, known_stems)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    IdError::NoSuchConfig {
        stem: stem.to_string(),
        hint,
    }
}

/// Extracts the id from a pytest node id `…test_perf_sanity.py::test_e2e[<id>]`, or returns a
/// bare id unchanged. `Err` explains what was expected.
pub fn id_from_node_id(text: &str) -> Result<&str, String> {
    if let Some(open) = text.find("::") {
        let (module, rest) = text.split_at(open);
        let rest = &rest[2..];
        if !(module == "test_perf_sanity.py" || module.ends_with("/test_perf_sanity.py")) {
            return Err(format!(
                "{text:?} is not a perf-sanity test; expected \
                 perf/test_perf_sanity.py::test_e2e[<id>] or a bare id"
            ));
        }
        let inner = rest
            .strip_prefix("test_e2e[")
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| {
                format!("{text:?}: expected test_e2e[<id>] after `::` (a closing `]` is required)")
            })?;
        if inner.is_empty() {
            return Err(format!("{text:?}: the id inside test_e2e[] is empty"));
        }
        return Ok(inner);
    }
    if text.contains('/') || text.contains(char::is_whitespace) || text.contains(['[', ']']) {
        return Err(format!(
            "{text:?} is neither a bare test id nor a perf/test_perf_sanity.py::test_e2e[<id>] \
             node id"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEMS: &[&str] = &[
        "deepseek-r1-fp4_1k1k_ctx1_gen1_dep32_bs32_eplb0_mtp0_ccb-UCX",
        "e2e-weird",
        "sim-small",
    ];

    #[test]
    fn plain_and_labelled() {
        let r = resolve(
            "disagg_upload-deepseek-r1-fp4_1k1k_ctx1_gen1_dep32_bs32_eplb0_mtp0_ccb-UCX",
            STEMS,
        )
        .unwrap();
        assert!(r.upload && r.mode_label.is_none());
        let r = resolve("disagg-gen_only-sim-small", STEMS).unwrap();
        assert_eq!(
            (r.upload, r.stem.as_str(), r.mode_label),
            (false, "sim-small", Some(BenchmarkMode::GenOnly))
        );
        // A stem that itself starts with a mode word still resolves.
        let r = resolve("disagg-e2e-weird", STEMS).unwrap();
        assert_eq!((r.stem.as_str(), r.mode_label), ("e2e-weird", None));
        let r = resolve("aggr_upload-gen_only_no_context-sim-small", STEMS).unwrap();
        assert_eq!(r.mode_label, Some(BenchmarkMode::GenOnlyNoContext));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            resolve("disagg-sim-smal", STEMS),
            Err(IdError::NoSuchConfig { ref hint, .. }) if hint.contains("sim-small")
        ));
        assert!(matches!(
            resolve("aggr_upload-llama-foo", STEMS),
            Err(IdError::Unsupported(_))
        ));
        assert!(matches!(
            resolve("aggr-ctx_only-sim-small", STEMS),
            Err(IdError::Unsupported(_))
        ));
        assert!(matches!(
            resolve("disagg-e2e-time_breakdown-sim-small", STEMS),
            Err(IdError::Unsupported(_))
        ));
        assert!(matches!(
            resolve("nodash", STEMS),
            Err(IdError::Malformed(_))
        ));
        assert!(matches!(
            resolve("disaggx-sim-small", STEMS),
            Err(IdError::Malformed(_))
        ));
    }

    #[test]
    fn node_ids() {
        assert_eq!(
            id_from_node_id("perf/test_perf_sanity.py::test_e2e[disagg-a-b]"),
            Ok("disagg-a-b")
        );
        assert_eq!(
            id_from_node_id("test_perf_sanity.py::test_e2e[disagg-a]"),
            Ok("disagg-a")
        );
        assert_eq!(id_from_node_id("disagg-a"), Ok("disagg-a"));
        assert!(id_from_node_id("perf/test_perf.py::test_perf[x]").is_err());
        assert!(id_from_node_id("perf/test_perf_sanity.py::test_e2e[disagg-a").is_err());
        assert!(id_from_node_id("a b").is_err());
    }
}
