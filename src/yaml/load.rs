//! Loading YAML text into [`Node`] trees with `saphyr` (YAML 1.2, anchors and aliases resolved,
//! duplicate keys rejected, alias expansion bounded). Merge keys (`<<: *base`) are applied as
//! PyYAML applies them, because upstream configs are written for PyYAML.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::node::{Key, Mapping, Node, Value};

/// A YAML document that could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {col}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

/// Parses one YAML document. An empty document gives a `Null` node.
pub fn load_str(text: &str) -> Result<Node, YamlError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: format!("YAML syntax error: {}", e.info()),
    })?;
    match docs.len() {
        0 => Ok(Node {
            value: Value::Null,
            line: 1,
            col: 1,
        }),
        1 => convert(&docs[0]),
        n => Err(YamlError {
            line: docs[1].span.start.line(),
            col: 1,
            message: format!("expected a single YAML document, found {n}"),
        }),
    }
}

fn position(node: &MarkedYaml<'_>) -> (usize, usize) {
    (node.span.start.line(), node.span.start.col() + 1)
}

fn convert(node: &MarkedYaml<'_>) -> Result<Node, YamlError> {
    let (line, col) = position(node);
    let err = |message: String| YamlError { line, col, message };
    let value = match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::Str(text.to_string()),
        YamlData::Sequence(items) => {
            Value::Seq(items.iter().map(convert).collect::<Result<_, _>>()?)
        }
        YamlData::Mapping(map) => {
            let mut out = Mapping::default();
            let mut merges = Vec::new();
            for (k, v) in map.iter() {
                let key_name = scalar_key(k).ok_or_else(|| YamlError {
                    line: k.span.start.line(),
                    col: k.span.start.col() + 1,
                    message: "mapping keys must be scalars".to_string(),
                })?;
                if key_name == "<<" {
                    merges.push(convert(v)?);
                    continue;
                }
                out.entries.push((
                    Key {
                        name: key_name,
                        line: k.span.start.line(),
                    },
                    convert(v)?,
                ));
            }
            for merge in merges {
                apply_merge(&mut out, merge)?;
            }
            Value::Map(out)
        }
        YamlData::Tagged(_, inner) => return convert(inner),
        YamlData::Alias(_) => return Err(err("alias refers to an unknown anchor".to_string())),
        YamlData::BadValue => return Err(err("invalid YAML value".to_string())),
    };
    Ok(Node { value, line, col })
}

fn apply_merge(target: &mut Mapping, merge: Node) -> Result<(), YamlError> {
    let sources = match merge.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => items
            .into_iter()
            .map(|n| match n.value {
                Value::Map(m) => Ok(m),
                other => Err(YamlError {
                    line: n.line,
                    col: n.col,
                    message: format!(
                        "merge key `<<` expects mappings, found {}",
                        other.type_name()
                    ),
                }),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(YamlError {
                line: merge.line,
                col: merge.col,
                message: format!(
                    "merge key `<<` expects a mapping or a list of mappings, found {}",
                    other.type_name()
                ),
            });
        }
    };
    for source in sources {
        for (k, v) in source.entries {
            if target.get(&k.name).is_none() {
                target.entries.push((k, v));
            }
        }
    }
    Ok(())
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Int(*i),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

fn scalar_key(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Value(Scalar::Null) => Some("null".to_string()),
        YamlData::Representation(text, _, _) => Some(text.to_string()),
        YamlData::Tagged(_, inner) => scalar_key(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_aliases_and_order() {
        let n = load_str("b: &a\n  x: 1\n  y: [1, 2]\na: *a\nc: ~\n").unwrap();
        let m = n.as_map().unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(m.get("a").unwrap().value, m.get("b").unwrap().value);
        assert!(m.get("c").unwrap().is_null());
        assert_eq!(m.get("a").unwrap().line, 4);
    }

    #[test]
    fn merge_keys_do_not_override() {
        let n = load_str("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n").unwrap();
        let d = n.get_path(&["d"]).unwrap().as_map().unwrap();
        assert_eq!(d.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(d.get("y").unwrap().as_i64(), Some(3));
    }

    #[test]
    fn errors_have_positions() {
        let e = load_str("a: 1\n  b: [\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = load_str("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("duplicated key"), "{e}");
    }

    #[test]
    fn yaml_12_scalars() {
        let n = load_str("t: 02:00:00\nf: 0.9\ni: 7\nb: true\ns: '1024'\nl: 1 2 4\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.get("t").unwrap().as_str(), Some("02:00:00"));
        assert_eq!(m.get("f").unwrap().as_f64(), Some(0.9));
        assert_eq!(m.get("i").unwrap().as_i64(), Some(7));
        assert_eq!(m.get("b").unwrap().as_bool(), Some(true));
        assert_eq!(m.get("s").unwrap().as_str(), Some("1024"));
        assert_eq!(m.get("l").unwrap().as_str(), Some("1 2 4"));
    }
}
