//! CI test lists: the txt format (one id per line, `#` comments, blank lines, ` TIMEOUT (N)`) and
//! upstream's test-db YAML (`version`, context name → list of `{condition, tests}`).
//!
//! Parsing never drops a line silently: a line that is not an id becomes a [`TestlistProblem`],
//! which the harness reports as a failing trial.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::catalog::trial_id::id_from_node_id;
use crate::util::yaml::{Node, Value, load_str};

/// One selected test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestlistEntry {
    /// The test id (inside `test_e2e[...]` for node ids).
    pub id: String,
    /// The line as written, without comments and markers.
    pub written: String,
    /// 1-based line in the file.
    pub line: usize,
    /// `TIMEOUT (N)`: the whole trial's time limit, in minutes.
    pub timeout_minutes: Option<u64>,
    /// The test-db context (suite) name, for YAML lists.
    pub context: Option<String>,
}

/// A line that could not be read as a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestlistProblem {
    /// 1-based line.
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A parsed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Testlist {
    /// The file.
    pub path: PathBuf,
    /// Tests in file order.
    pub entries: Vec<TestlistEntry>,
    /// Lines that are not tests.
    pub problems: Vec<TestlistProblem>,
}

/// The file as a whole could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TestlistError {
    /// The file.
    pub path: PathBuf,
    /// Line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Longest `TIMEOUT (N)` accepted, minutes (30 days): a trial's deadline is "now + N minutes",
/// which must stay representable.
pub const MAX_TIMEOUT_MINUTES: u64 = 30 * 24 * 60;

/// Loads a list; `.yml`/`.yaml` files are test-db YAML, anything else is txt.
pub fn load_testlist(path: &Path) -> Result<Testlist, TestlistError> {
    let text = crate::util::bounded_read::read_text_capped(
        path,
        crate::util::bounded_read::MAX_TESTLIST_BYTES,
    )
    .map_err(|e| TestlistError {
        path: path.to_path_buf(),
        line: None,
        message: format!("cannot read the test list: {e}"),
    })?;
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    );
    if is_yaml {
        parse_test_db(&text, path)
    } else {
        Ok(parse_txt(&text, path))
    }
}

/// A list that selects nothing (empty, or only blank lines and comments) is an error unless
/// `allow_empty`: a run of zero tests must never pass by accident.
pub fn require_tests(list: &Testlist, allow_empty: bool) -> Result<(), TestlistError> {
    if allow_empty || !list.entries.is_empty() || !list.problems.is_empty() {
        return Ok(());
    }
    Err(TestlistError {
        path: list.path.clone(),
        line: None,
        message: "the test list selects no tests (it holds only blank lines and comments); \
                  set PERF_ALLOW_EMPTY_TESTLIST=1 if an empty run is intended"
            .to_string(),
    })
}

fn marker_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(.*?)\s+TIMEOUT\s*\(\s*([^)]*?)\s*\)$").expect("static regex"))
}

/// Parses one test line (comment already removed). `Err` is a message for the line.
fn parse_line(raw: &str) -> Result<(String, String, Option<u64>), String> {
    let text = raw.trim();
    let (id_part, timeout) = match marker_re().captures(text) {
        Some(c) => {
            let minutes = c[2]
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=MAX_TIMEOUT_MINUTES).contains(m))
                .ok_or_else(|| {
                    format!(
                        "TIMEOUT ({}) is not a number of minutes from 1 to {MAX_TIMEOUT_MINUTES}; \
                         expected e.g. TIMEOUT (90)",
                        &c[2]
                    )
                })?;
            (c[1].trim().to_string(), Some(minutes))
        }
        None => (text.to_string(), None),
    };
    if id_part.contains("TIMEOUT") {
        return Err(format!(
            "{text:?}: malformed TIMEOUT marker; expected `<id> TIMEOUT (<minutes>)`"
        ));
    }
    if let Some((id, extra)) = id_part.split_once(char::is_whitespace) {
        return Err(format!(
            "unexpected text {:?} after the test id {id:?}; only ` TIMEOUT (N)` may follow an id",
            extra.trim()
        ));
    }
    let id = id_from_node_id(&id_part).map_err(|e| e.to_string())?;
    Ok((id.to_string(), id_part.clone(), timeout))
}

/// Parses the txt format.
pub fn parse_txt(text: &str, path: &Path) -> Testlist {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        if content.trim().is_empty() {
            continue;
        }
        match parse_line(content) {
            Ok((id, written, timeout_minutes)) => entries.push(TestlistEntry {
                id,
                written,
                line,
                timeout_minutes,
                context: None,
            }),
            Err(message) => problems.push(TestlistProblem { line, message }),
        }
    }
    Testlist {
        path: path.to_path_buf(),
        entries,
        problems,
    }
}

fn yaml_err(path: &Path, line: usize, message: impl Into<String>) -> TestlistError {
    TestlistError {
        path: path.to_path_buf(),
        line: Some(line),
        message: message.into(),
    }
}

