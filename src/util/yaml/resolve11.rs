//! How PyYAML (YAML 1.1) types a plain, untagged scalar — upstream reads every config and
//! TensorRT-LLM every engine config with PyYAML, so these rules, not YAML 1.2's, decide what a
//! value is: `yes`/`off` are booleans, `1_000` and `017` (octal, 15) and `1:30` (sexagesimal, 90)
//! are integers, `1e-5` (no dot) is a string, `1.0e-05` a float. Timestamps stay strings (there is
//! no date value here; see README "deliberate differences").

use std::sync::OnceLock;

use regex::Regex;

use super::node::Value;

fn bool_of(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn int_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^(?:[-+]?0b[0-1_]+",
            r"|[-+]?0[0-7_]+",
            r"|[-+]?(?:0|[1-9][0-9_]*)",
            r"|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
        ))
        .expect("static regex")
    })
}

fn float_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?",
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)",
            r"|\.(?:nan|NaN|NAN))$"
        ))
        .expect("static regex")
    })
}

fn split_sign(text: &str) -> (i64, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    }
}

/// PyYAML's `construct_yaml_int`.
fn int_of(text: &str) -> Option<i64> {
    let cleaned = text.replace('_', "");
    let (sign, digits) = split_sign(&cleaned);
    let magnitude = if digits == "0" {
        0
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.starts_with('0') {
        i64::from_str_radix(digits, 8).ok()?
    } else if digits.contains(':') {
        let mut value: i64 = 0;
        for part in digits.split(':') {
            value = value
                .checked_mul(60)?
                .checked_add(part.parse::<i64>().ok()?)?;
        }
        value
    } else {
        digits.parse::<i64>().ok()?
    };
    magnitude.checked_mul(sign)
}

/// PyYAML's `construct_yaml_float`.
fn float_of(text: &str) -> Option<f64> {
    let cleaned = text.replace('_', "").to_lowercase();
    let (sign, body) = split_sign(&cleaned);
    let sign = sign as f64;
    if body == ".inf" {
        return Some(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Some(f64::NAN);
    }
    if body.contains(':') {
        let mut value = 0.0;
        for part in body.split(':') {
            value = value * 60.0 + part.parse::<f64>().ok()?;
        }
        return Some(sign * value);
    }
    // Python's float() takes "1." and "1.e+5"; Rust's parser wants a digit after the dot.
    let normal = body.replacen(".e", ".0e", 1);
    let normal = if normal.ends_with('.') {
        format!("{normal}0")
    } else {
        normal
    };
    normal.parse::<f64>().ok().map(|v| sign * v)
}

/// The value PyYAML gives a plain, untagged scalar `text`. A number PyYAML would hold as a big
/// integer (beyond i64) stays a string.
pub fn resolve_plain(text: &str) -> Value {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = bool_of(text) {
        return Value::Bool(b);
    }
    if float_re().is_match(text)
        && let Some(f) = float_of(text)
    {
        return Value::Float(f);
    }
    if int_re().is_match(text)
        && let Some(i) = int_of(text)
    {
        return Value::Int(i);
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyyaml_types() {
        for (text, want) in [
            ("yes", Value::Bool(true)),
            ("Off", Value::Bool(false)),
            ("on", Value::Bool(true)),
            ("1_000", Value::Int(1000)),
            ("017", Value::Int(15)),
            ("-017", Value::Int(-15)),
            ("08", Value::Str("08".into())),
            ("1:30", Value::Int(90)),
            ("190:20:30", Value::Int(685_230)),
            ("0x1F", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("0o17", Value::Str("0o17".into())),
            ("1e-5", Value::Str("1e-5".into())),
            ("1.0e-05", Value::Float(1e-5)),
            ("1.5", Value::Float(1.5)),
            ("1.", Value::Float(1.0)),
            (".5", Value::Float(0.5)),
            ("1:30.5", Value::Float(90.5)),
            ("-.inf", Value::Float(f64::NEG_INFINITY)),
            ("~", Value::Null),
            ("", Value::Null),
            ("02:00:00", Value::Str("02:00:00".into())),
            ("2001-12-14", Value::Str("2001-12-14".into())),
            (
                "99999999999999999999",
                Value::Str("99999999999999999999".into()),
            ),
            ("y", Value::Str("y".into())),
        ] {
            assert_eq!(resolve_plain(text), want, "{text:?}");
        }
    }
}
