//! Writing [`Node`] trees as YAML the way upstream's PyYAML `yaml.dump` writes them.
//!
//! Upstream's harness writes engine configs with `sort_keys=False` and the disaggregated
//! `server_config.<s>.yaml` with PyYAML's default sorted keys. TensorRT-LLM reads both with
//! PyYAML, so we emit block style with PyYAML's layout (sequences not indented under their key,
//! `null`, `true`/`false`, floats in Python `repr` form) and quote every string that a YAML 1.1
//! (PyYAML) or YAML 1.2 reader would otherwise take for another type. saphyr's own emitter
//! writes `~` and indents sequences differently, which would make our files differ byte-wise
//! from upstream's for no reason; this module exists for that byte compatibility only.

use std::fmt::Write;
use std::sync::OnceLock;

use regex::Regex;

use super::node::{Node, Value};

/// Key order of mappings in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// Document / insertion order (`yaml.dump(..., sort_keys=False)`).
    Insertion,
    /// Sorted at every level (PyYAML's default).
    Sorted,
}

/// Serialises `node` as a block-style YAML document (ends with a newline).
pub fn to_yaml_string(node: &Node, order: KeyOrder) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Map(m) if !m.is_empty() => write_map_body(&mut out, &node.value, 0, order),
        Value::Seq(items) if !items.is_empty() => write_seq_body(&mut out, items, 0, order),
        other => {
            out.push_str(&scalar_or_empty(other));
            out.push('\n');
        }
    }
    out
}

fn sorted_entries(value: &Value, order: KeyOrder) -> Vec<(&str, &Node)> {
    let Value::Map(m) = value else {
        return Vec::new();
    };
    let mut entries: Vec<_> = m.iter().collect();
    if order == KeyOrder::Sorted {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

fn is_block_collection(value: &Value) -> bool {
    match value {
        Value::Map(m) => !m.is_empty(),
        Value::Seq(s) => !s.is_empty(),
        _ => false,
    }
}

fn write_map_body(out: &mut String, value: &Value, indent: usize, order: KeyOrder) {
    for (i, (key, node)) in sorted_entries(value, order).into_iter().enumerate() {
        if i > 0 {
            push_indent(out, indent);
        }
        write_entry(out, key, node, indent, order);
    }
}

fn write_entry(out: &mut String, key: &str, node: &Node, indent: usize, order: KeyOrder) {
    out.push_str(&quote_string(key));
    out.push(':');
    match &node.value {
        Value::Map(_) if is_block_collection(&node.value) => {
            out.push('\n');
            push_indent(out, indent + 2);
            write_map_body(out, &node.value, indent + 2, order);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            push_indent(out, indent);
            write_seq_body(out, items, indent, order);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_or_empty(other));
            out.push('\n');
        }
    }
}

fn write_seq_body(out: &mut String, items: &[Node], indent: usize, order: KeyOrder) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match &item.value {
            Value::Map(_) if is_block_collection(&item.value) => {
                write_map_body(out, &item.value, indent + 2, order);
            }
            Value::Seq(inner) if !inner.is_empty() => {
                write_seq_body(out, inner, indent + 2, order);
            }
            other => {
                out.push_str(&scalar_or_empty(other));
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

fn scalar_or_empty(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => python_float(*f),
        Value::Str(s) => quote_string(s),
        Value::Seq(_) => "[]".to_string(),
        Value::Map(_) => "{}".to_string(),
    }
}

/// A float as PyYAML writes it: Python `repr`, with `.0` inserted before an exponent.
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python repr switches to exponent notation outside [1e-4, 1e16).
        let s = format!("{f:e}"); // e.g. "1e-5", "1.5e20"
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn implicit_non_string() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Union of PyYAML's (YAML 1.1) and YAML 1.2 core implicit resolvers: a plain scalar
        // matching any of these would be read back as something other than a string.
        Regex::new(concat!(
            r"^(?:",
            r"~|null|Null|NULL",
            r"|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?0o[0-7]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)?",
            r"|<<|=",
            r")$"
        ))
        .expect("static regex")
    })
}