/// Parses upstream's test-db YAML.
pub fn parse_test_db(text: &str, path: &Path) -> Result<Testlist, TestlistError> {
    let root = load_str(text).map_err(|e| yaml_err(path, e.line, e.message.clone()))?;
    let Value::Map(top) = &root.value else {
        return Err(yaml_err(
            path,
            root.line,
            format!(
                "expected a test-db mapping (`version:` and context names), found {}",
                root.value.type_name()
            ),
        ));
    };
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut contexts = 0;
    for (key, node) in &top.entries {
        // `version` is test-db metadata; `execution_config` is the cluster settings block of
        // upstream's perf_test_cases.yaml (no upstream tool reads it).
        if key.name == "version" || key.name == "execution_config" {
            continue;
        }
        contexts += 1;
        let groups: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Map(_) => vec![node],
            Value::Null => Vec::new(),
            other => {
                return Err(yaml_err(
                    path,
                    node.line,
                    format!(
                        "context {:?}: expected a list of {{condition, tests}} groups, found {}",
                        key.name,
                        other.type_name()
                    ),
                ));
            }
        };
        for group in groups {
            if let Value::Str(text) = &group.value {
                // perf_test_cases.yaml style: a context is a plain list of ids.
                push_line(text, group.line, &key.name, &mut entries, &mut problems);
                continue;
            }
            read_group(path, &key.name, group, &mut entries, &mut problems)?;
        }
    }
    if contexts == 0 {
        return Err(yaml_err(
            path,
            root.line,
            "no test context found; expected `<context name>: [{condition: …, tests: […]}]`",
        ));
    }
    Ok(Testlist {
        path: path.to_path_buf(),
        entries,
        problems,
    })
}

fn read_group(
    path: &Path,
    context: &str,
    group: &Node,
    entries: &mut Vec<TestlistEntry>,
    problems: &mut Vec<TestlistProblem>,
) -> Result<(), TestlistError> {
    let Value::Map(m) = &group.value else {
        return Err(yaml_err(
            path,
            group.line,
            format!(
                "context {context:?}: expected a {{condition, tests}} mapping, found {}",
                group.value.type_name()
            ),
        ));
    };
    for (k, _) in &m.entries {
        if !matches!(k.name.as_str(), "condition" | "tests") {
            return Err(yaml_err(
                path,
                k.line,
                format!(
                    "context {context:?}: unknown key {:?}; expected `condition` and `tests`",
                    k.name
                ),
            ));
        }
    }
    let Some(tests) = m.get("tests") else {
        return Err(yaml_err(
            path,
            group.line,
            format!("context {context:?}: group has no `tests` list"),
        ));
    };
    let items = match &tests.value {
        Value::Seq(items) => items,
        Value::Null => return Ok(()),
        other => {
            return Err(yaml_err(
                path,
                tests.line,
                format!(
                    "context {context:?}: `tests` must be a list of test ids, found {}",
                    other.type_name()
                ),
            ));
        }
    };
    for item in items {
        let Some(text) = item.as_str() else {
            problems.push(TestlistProblem {
                line: item.line,
                message: format!(
                    "expected a test id string, found {}",
                    item.value.type_name()
                ),
            });
            continue;
        };
        push_line(text, item.line, context, entries, problems);
    }
    Ok(())
}

fn push_line(
    text: &str,
    line: usize,
    context: &str,
    entries: &mut Vec<TestlistEntry>,
    problems: &mut Vec<TestlistProblem>,
) {
    match parse_line(text) {
        Ok((id, written, timeout_minutes)) => entries.push(TestlistEntry {
            id,
            written,
            line,
            timeout_minutes,
            context: Some(context.to_string()),
        }),
        Err(message) => problems.push(TestlistProblem { line, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_lines() {
        let text = "# comment\n\nperf/test_perf_sanity.py::test_e2e[disagg_upload-a-b] TIMEOUT (90)\n\
                    disagg-x   # mode:disagg\nperf/test_perf.py::test_perf[y]\nfoo bar\n\
                    disagg-z TIMEOUT (soon)\n";
        let list = parse_txt(text, Path::new("l.txt"));
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.entries[0].id, "disagg_upload-a-b");
        assert_eq!(list.entries[0].timeout_minutes, Some(90));
        assert_eq!(list.entries[0].line, 3);
        assert_eq!(list.entries[1].id, "disagg-x");
        let lines: Vec<usize> = list.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [5, 6, 7]);
    }

    #[test]
    fn test_db_yaml() {
        let text = "version: 0.0.1\nctx:\n- condition:\n    terms: {stage: post_merge}\n  tests:\n  \
                    - perf/test_perf_sanity.py::test_e2e[disagg-a] TIMEOUT (120) # note\n  - 7\n";
        let list = parse_test_db(text, Path::new("l.yml")).unwrap();
        assert_eq!(list.entries.len(), 1);
        assert_eq!(list.entries[0].timeout_minutes, Some(120));
        assert_eq!(list.entries[0].context.as_deref(), Some("ctx"));
        assert_eq!(list.problems.len(), 1);
        assert!(parse_test_db("version: 1\n", Path::new("l.yml")).is_err());
        assert!(
            parse_test_db(
                "version: 1\nx:\n- tests: [a]\n  when: b\n",
                Path::new("l.yml")
            )
            .is_err()
        );
    }
}
