//! Strict, typed reading of one YAML mapping section: each accessor checks the type of one key and
//! records a [`Problem`](super::error::Problem) naming the key path and line when it is wrong;
//! [`Section::finish`] rejects keys the section does not know (with a "did you mean" hint), so a
//! typo like `concurency_list` can never silently fall back to a default.

use crate::util::yaml::{Mapping, Node, Value};

use super::error::Problems;

/// A placeholder string such as `<dataset_file>` or `<partition>`: upstream's way of saying "unset".
pub fn is_placeholder(s: &str) -> bool {
    s.len() > 2 && s.starts_with('<') && s.ends_with('>') && !s[1..s.len() - 1].contains(['<', '>'])
}

/// One mapping section of a config, e.g. `benchmark`.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    path: &'a str,
    map: Option<&'a Mapping>,
    line: usize,
}

static EMPTY: Mapping = Mapping {
    entries: Vec::new(),
};

impl<'a> Section<'a> {
    /// The section at `path` (a dotted key path) whose node is `node`. An absent or `null`
    /// section reads as empty; anything but a mapping is a problem.
    pub fn new(path: &'a str, node: Option<&'a Node>, problems: &mut Problems) -> Self {
        let (map, line) = match node {
            None => (None, 0),
            Some(n) => match &n.value {
                Value::Map(m) => (Some(m), n.line),
                Value::Null => (None, n.line),
                other => {
                    problems.push(
                        path,
                        n.line,
                        format!("expected a mapping, found {}", other.type_name()),
                    );
                    (None, n.line)
                }
            },
        };
        Section { path, map, line }
    }

    /// The same section, reporting `line` (e.g. the line of its key) as its own line.
    pub fn at_line(self, line: usize) -> Self {
        Section { line, ..self }
    }

