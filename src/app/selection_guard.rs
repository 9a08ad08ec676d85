//! What a run selects, checked before anything starts: a name filter meant for this harness that
//! matches no trial is an error with a "did you mean", one that may be meant for another test
//! binary gets a loud notice, an empty selection fails unless `PERF_ALLOW_EMPTY=1`, and each
//! config runs once: its plain `disagg-<stem>` twin only when asked for by name (or
//! `PERF_ALL_FAMILIES=1`).

use crate::catalog::selection::TrialSpec;

/// Opt-in knob: an empty selection (empty test list, no configs) is not an error.
pub const ALLOW_EMPTY_VAR: &str = "PERF_ALLOW_EMPTY";
/// Opt-in knob: list and run both `disagg_upload-<stem>` and `disagg-<stem>` by default.
pub const ALL_FAMILIES_VAR: &str = "PERF_ALL_FAMILIES";

/// A name filter as libtest applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    /// Name filters (any may match; none = everything).
    pub filters: Vec<String>,
    /// `--exact`: a filter must equal the name.
    pub exact: bool,
    /// `--skip` patterns (substrings, or exact names with `--exact`).
    pub skip: Vec<String>,
}

impl NameFilter {
    /// Whether the filter selects `name`.
    pub fn selects(&self, name: &str) -> bool {
        let hit = |f: &String| {
            if self.exact {
                f == name
            } else {
                name.contains(f.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(hit)) && !self.skip.iter().any(hit)
    }

    /// True when no name filter was given.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

/// What to do about a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionProblem {
    /// Fail the run with this message.
    Error(String),
    /// Go on (nothing runs here), but say this loudly on stderr.
    Notice(String),
}

/// Each config once: keeps one trial per config and runtime — `disagg_upload-<stem>`,
/// `aggr_upload-<stem>` (every server of the file) and `aggr_upload-ctx_only-<stem>` — and drops
/// the plain twins (`disagg-…`, `aggr-…`) and the per-server aggregated trials, which measure the
/// same servers again, unless `all_families`, or the filter asks for such a trial by name
/// (selects it but not its representative). Test-list trials are always kept: the list chose
/// them.
pub fn once_per_config(
    specs: Vec<TrialSpec>,
    filter: &NameFilter,
    all_families: bool,
) -> Vec<TrialSpec> {
    if all_families {
        return specs;
    }
    specs
        .into_iter()
        .filter(|s| match representative(s) {
            None => true,
            Some(rep) => !filter.is_empty() && filter.selects(&s.name) && !filter.selects(&rep),
        })
        .collect()
}

/// The trial that runs in place of catalog trial `s` by default, or `None` when `s` is itself
/// the one that runs (or came from a test list).
fn representative(s: &TrialSpec) -> Option<String> {
    use crate::catalog::trial_id::{AggrKind, aggr_trial_name, trial_name};
    if s.origin.is_some() {
        return None;
    }
    let stem = s.stem.as_ref()?;
    match &s.aggr {
        None if !s.upload => Some(trial_name(true, stem)),
        None => None,
        Some(AggrKind::Servers(Some(_))) => {
            Some(aggr_trial_name(true, stem, &AggrKind::Servers(None)))
        }
        Some(kind) if !s.upload => Some(aggr_trial_name(true, stem, kind)),
        Some(_) => None,
    }
}

/// An empty selection before any filter: an error unless allowed. `why` says where the
/// selection came from (the test list's path, or the config folders).
pub fn check_not_empty(specs: &[TrialSpec], why: &str, allow_empty: bool) -> Result<(), String> {
    if !specs.is_empty() || allow_empty {
        return Ok(());
    }
    Err(format!(
        "no trials selected: {why}. An empty run is an error so that a broken selection never \
         passes; set {ALLOW_EMPTY_VAR}=1 to allow it"
    ))
}

/// Whether `filter` names something of this harness: a trial id (`disagg…`, `aggr…`) or a
/// pytest node id of `test_perf_sanity.py`. Other words may be meant for another test binary
/// that `cargo test` passes the same filter to.
pub fn meant_for_this_harness(filter: &str) -> bool {
    filter.starts_with("disagg")
        || filter.starts_with("aggr")
        || filter.contains("test_perf_sanity")
}

/// The problem, if the filter selects none of `names` (the trials that exist).
pub fn check_filter(filter: &NameFilter, names: &[&str]) -> Option<SelectionProblem> {
    if filter.is_empty() || names.iter().any(|n| filter.selects(n)) {
        return None;
    }
    let words: Vec<String> = filter
        .filters
        .iter()
        .map(|f| {
            let hint = suggestion(f, filter.exact, names)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            format!("{f:?}{hint}")
        })
        .collect();
    let how = if filter.exact { "--exact " } else { "" };
    let message = format!(
        "the name filter {how}{} matches none of the {} perf trials; `--list` shows them",
        words.join(", "),
        names.len()
    );
    let ours = filter.filters.iter().any(|f| meant_for_this_harness(f));
    Some(if ours {
        SelectionProblem::Error(message)
    } else {
        SelectionProblem::Notice(message)
    })
}

/// The trial name closest to `word`: whole names for `--exact`, best-matching stretch of a name
/// for a substring filter. `None` when nothing is close.
pub fn suggestion<'a>(word: &str, exact: bool, names: &[&'a str]) -> Option<&'a str> {
    let id = crate::catalog::trial_id::id_from_node_id(word).unwrap_or(word);
    let limit = 2.max(id.chars().count() / 4);
    names
        .iter()
        .map(|n| {
            let d = if exact {
                strsim::levenshtein(id, n)
            } else {
                substring_distance(id, n)
            };
            (d, *n)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, n)| (*d, n.len()))
        .map(|(_, n)| n)
}

