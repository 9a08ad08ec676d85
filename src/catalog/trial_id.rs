//! Trial ids: our names (`disagg_upload-<stem>`, `disagg-<stem>`) and upstream's test-id grammar
//! (`disagg_upload-e2e-<stem>`, `disagg-gen_only-<stem>`, `aggr_upload-<stem>[-<servers>]`,
//! `aggr_upload-ctx_only-<stem>`, `aggr_upload-gen_only_no_context-<stem>`, full pytest node
//! ids), resolved against the known config stems of each layout.
//!
//! Disaggregated stems may contain `-`, so an id is never split naively: a mode label is only
//! taken as a label when what follows it is a known stem. Upstream's aggregated stems cannot
//! contain `-` (the stem is label 1, the rest selects servers); we take the longest known
//! aggregated stem instead, which is the same thing for upstream's stems and also works for ours.

use crate::config::BenchmarkMode;

/// The trial name for a stem.
pub fn trial_name(upload: bool, stem: &str) -> String {
    format!("{}-{stem}", prefix(upload))
}

/// The trial name for a stem run in a mode other than its YAML's (from a testlist label).
/// gen_only_no_context is spelled with the `aggr` prefix, as upstream spells it.
pub fn labelled_trial_name(upload: bool, mode: BenchmarkMode, stem: &str) -> String {
    let p = if mode == BenchmarkMode::GenOnlyNoContext {
        aggr_prefix(upload)
    } else {
        prefix(upload)
    };
    format!("{p}-{}-{stem}", mode.as_str())
}

/// The trial name of an aggregated-runtime trial (§3.1): `aggr[_upload]-<stem>`,
/// `aggr[_upload]-<stem>-<servers>` or `aggr[_upload]-ctx_only-<stem>`.
pub fn aggr_trial_name(upload: bool, stem: &str, kind: &AggrKind) -> String {
    let p = aggr_prefix(upload);
    match kind {
        AggrKind::Servers(None) => format!("{p}-{stem}"),
        AggrKind::Servers(Some(names)) => format!("{p}-{stem}-{}", names.join(",")),
        AggrKind::CtxOnly => format!("{p}-ctx_only-{stem}"),
    }
}

fn prefix(upload: bool) -> &'static str {
    if upload { "disagg_upload" } else { "disagg" }
}

fn aggr_prefix(upload: bool) -> &'static str {
    if upload { "aggr_upload" } else { "aggr" }
}

/// What an aggregated-runtime trial runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggrKind {
    /// Servers of an aggregated config: all of them (`None`) or the named ones, in YAML order.
    Servers(Option<Vec<String>>),
    /// `ctx_only`: one aggregated server built from a disaggregated config's context worker.
    CtxOnly,
}

/// The known stems of each layout.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownStems<'a> {
    /// Disaggregated (and WideEP) config stems.
    pub disagg: &'a [&'a str],
    /// Aggregated config stems.
    pub aggr: &'a [&'a str],
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
    /// Set for aggregated-runtime trials (aggregated configs and ctx_only).
    pub aggr: Option<AggrKind>,
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

/// Resolves `id` (the part inside `test_e2e[...]`, or a bare id) against disaggregated stems
/// only (no aggregated configs known).
pub fn resolve(id: &str, known_stems: &[&str]) -> Result<ResolvedId, IdError> {
    resolve_id(
        id,
        KnownStems {
            disagg: known_stems,
            aggr: &[],
        },
    )
}

/// Resolves `id` (the part inside `test_e2e[...]`, or a bare id) against the known stems of both
/// layouts.
pub fn resolve_id(id: &str, stems: KnownStems<'_>) -> Result<ResolvedId, IdError> {
    let known_stems = stems.disagg;
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
                        aggr: None,
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
                    aggr: None,
                })
            } else {
                Err(no_such(rest, known_stems))
            }
        }
        "aggr" | "aggr_upload" => resolve_aggr(id, label0 == "aggr_upload", rest, stems),
        other if other.contains("disagg") || other.contains("aggr") => Err(IdError::Malformed(
            format!("{id:?}: unknown prefix {other:?}; expected disagg_upload or disagg"),
        )),
        _ => Err(IdError::Malformed(format!(
            "{id:?} is not a perf-sanity test id; expected disagg_upload-<config stem> or \
             disagg-<config stem>"
        ))),
    }
}

