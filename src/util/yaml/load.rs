//! Loading YAML text into [`Node`] trees, straight from `saphyr-parser`'s event stream (anchors
//! and aliases resolved, duplicate keys rejected, alias expansion bounded). Plain scalars are
//! typed as PyYAML (YAML 1.1) types them ([`super::resolve11`]) and merge keys (`<<: *base`) are
//! applied in PyYAML's order, because upstream and TensorRT-LLM read every file with PyYAML.
//!
//! Building our tree from the events directly (instead of saphyr's own tree, then converting)
//! halves the cost of reading a config, which is what keeps `perfsanity list` over a thousand
//! configs inside its time budget (docs/BENCHMARKS.md).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScanError, Span, Tag};

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

/// Most nodes aliases may expand to in one document (a "billion laughs" guard).
const ALIAS_BUDGET: usize = 100_000;

/// Deepest nesting of sequences and mappings accepted in one document. Perf configs nest about
/// six levels; every stage that walks a tree (clone, drop, JSON conversion, emit) recurses, so an
/// unbounded depth would overflow the stack (docs/LIMITS.md).
pub const MAX_DEPTH: usize = 128;

/// Mappings up to this size look duplicate keys up by scanning; larger ones keep a hash set, so
/// loading stays linear in the number of keys.
const LINEAR_KEY_SCAN: usize = 16;

/// Parses one YAML document. An empty document gives a `Null` node.
pub fn load_str(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(scan_error)?;
        builder.on(event, span)?;
    }
    match builder.docs.len() {
        0 => Ok(Node {
            value: Value::Null,
            line: 1,
            col: 1,
        }),
        1 => Ok(builder.docs.remove(0)),
        n => Err(YamlError {
            line: builder.docs[1].line,
            col: 1,
            message: format!("expected a single YAML document, found {n}"),
        }),
    }
}

fn scan_error(e: ScanError) -> YamlError {
    YamlError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: format!("YAML syntax error: {}", e.info()),
    }
}

enum Frame {
    Seq {
        start: (usize, usize),
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: (usize, usize),
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
        merges: Vec<Node>,
        /// Key names of `entries`, built once the mapping outgrows [`LINEAR_KEY_SCAN`].
        names: Option<HashSet<String>>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    aliased_nodes: usize,
}

fn start(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(m) => m.entries.iter().map(|(_, v)| count_nodes(v)).sum(),
        _ => 0,
    }
}

