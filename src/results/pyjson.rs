//! Python-compatible JSON text for the record `_id`.
//!
//! Upstream's `_id` is the MD5 hex digest of `json.dumps(record, sort_keys=True, indent=2)`
//! (UTF-8). serde_json's pretty printer differs from Python's in float spelling (`1e16` vs
//! `1e+16`), in escaping (Python's default `ensure_ascii=True` writes every non-ASCII character
//! and DEL as `\uXXXX`) and in key order, so the digest needs its own small serializer.

use md5::{Digest, Md5};

use super::field;
use super::value::{FieldValue, Record};

/// Python's `repr(float)`: the shortest round-tripping digits, exponent form (`1e+16`,
/// `1.5e-05`) outside `[1e-4, 1e16)`, `NaN` / `Infinity` as the `json` module writes them.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}"); // shortest digits: "1e16", "-1.5e-5"
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A JSON string literal as Python's `json.dumps` writes it with `ensure_ascii=True`.
pub fn py_string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn py_value(v: &FieldValue) -> String {
    match v {
        FieldValue::Str(s) => py_string_literal(s),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Float(f) => py_float_repr(*f),
        FieldValue::Bool(true) => "true".to_string(),
        FieldValue::Bool(false) => "false".to_string(),
        FieldValue::Null => "null".to_string(),
    }
}

/// `json.dumps(record, sort_keys=True, indent=2)` for a flat record.
pub fn dumps_sorted_indent2(record: &Record) -> String {
    if record.fields.is_empty() {
        return "{}".to_string();
    }
    // Python sorts str keys by code point; Rust's byte-wise UTF-8 order is the same order.
    let mut keys: Vec<&String> = record.fields.keys().collect();
    keys.sort();
    let body: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "  {}: {}",
                py_string_literal(k),
                py_value(&record.fields[*k])
            )
        })
        .collect();
    format!("{{\n{}\n}}", body.join(",\n"))
}

/// MD5 hex of `json.dumps(record, sort_keys=True, indent=2).encode("utf-8")`.
pub fn md5_of_record(record: &Record) -> String {
    let digest = Md5::digest(dumps_sorted_indent2(record).as_bytes());
    hex::encode(digest)
}

/// Sets `_id` the way upstream does: hash the record as it is (its `_id` is `""` from the job
/// info at that point), then store the digest.
pub fn assign_id(record: &mut Record) -> String {
    let id = md5_of_record(record);
    record.set(field::ID, id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_python_repr() {
        // Expected values are Python 3.11's repr().
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (0.8, "0.8"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (123456.789, "123456.789"),
            (1e100, "1e+100"),
            (2.5e-300, "2.5e-300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f:?}");
        }
    }

    #[test]
    fn strings_are_ascii_escaped() {
        assert_eq!(py_string_literal("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            py_string_literal("\n\t\u{1}\u{7f}"),
            r#""\n\t\u0001\u007f""#
        );
        assert_eq!(py_string_literal("é😀"), r#""\u00e9\ud83d\ude00""#);
    }
}
