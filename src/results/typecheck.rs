//! The gateway's field type rules, checked before anything is sent.
//!
//! Upstream's client refuses a whole batch when one field has the wrong type for its name
//! prefix (`d_` must be a float — an integer fails; `l_` an integer — booleans pass, as Python's
//! `bool` is an `int`; `s_` a string; `b_` a boolean; `ts_` an integer; `ni_` a string or number;
//! `flat_` a dict), or when an unprefixed key is not one of OpenSearch's meta fields. We run the
//! same rules, add one upstream lacks (a `d_` float must be finite: JSON has no NaN), and report
//! every offending field instead of the first.

use super::field;
use super::value::{FieldValue, Record};

/// Unprefixed keys the gateway accepts.
pub const ALLOWED_META_KEYS: &[&str] = &[
    "@timestamp",
    field::ID,
    "_index",
    "_score",
    "_type",
    "_project",
    "_shard",
    "_version",
];

/// One field that breaks the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeProblem {
    /// The field.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TypeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn expected(prefix: &str) -> Option<&'static str> {
    // Order matters only for overlapping prefixes; none overlap (`ts_` vs `s_` differ at byte 0).
    Some(match prefix {
        "l_" => "int",
        "d_" => "float",
        "s_" => "str",
        "b_" => "bool",
        "ts_" => "int",
        "flat_" => "dict",
        "ni_" => "str, int or float",
        _ => return None,
    })
}

fn prefix_of(key: &str) -> Option<&'static str> {
    ["l_", "d_", "s_", "b_", "ts_", "flat_", "ni_"]
        .into_iter()
        .find(|p| key.starts_with(p))
}

fn type_ok(prefix: &str, value: &FieldValue) -> Result<(), String> {
    let ok = match (prefix, value) {
        ("l_" | "ts_", FieldValue::Int(_) | FieldValue::Bool(_)) => true,
        ("d_", FieldValue::Float(f)) => {
            if !f.is_finite() {
                return Err(format!("{f} is not a finite float (JSON cannot carry it)"));
            }
            true
        }
        ("s_", FieldValue::Str(_)) => true,
        ("b_", FieldValue::Bool(_)) => true,
        ("ni_", FieldValue::Str(_) | FieldValue::Int(_) | FieldValue::Bool(_)) => true,
        ("ni_", FieldValue::Float(f)) => f.is_finite(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {}, found {} ({})",
            expected(prefix).unwrap_or("?"),
            value.type_name(),
            short(value)
        ))
    }
}

fn short(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(s) if s.chars().count() > 40 => {
            format!("{:?}…", s.chars().take(40).collect::<String>())
        }
        FieldValue::Str(s) => format!("{s:?}"),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Float(f) => super::pyjson::py_float_repr(*f),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Null => "None".to_string(),
    }
}

/// Every field of `record` that the gateway's type check would reject.
pub fn check_record(record: &Record) -> Vec<TypeProblem> {
    let mut problems = Vec::new();
    for (key, value) in &record.fields {
        match prefix_of(key) {
            Some(prefix) => {
                if let Err(message) = type_ok(prefix, value) {
                    problems.push(TypeProblem {
                        key: key.clone(),
                        message,
                    });
                }
            }
            None if ALLOWED_META_KEYS.contains(&key.as_str()) => {}
            None => problems.push(TypeProblem {
                key: key.clone(),
                message: "unknown key: no type prefix (s_, l_, d_, b_, ts_, flat_, ni_) and \
                          not an OpenSearch meta field"
                    .to_string(),
            }),
        }
    }
    problems
}

/// Checks a batch; `Err` carries one line per problem, prefixed with the record's test case.
pub fn check_batch(records: &[Record]) -> Result<(), Vec<String>> {
    let mut lines = Vec::new();
    for record in records {
        let name = record
            .str(field::TEST_CASE_NAME)
            .unwrap_or("<unnamed record>");
        for problem in check_record(record) {
            lines.push(format!("{name}: {problem}"));
        }
    }
    if lines.is_empty() { Ok(()) } else { Err(lines) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, FieldValue)]) -> Record {
        let mut r = Record::new();
        for (k, v) in pairs {
            r.set(*k, v.clone());
        }
        r
    }

    #[test]
    fn upstream_rules() {
        let good = record(&[
            ("s_a", "x".into()),
            ("l_b", FieldValue::Int(3)),
            ("l_flag_as_int", FieldValue::Bool(true)),
            ("d_c", FieldValue::Float(1.0)),
            ("b_d", FieldValue::Bool(false)),
            ("ts_e", FieldValue::Int(1)),
            ("ni_f", FieldValue::Float(2.5)),
            ("_id", "abc".into()),
            ("@timestamp", FieldValue::Int(5)),
        ]);
        assert!(check_record(&good).is_empty());

        let bad = record(&[
            ("d_int", FieldValue::Int(1)),
            ("d_none", FieldValue::Null),
            ("d_nan", FieldValue::Float(f64::NAN)),
            ("l_float", FieldValue::Float(1.0)),
            ("s_int", FieldValue::Int(1)),
            ("b_str", "true".into()),
            ("mystery", "x".into()),
        ]);
        let keys: Vec<String> = check_record(&bad).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "d_int", "d_none", "d_nan", "l_float", "s_int", "b_str", "mystery"
            ]
        );
        let msg = check_batch(&[bad]).unwrap_err().join("\n");
        assert!(
            msg.contains("d_int: expected float, found int (1)"),
            "{msg}"
        );
    }
}