/// A string as a YAML scalar: plain when that reads back as the same string, else quoted.
pub fn quote_string(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    // PyYAML's default dump (allow_unicode=False) writes any character outside printable ASCII
    // escaped in a double-quoted scalar; plain or single-quoted, a U+2028 or U+0085 would be
    // read back as a line break.
    if s.chars().any(|c| !(' '..='~').contains(&c)) {
        return double_quoted(s);
    }
    if needs_quotes(s) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    s.to_string()
}

fn needs_quotes(s: &str) -> bool {
    if implicit_non_string().is_match(s) {
        return true;
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "[]{}#&*!|>'\"%@`,".contains(first) {
        return true;
    }
    if matches!(first, '-' | '?' | ':') {
        let second = s.chars().nth(1);
        if second.is_none() || second == Some(' ') {
            return true;
        }
    }
    if s.ends_with(':') || s.contains(": ") || s.contains(" #") {
        return true;
    }
    false
}

/// A double-quoted scalar with PyYAML's escapes.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let short = match c {
            '\0' => Some('0'),
            '\u{07}' => Some('a'),
            '\u{08}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{0b}' => Some('v'),
            '\u{0c}' => Some('f'),
            '\r' => Some('r'),
            '\u{1b}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{a0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        match short {
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None if (' '..='~').contains(&c) => out.push(c),
            None if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            None if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            None => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::load::load_str;
    use super::*;

    #[test]
    fn pyyaml_layout() {
        let src = "b: 1\na:\n  x: [1, 2]\n  y: {}\n  z: null\nl:\n- k: 1\n  j: 2\n- 3\n";
        let node = load_str(src).unwrap();
        let out = to_yaml_string(&node, KeyOrder::Insertion);
        assert_eq!(
            out,
            "b: 1\na:\n  x:\n  - 1\n  - 2\n  y: {}\n  z: null\nl:\n- k: 1\n  j: 2\n- 3\n"
        );
        let sorted = to_yaml_string(&node, KeyOrder::Sorted);
        assert!(sorted.starts_with("a:\n  x:\n"), "{sorted}");
        // Round trip.
        assert_eq!(load_str(&out).unwrap().to_json(), node.to_json());
    }

    #[test]
    fn quoting_keeps_strings_strings() {
        for s in [
            "1024",
            "true",
            "yes",
            "on",
            "null",
            "0.9",
            "1e5",
            "",
            " lead",
            "a: b",
            "- x",
            "#c",
            "2024-01-02",
            "0x1F",
            "7:30",
            "*x",
            "&y",
            "new\nline",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "nel\u{85}x",
            "é ≥ 𝄞",
            "tab\tx",
            ".inf",
            "<<",
        ] {
            let mut m = super::super::node::Mapping::default();
            m.insert("k", Node::synthetic(Value::Str(s.to_string())));
            let out = to_yaml_string(&Node::synthetic(Value::Map(m)), KeyOrder::Insertion);
            let back = load_str(&out).unwrap();
            assert_eq!(
                back.get_path(&["k"]).unwrap().as_str(),
                Some(s),
                "{s:?} → {out}"
            );
        }
        assert_eq!(quote_string("--gres=gpu:4"), "--gres=gpu:4");
        // PyYAML's own dump of these strings.
        assert_eq!(quote_string("a\u{2028}b"), "\"a\\Lb\"");
        assert_eq!(quote_string("é"), "\"\\xE9\"");
        assert_eq!(quote_string("\u{85}\u{a0}\0"), "\"\\N\\_\\0\"");
        assert_eq!(quote_string("02:00:00"), "02:00:00");
        assert_eq!(quote_string("datasets/x.json"), "datasets/x.json");
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(python_float(0.9), "0.9");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.0), "0.0");
        assert_eq!(python_float(1e-5), "1.0e-05");
        assert_eq!(python_float(1.5e20), "1.5e+20");
        assert_eq!(python_float(f64::INFINITY), ".inf");
    }
}