/// `aggr[_upload]-…`: gen_only_no_context and ctx_only of a disaggregated config, or servers of
/// an aggregated config.
fn resolve_aggr(
    id: &str,
    upload: bool,
    rest: &str,
    stems: KnownStems<'_>,
) -> Result<ResolvedId, IdError> {
    let derived = |label: &str| {
        rest.strip_prefix(label)
            .and_then(|r| r.strip_prefix('-'))
            .filter(|stem| !stems.aggr.contains(&rest) && !stem.is_empty())
    };
    if let Some(stem) = derived("gen_only_no_context") {
        if stems.disagg.contains(&stem) {
            return Ok(ResolvedId {
                upload,
                stem: stem.to_string(),
                mode_label: Some(BenchmarkMode::GenOnlyNoContext),
                aggr: None,
            });
        }
        return Err(no_such(stem, stems.disagg));
    }
    if let Some(stem) = derived("ctx_only") {
        if let Some((modifier, _)) = stem.split_once('-')
            && MODIFIERS.contains(&modifier)
            && !stems.disagg.contains(&stem)
        {
            return Err(IdError::Unsupported(format!(
                "test-id modifier {modifier:?} in {id:?} is not supported by perfsanity"
            )));
        }
        if stems.disagg.contains(&stem) {
            return Ok(ResolvedId {
                upload,
                stem: stem.to_string(),
                mode_label: None,
                aggr: Some(AggrKind::CtxOnly),
            });
        }
        return Err(no_such(stem, stems.disagg));
    }
    // Servers of an aggregated config: the longest known stem that `rest` is, or starts with
    // followed by `-`.
    let found = stems
        .aggr
        .iter()
        .filter(|s| rest == **s || rest.strip_prefix(**s).is_some_and(|r| r.starts_with('-')))
        .max_by_key(|s| s.len());
    match found {
        Some(stem) => {
            let selection = rest[stem.len()..].strip_prefix('-').map(|sel| {
                sel.split(',')
                    .map(|n| n.trim().to_string())
                    .collect::<Vec<_>>()
            });
            if let Some(names) = &selection
                && names.iter().any(String::is_empty)
            {
                return Err(IdError::Malformed(format!(
                    "{id:?}: empty server name in the selection {:?}; expected                      <stem>-<server>[,<server>…]",
                    &rest[stem.len() + 1..]
                )));
            }
            Ok(ResolvedId {
                upload,
                stem: stem.to_string(),
                mode_label: None,
                aggr: Some(AggrKind::Servers(selection)),
            })
        }
        None => {
            // Upstream's grammar: the stem is the first label.
            let stem = rest.split('-').next().unwrap_or(rest);
            Err(no_such(stem, stems.aggr))
        }
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

/// Why a test-list word or CLI argument is not a perf-sanity test id or pytest node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// A node id of another pytest module.
    #[error(
        "{text:?} is not a perf-sanity test; expected perf/test_perf_sanity.py::test_e2e[<id>] or \
         a bare id"
    )]
    OtherModule {
        /// The text as given.
        text: String,
    },
    /// The part after `::` is not `test_e2e[<id>]`.
    #[error("{text:?}: expected test_e2e[<id>] after `::` (a closing `]` is required)")]
    NotTestE2e {
        /// The text as given.
        text: String,
    },
    /// `test_e2e[]`.
    #[error("{text:?}: the id inside test_e2e[] is empty")]
    EmptyId {
        /// The text as given.
        text: String,
    },
    /// Neither form: a path, whitespace or brackets without `::`.
    #[error(
        "{text:?} is neither a bare test id nor a perf/test_perf_sanity.py::test_e2e[<id>] node id"
    )]
    Neither {
        /// The text as given.
        text: String,
    },
}