    /// The section's mapping (empty when absent).
    pub fn map(&self) -> &'a Mapping {
        self.map.unwrap_or(&EMPTY)
    }

    /// True when the section is present in the file.
    pub fn is_present(&self) -> bool {
        self.map.is_some()
    }

    /// Line of the section itself.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The raw node under `key`.
    pub fn node(&self, key: &str) -> Option<&'a Node> {
        self.map.and_then(|m| m.get(key))
    }

    /// Dotted path of `key` inside this section.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn type_problem(&self, p: &mut Problems, key: &str, node: &Node, expected: &str) {
        p.push(
            &self.key_path(key),
            node.line,
            format!("expected {expected}, found {}", describe(&node.value)),
        );
    }

    /// A string value; numbers are accepted as their text. `<placeholder>`, `''` and `null`
    /// read as unset.
    pub fn string(&self, p: &mut Problems, key: &str) -> Option<String> {
        let node = self.node(key)?;
        match &node.value {
            Value::Null => None,
            Value::Str(s) if s.is_empty() || is_placeholder(s) => None,
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(crate::util::yaml::python_float(*f)),
            _ => {
                self.type_problem(p, key, node, "a string");
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, p: &mut Problems, key: &str) -> Option<u64> {
        let node = self.node(key)?;
        match node.value {
            Value::Null => None,
            Value::Int(i) if i >= 0 => Some(i as u64),
            _ => {
                self.type_problem(p, key, node, "a non-negative integer");
                None
            }
        }
    }

    /// A number (integer or float).
    pub fn f64(&self, p: &mut Problems, key: &str) -> Option<f64> {
        let node = self.node(key)?;
        match node.value {
            Value::Null => None,
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                self.type_problem(p, key, node, "a number");
                None
            }
        }
    }

    /// A boolean (`true` / `false`).
    pub fn bool(&self, p: &mut Problems, key: &str) -> Option<bool> {
        let node = self.node(key)?;
        match node.value {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            _ => {
                self.type_problem(p, key, node, "true or false");
                None
            }
        }
    }

    /// A list of strings (a single string is accepted as a one-element list).
    pub fn string_list(&self, p: &mut Problems, key: &str) -> Vec<String> {
        let Some(node) = self.node(key) else {
            return Vec::new();
        };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Str(s) => vec![s.clone()],
            Value::Seq(items) => items
                .iter()
                .filter_map(|item| match &item.value {
                    Value::Str(s) => Some(s.clone()),
                    _ => {
                        p.push(
                            &self.key_path(key),
                            item.line,
                            format!(
                                "expected a list of strings, found an item that is {}",
                                describe(&item.value)
                            ),
                        );
                        None
                    }
                })
                .collect(),
            _ => {
                self.type_problem(p, key, node, "a list of strings");
                Vec::new()
            }
        }
    }

    /// A mapping of `NAME: value` pairs with scalar values (values rendered as text).
    pub fn string_map(&self, p: &mut Problems, key: &str) -> Vec<(String, String)> {
        let Some(node) = self.node(key) else {
            return Vec::new();
        };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Map(m) => m
                .entries
                .iter()
                .filter_map(|(k, v)| match &v.value {
                    Value::Str(s) => Some((k.name.clone(), s.clone())),
                    Value::Int(i) => Some((k.name.clone(), i.to_string())),
                    Value::Float(f) => Some((k.name.clone(), crate::util::yaml::python_float(*f))),
                    Value::Bool(b) => Some((k.name.clone(), b.to_string())),
                    _ => {
                        p.push(
                            &format!("{}.{}", self.key_path(key), k.name),
                            v.line,
                            format!("expected a scalar value, found {}", describe(&v.value)),
                        );
                        None
                    }
                })
                .collect(),
            _ => {
                self.type_problem(p, key, node, "a mapping of NAME: value");
                Vec::new()
            }
        }
    }

    /// Rejects every key not in `known`.
    pub fn finish(&self, p: &mut Problems, known: &[&str]) {
        let Some(map) = self.map else { return };
        for (key, _) in &map.entries {
            if known.contains(&key.name.as_str()) {
                continue;
            }
            let mut message = String::from("unknown key");
            if let Some(best) = closest(&key.name, known) {
                message.push_str(&format!(" (did you mean `{best}`?)"));
            }
            message.push_str(&format!("; expected one of: {}", known.join(", ")));
            p.push(&self.key_path(&key.name), key.line, message);
        }
    }
}

/// A value's type and, for scalars, the value itself — for error messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("the string {s:?}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Bool(b) => format!("the boolean {b}"),
        other => other.type_name().to_string(),
    }
}

/// The known key closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    // The distance is at least the difference in length, so most candidates are ruled out
    // without computing it (a long garbage line against every stem stays cheap).
    let chars = word.chars().count();
    known
        .iter()
        .filter(|k| chars.abs_diff(k.chars().count()) <= 2.max(k.len() / 4))
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::yaml::load_str;

    #[test]
    fn placeholders() {
        assert!(is_placeholder("<dataset_file>"));
        assert!(is_placeholder("<full_path_to_work_dir>"));
        assert!(!is_placeholder("<>"));
        assert!(!is_placeholder("a<b>"));
        assert!(!is_placeholder("<a> <b>"));
    }

    #[test]
    fn typo_suggestion_and_types() {
        let doc = load_str("b:\n  concurency_list: 1\n  multi_round: x\n").unwrap();
        let mut p = Problems::default();
        let s = Section::new("b", doc.get_path(&["b"]), &mut p);
        assert_eq!(s.u64(&mut p, "multi_round"), None);
        s.finish(&mut p, &["concurrency_list", "multi_round"]);
        let err = p.into_result(std::path::Path::new("f.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "f.yaml:2: `b.concurency_list`: unknown key (did you mean `concurrency_list`?)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "f.yaml:3: `b.multi_round`: expected a non-negative integer, found the string \"x\""
            ),
            "{text}"
        );
    }
}