impl Builder {
    fn on(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let (line, col) = start(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let value = if is_key && anchor == 0 {
                    // A key is kept as text only; resolving its type would be wasted work.
                    Value::Null
                } else {
                    scalar(Cow::Borrowed(&text), style, tag.as_ref()).ok_or_else(|| YamlError {
                        line,
                        col,
                        message: format!("invalid value {:?} for its tag", text),
                    })?
                };
                let key_text = is_key.then(|| text.into_owned());
                self.complete(Node { value, line, col }, anchor, key_text)
            }
            Event::SequenceStart(anchor, _) => {
                check_depth(self.stack.len(), line, col)?;
                self.stack.push(Frame::Seq {
                    start: (line, col),
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                check_depth(self.stack.len(), line, col)?;
                self.stack.push(Frame::Map {
                    start: (line, col),
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                    names: None,
                });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    start: (line, col),
                    anchor,
                    items,
                }) => self.complete(
                    Node {
                        value: Value::Seq(items),
                        line,
                        col,
                    },
                    anchor,
                    None,
                ),
                _ => Err(YamlError {
                    line,
                    col,
                    message: "unbalanced sequence end".to_string(),
                }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    start: (line, col),
                    anchor,
                    entries,
                    merges,
                    ..
                }) => {
                    let map = merged(entries, merges)?;
                    self.complete(
                        Node {
                            value: Value::Map(map),
                            line,
                            col,
                        },
                        anchor,
                        None,
                    )
                }
                _ => Err(YamlError {
                    line,
                    col,
                    message: "unbalanced mapping end".to_string(),
                }),
            },
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(YamlError {
                        line,
                        col,
                        message: "alias refers to an unknown anchor".to_string(),
                    });
                };
                self.aliased_nodes += count_nodes(target);
                if self.aliased_nodes > ALIAS_BUDGET {
                    return Err(YamlError {
                        line,
                        col,
                        message: format!(
                            "aliases expand to more than {ALIAS_BUDGET} nodes; refusing to load"
                        ),
                    });
                }
                let mut node = target.clone();
                node.line = line;
                node.col = col;
                self.complete(node, 0, None)
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    /// A node is finished: register its anchor and hand it to its parent. `key_text` is the
    /// scalar's text when the node stands where its mapping expects a key (`None` for
    /// collections and aliases, which cannot be keys).
    fn complete(
        &mut self,
        node: Node,
        anchor: usize,
        key_text: Option<String>,
    ) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.docs.push(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                key,
                merges,
                names,
                ..
            }) => match key.take() {
                None => {
                    let Some(name) = key_text else {
                        return Err(YamlError {
                            line: node.line,
                            col: node.col,
                            message: "mapping keys must be scalars".to_string(),
                        });
                    };
                    if name != "<<" && !note_key(names, entries, &name) {
                        return Err(YamlError {
                            line: node.line,
                            col: node.col,
                            message: format!("duplicated key in mapping: {name:?}"),
                        });
                    }
                    *key = Some(Key {
                        name,
                        line: node.line,
                    });
                    Ok(())
                }
                Some(k) if k.name == "<<" => {
                    merges.push(node);
                    Ok(())
                }
                Some(k) => {
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// Refuses to open a collection below [`MAX_DEPTH`] open ones.
fn check_depth(open: usize, line: usize, col: usize) -> Result<(), YamlError> {
    if open >= MAX_DEPTH {
        return Err(YamlError {
            line,
            col,
            message: format!("collections nested deeper than {MAX_DEPTH} levels; refusing to load"),
        });
    }
    Ok(())
}

/// Records `name` as a key of the mapping being built; false when it is already there.
fn note_key(names: &mut Option<HashSet<String>>, entries: &[(Key, Node)], name: &str) -> bool {
    if names.is_none() && entries.len() < LINEAR_KEY_SCAN {
        return !entries.iter().any(|(k, _)| k.name == name);
    }
    let set = names.get_or_insert_with(|| entries.iter().map(|(k, _)| k.name.clone()).collect());
    set.insert(name.to_string())
}

fn scalar(
    text: Cow<'_, str>,
    style: saphyr_parser::ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
) -> Option<Value> {
    if style == saphyr_parser::ScalarStyle::Plain && tag.is_none() {
        return Some(super::resolve11::resolve_plain(&text));
    }
    Some(
        match Scalar::parse_from_cow_and_metadata(text, style, tag)? {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(b),
            Scalar::Integer(i) => Value::Int(i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => Value::Str(s.into_owned()),
        },
    )
}

/// The pairs one `<<` value merges in: a mapping's, or each listed mapping's in list order.
fn merge_sources(merge: Node) -> Result<Vec<(Key, Node)>, YamlError> {
    match merge.value {
        Value::Map(m) => Ok(m.entries),
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for n in items {
                match n.value {
                    Value::Map(m) => maps.push(m.entries),
                    other => {
                        return Err(YamlError {
                            line: n.line,
                            col: n.col,
                            message: format!(
                                "merge key `<<` expects mappings, found {}",
                                other.type_name()
                            ),
                        });
                    }
                }
            }
            Ok(maps.into_iter().flatten().collect())
        }
        other => Err(YamlError {
            line: merge.line,
            col: merge.col,
            message: format!(
                "merge key `<<` expects a mapping or a list of mappings, found {}",
                other.type_name()
            ),
        }),
    }
}

/// A mapping with its merge keys applied as PyYAML (6.0.3 and later) applies them: the merged
/// pairs first, in merge order, the first of a key kept; then the mapping's own pairs, which
/// override a merged value in place (Python dict semantics).
fn merged(own: Vec<(Key, Node)>, merges: Vec<Node>) -> Result<Mapping, YamlError> {
    if merges.is_empty() {
        return Ok(Mapping { entries: own });
    }
    // Positions by key name, so merging stays linear in the number of keys.
    let mut entries: Vec<(Key, Node)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for merge in merges {
        for (k, v) in merge_sources(merge)? {
            if !index.contains_key(&k.name) {
                index.insert(k.name.clone(), entries.len());
                entries.push((k, v));
            }
        }
    }
    for (k, v) in own {
        match index.get(&k.name) {
            Some(&i) => entries[i] = (k, v),
            None => {
                index.insert(k.name.clone(), entries.len());
                entries.push((k, v));
            }
        }
    }
    Ok(Mapping { entries })
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
        assert_eq!(m.get("a").unwrap().to_json(), m.get("b").unwrap().to_json());
        assert!(m.get("c").unwrap().is_null());
        assert_eq!(m.get("a").unwrap().line, 4);
        assert_eq!(m.key("c").unwrap().line, 5);
    }

    #[test]
    fn merge_keys_do_not_override() {
        let n = load_str("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n").unwrap();
        let d = n.get_path(&["d"]).unwrap().as_map().unwrap();
        assert_eq!(d.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(d.get("y").unwrap().as_i64(), Some(3));
    }

    #[test]
    fn merge_order_is_pyyamls() {
        // PyYAML 6.0.4: {'x': 1, 'y': 3, 'z': 0, 'w': 5}: merged pairs first in list order, own
        // keys override in place, the first mapping of the list wins.
        let n = load_str(
            "a: &a {x: 1, y: 2}\nb: &b {z: 0, y: 9}\nd:\n  w: 5\n  <<: [*a, *b]\n  y: 3\n",
        )
        .unwrap();
        let d = n.get_path(&["d"]).unwrap().as_map().unwrap();
        let keys: Vec<_> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["x", "y", "z", "w"]);
        assert_eq!(d.get("y").unwrap().as_i64(), Some(3));
        let n = load_str("a: &a {x: 1, y: 2}\nb: &b {y: 9}\nd:\n  <<: [*a, *b]\n").unwrap();
        let d = n.get_path(&["d"]).unwrap().as_map().unwrap();
        assert_eq!(
            d.get("y").unwrap().as_i64(),
            Some(2),
            "first mapping of the list wins"
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = load_str("a: 1\n  b: [\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = load_str("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("duplicated key"), "{e}");
        let e = load_str("a: *nope\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = load_str("? [a]\n: 1\n").unwrap_err();
        assert!(e.message.contains("keys must be scalars"), "{e}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = load_str(&text).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
            let mut text = String::new();
            for _ in 0..50_000 {
                text.push_str(open);
            }
            text.push('1');
            text.push_str(&close.repeat(50_000));
            let e = load_str(&text).unwrap_err();
            // saphyr-parser has a flow-level recursion limit of its own; ours covers the rest.
            assert!(
                e.message.contains("nested deeper than 128") || e.message.contains("recursion"),
                "{e}"
            );
            assert_eq!(e.line, 1, "{e}");
        }
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(load_str(&ok).is_ok());
        let too_deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(load_str(&too_deep).is_err());
    }

    #[test]
    fn duplicate_keys_in_big_mappings() {
        let mut text: String = (0..1000).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(load_str(&text).unwrap().as_map().unwrap().len(), 1000);
        text.push_str("k17: again\n");
        let e = load_str(&text).unwrap_err();
        assert_eq!(e.line, 1001, "{e}");
        assert!(e.message.contains("\"k17\""), "{e}");
        let merged = "b: &b {x: 1, k3: 2}\nd:\n  <<: *b\n".to_string()
            + &(0..40)
                .map(|i| format!("  k{i}: {i}\n"))
                .collect::<String>();
        let d = load_str(&merged).unwrap();
        let d = d.get_path(&["d"]).unwrap().as_map().unwrap();
        assert_eq!(d.len(), 41);
        assert_eq!(d.get("k3").unwrap().as_i64(), Some(3));
    }

    #[test]
    fn plain_scalars_are_typed_as_pyyaml_types_them() {
        let n = load_str(
            "t: 02:00:00\nf: 0.9\ni: 7\nb: true\ns: '1024'\nl: 1 2 4\nn: null\ntagged: !!str 5\n1: int key\n",
        )
        .unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.get("t").unwrap().as_str(), Some("02:00:00"));
        assert_eq!(m.get("f").unwrap().as_f64(), Some(0.9));
        assert_eq!(m.get("i").unwrap().as_i64(), Some(7));
        assert_eq!(m.get("b").unwrap().as_bool(), Some(true));
        assert_eq!(m.get("s").unwrap().as_str(), Some("1024"));
        assert_eq!(m.get("l").unwrap().as_str(), Some("1 2 4"));
        assert!(m.get("n").unwrap().is_null());
        assert_eq!(m.get("tagged").unwrap().as_str(), Some("5"));
        assert_eq!(m.get("1").unwrap().as_str(), Some("int key"));
        assert_eq!(load_str("").unwrap().value, Value::Null);
        let n = load_str("a: yes\nb: 017\nc: 1:30\nd: 1e-5\ne: 1_000\nf: '017'\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.get("a").unwrap().as_bool(), Some(true));
        assert_eq!(m.get("b").unwrap().as_i64(), Some(15));
        assert_eq!(m.get("c").unwrap().as_i64(), Some(90));
        assert_eq!(m.get("d").unwrap().as_str(), Some("1e-5"));
        assert_eq!(m.get("e").unwrap().as_i64(), Some(1000));
        assert_eq!(m.get("f").unwrap().as_str(), Some("017"));
        assert!(load_str("a: 1\n---\nb: 2\n").is_err());
    }
}