/// Extracts the id from a pytest node id `…test_perf_sanity.py::test_e2e[<id>]`, or returns a
/// bare id unchanged. `Err` explains what was expected.
pub fn id_from_node_id(text: &str) -> Result<&str, NodeIdError> {
    if let Some(open) = text.find("::") {
        let (module, rest) = text.split_at(open);
        let rest = &rest[2..];
        if !(module == "test_perf_sanity.py" || module.ends_with("/test_perf_sanity.py")) {
            return Err(NodeIdError::OtherModule { text: text.into() });
        }
        let inner = rest
            .strip_prefix("test_e2e[")
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| NodeIdError::NotTestE2e { text: text.into() })?;
        if inner.is_empty() {
            return Err(NodeIdError::EmptyId { text: text.into() });
        }
        return Ok(inner);
    }
    if text.contains('/') || text.contains(char::is_whitespace) || text.contains(['[', ']']) {
        return Err(NodeIdError::Neither { text: text.into() });
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
            Err(IdError::NoSuchConfig { ref stem, .. }) if stem == "llama"
        ));
        assert!(matches!(
            resolve("aggr-ctx_only-sim-smal", STEMS),
            Err(IdError::NoSuchConfig { .. })
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
    fn aggregated_ids() {
        let stems = KnownStems {
            disagg: STEMS,
            aggr: &["llama_fp4", "llama_fp4_2_nodes", "sim-aggr"],
        };
        let r = resolve_id("aggr_upload-llama_fp4", stems).unwrap();
        assert_eq!(
            (r.upload, r.stem.as_str(), r.aggr),
            (true, "llama_fp4", Some(AggrKind::Servers(None)))
        );
        // Server names may contain `-`; a comma-separated selection is accepted.
        let r = resolve_id("aggr-llama_fp4-tp4-512, tp8", stems).unwrap();
        assert_eq!(
            r.aggr,
            Some(AggrKind::Servers(Some(vec![
                "tp4-512".into(),
                "tp8".into()
            ])))
        );
        // The longest known stem wins.
        let r = resolve_id("aggr-llama_fp4_2_nodes-x", stems).unwrap();
        assert_eq!(r.stem, "llama_fp4_2_nodes");
        let r = resolve_id("aggr-sim-aggr-a", stems).unwrap();
        assert_eq!(
            (r.stem.as_str(), r.aggr),
            ("sim-aggr", Some(AggrKind::Servers(Some(vec!["a".into()]))))
        );
        let r = resolve_id("aggr_upload-ctx_only-sim-small", stems).unwrap();
        assert_eq!(
            (r.stem.as_str(), r.aggr),
            ("sim-small", Some(AggrKind::CtxOnly))
        );
        assert!(matches!(
            resolve_id("aggr-llama_fp4-", stems),
            Err(IdError::Malformed(_))
        ));
        assert!(matches!(
            resolve_id("aggr-nope-x", stems),
            Err(IdError::NoSuchConfig { ref stem, .. }) if stem == "nope"
        ));
        assert_eq!(
            aggr_trial_name(
                true,
                "s",
                &AggrKind::Servers(Some(vec!["a".into(), "b".into()]))
            ),
            "aggr_upload-s-a,b"
        );
        assert_eq!(
            labelled_trial_name(false, BenchmarkMode::GenOnlyNoContext, "s"),
            "aggr-gen_only_no_context-s"
        );
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
        let err = |text| id_from_node_id(text).unwrap_err().to_string();
        assert_eq!(
            err("perf/test_perf.py::test_perf[x]"),
            "\"perf/test_perf.py::test_perf[x]\" is not a perf-sanity test; expected \
             perf/test_perf_sanity.py::test_e2e[<id>] or a bare id"
        );
        assert_eq!(
            err("perf/test_perf_sanity.py::test_e2e[disagg-a"),
            "\"perf/test_perf_sanity.py::test_e2e[disagg-a\": expected test_e2e[<id>] after \
             `::` (a closing `]` is required)"
        );
        assert_eq!(
            err("test_perf_sanity.py::test_e2e[]"),
            "\"test_perf_sanity.py::test_e2e[]\": the id inside test_e2e[] is empty"
        );
        assert_eq!(
            err("a b"),
            "\"a b\" is neither a bare test id nor a perf/test_perf_sanity.py::test_e2e[<id>] \
             node id"
        );
    }
}