/// Fewest edits that turn `needle` into some stretch of `hay` (semi-global edit distance:
/// skipping text before and after the stretch is free).
pub fn substring_distance(needle: &str, hay: &str) -> usize {
    let hay: Vec<char> = hay.chars().collect();
    let mut prev = vec![0usize; hay.len() + 1];
    for (i, nc) in needle.chars().enumerate() {
        let mut cur = vec![i + 1; hay.len() + 1];
        for (j, hc) in hay.iter().enumerate() {
            let sub = prev[j] + usize::from(nc != *hc);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev.into_iter().min().unwrap_or(0)
}

/// Splits a test binary's argv into libtest's own arguments and every name filter (libtest-mimic
/// accepts only one), so `cargo test --test perf -- a b` runs the trials matching `a` or `b`.
pub fn split_filters(argv: Vec<String>) -> (Vec<String>, Vec<String>) {
    const TAKES_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--logfile",
        "--color",
        "-Z",
        "--shuffle-seed",
    ];
    let mut rest = Vec::new();
    let mut filters = Vec::new();
    let mut it = argv.into_iter();
    if let Some(program) = it.next() {
        rest.push(program);
    }
    while let Some(arg) = it.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            rest.push(arg);
            rest.extend(it.next());
        } else if arg.starts_with('-') {
            rest.push(arg);
        } else {
            filters.push(arg);
        }
    }
    (rest, filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, upload: bool, origin: Option<&str>) -> TrialSpec {
        TrialSpec {
            name: name.into(),
            stem: Some("s".into()),
            config_path: None,
            upload,
            mode_override: None,
            test_list_id: name.into(),
            time_limit_s: None,
            origin: origin.map(str::to_string),
            preflight_error: None,
            aggr: None,
        }
    }

    fn f(filters: &[&str], exact: bool) -> NameFilter {
        NameFilter {
            filters: filters.iter().map(|s| s.to_string()).collect(),
            exact,
            skip: Vec::new(),
        }
    }

    fn names(specs: &[TrialSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn each_config_runs_once_unless_its_twin_is_named() {
        let all = vec![
            spec("disagg_upload-a", true, None),
            spec("disagg-a", false, None),
        ];
        let kept = once_per_config(all.clone(), &NameFilter::default(), false);
        assert_eq!(names(&kept), ["disagg_upload-a"]);
        let kept = once_per_config(all.clone(), &f(&["a"], false), false);
        assert_eq!(
            names(&kept),
            ["disagg_upload-a"],
            "a substring of both: once"
        );
        let kept = once_per_config(all.clone(), &f(&["disagg-a"], true), false);
        assert_eq!(names(&kept), ["disagg_upload-a", "disagg-a"]);
        let kept = once_per_config(all.clone(), &f(&["disagg-"], false), false);
        assert_eq!(names(&kept), ["disagg_upload-a", "disagg-a"]);
        assert_eq!(
            once_per_config(all.clone(), &NameFilter::default(), true).len(),
            2
        );
        let listed = vec![spec("disagg-a", false, Some("list.txt:1"))];
        assert_eq!(
            once_per_config(listed, &NameFilter::default(), false).len(),
            1
        );
    }

    #[test]
    fn a_typo_is_an_error_with_a_suggestion() {
        let names = [
            "disagg_upload-sim-e2e-nvsa_ctx1_gen2",
            "disagg-sim-e2e-nvsa_ctx1_gen2",
        ];
        let problem = check_filter(&f(&["disagg-sim-e2e-nvsa_ctx1_gen3"], true), &names);
        let Some(SelectionProblem::Error(m)) = problem else {
            panic!("{problem:?}")
        };
        assert!(
            m.contains("did you mean \"disagg-sim-e2e-nvsa_ctx1_gen2\""),
            "{m}"
        );
        // A substring that may be meant for another test binary: a notice, with a hint.
        let problem = check_filter(&f(&["nvsa_ctx1_gen3"], false), &names);
        let Some(SelectionProblem::Notice(m)) = problem else {
            panic!("{problem:?}")
        };
        assert!(m.contains("did you mean"), "{m}");
        assert_eq!(check_filter(&f(&["gen2"], false), &names), None);
        assert_eq!(check_filter(&NameFilter::default(), &names), None);
        let node = "perf/test_perf_sanity.py::test_e2e[disagg-sim-e2e-nvsa_ctx1_gen3]";
        assert!(matches!(
            check_filter(&f(&[node], true), &names),
            Some(SelectionProblem::Error(m)) if m.contains("did you mean")
        ));
    }

    #[test]
    fn an_empty_selection_fails_unless_allowed() {
        let e = check_not_empty(&[], "the test list x.txt has no tests", false).unwrap_err();
        assert!(e.contains("x.txt") && e.contains(ALLOW_EMPTY_VAR), "{e}");
        assert!(check_not_empty(&[], "", true).is_ok());
    }

    #[test]
    fn two_filters_and_flag_values() {
        let argv = [
            "perf",
            "--test-threads",
            "2",
            "a",
            "--exact",
            "b",
            "--skip",
            "c",
        ];
        let (rest, filters) = split_filters(argv.iter().map(|s| s.to_string()).collect());
        assert_eq!(filters, ["a", "b"]);
        assert_eq!(
            rest,
            ["perf", "--test-threads", "2", "--exact", "--skip", "c"]
        );
        let two = f(&["x", "y"], false);
        assert!(two.selects("ax") && two.selects("yb") && !two.selects("z"));
        assert_eq!(substring_distance("abc", "xxabcxx"), 0);
        assert_eq!(substring_distance("abd", "xxabcxx"), 1);
    }
}
