//! The module graph, checked. A text scan of every file under `src/` (comments and the
//! `#[cfg(test)] mod tests` block skipped) resolves each `crate::…`, `super::…` and `self::…`
//! path — through the modules' `pub use` re-exports — to the module that defines it, which
//! gives the imports between modules. Two rules hold (`docs/DESIGN.md`, "Module graph"):
//!
//! * **down the pipeline**: between top-level modules every import goes down `app` → `run` →
//!   `report` → `results` → `measure` → `plan` → `catalog` → `config` → `util`, with `tools`
//!   (simulator, native client) beside the stages on `util` and the `sim:` schema
//!   (`config::sim_section`) only;
//! * **no cycles at any depth**: within every folder, the imports between its sibling modules
//!   form no cycle (a module's `mod.rs` and its own children are one unit: a child using its
//!   parent's types is not a cycle, two children using each other is).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest first; each may import only modules to its left, with the
/// exception of `tools`, which may import only `util`.
const LAYERS: [&str; 10] = [
    "util", "tools", "config", "catalog", "plan", "measure", "results", "report", "run", "app",
];

/// A module path (`["run", "launch", "steps"]`; the crate root is empty).
type ModPath = Vec<String>;

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// One source file: its module and its code (comments and unit tests removed).
struct SourceFile {
    rel: String,
    module: ModPath,
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without line comments and without the trailing unit-test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "main.rs" {
            continue; // the binary: it imports the library as `perfsanity::`
        }
        let mut module: ModPath = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_string)
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        out.push(SourceFile { rel, module, code });
    }
    out
}

/// The `use` trees of `code` expanded into flat paths (`use a::{b, c::d};` → `a::b`, `a::c::d`),
/// plus every other `crate::`/`super::`/`self::` path written inline.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    let mut inline = String::new();
    while let Some(i) = find_use(rest) {
        inline.push_str(&rest[..i]);
        let after = &rest[i..];
        let start = after.find("use ").unwrap() + 4;
        let end = after[start..].find(';').map_or(after.len(), |e| start + e);
        expand(after[start..end].trim(), "", &mut out);
        rest = &after[(end + 1).min(after.len())..];
    }
    inline.push_str(rest);
    for root in ["crate::", "super::", "self::"] {
        for (i, _) in inline.match_indices(root) {
            let before = inline[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = inline[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.trim_end_matches(':').to_string());
        }
    }
    out
}

/// Position of the next `use` statement (at a line start, possibly `pub`/`pub(crate)`).
fn find_use(code: &str) -> Option<usize> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if t.starts_with("use ") {
            return Some(offset + line.find("use ").unwrap_or(0));
        }
        offset += line.len();
    }
    None
}

/// Expands one use tree into flat paths under `prefix`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or(tree).trim();
            out.push(format!("{prefix}{path}"));
        }
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut part = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&part, &format!("{prefix}{head}"), out);
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                part.push(c);
            }
            expand(&part, &format!("{prefix}{head}"), out);
        }
    }
}

/// The modules and what each re-exports from its children (`pub use child::Name` → Name →
/// child), to resolve `super::Name` to the child that defines it.
struct Tree {
    modules: BTreeSet<ModPath>,
    reexports: HashMap<ModPath, HashMap<String, ModPath>>,
}

impl Tree {
    fn of(files: &[SourceFile]) -> Tree {
        let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
        let mut tree = Tree {
            modules,
            reexports: HashMap::new(),
        };
        for f in files {
            let mut names = HashMap::new();
            for line in f.code.split(';') {
                let t = line.trim_start();
                let Some(body) = t.strip_prefix("pub use ") else {
                    continue;
                };
                let mut flat = Vec::new();
                expand(body, "", &mut flat);
                for p in flat {
                    let segs: Vec<&str> = p.split("::").collect();
                    let (Some(first), Some(name)) = (segs.first(), segs.last()) else {
                        continue;
                    };
                    let mut child = f.module.clone();
                    child.push(first.to_string());
                    if *first != "crate" && tree.modules.contains(&child) {
                        names.insert(name.to_string(), child);
                    }
                }
            }
            tree.reexports.insert(f.module.clone(), names);
        }
        tree
    }

    /// The module `path` (as written in `from`) names, or `None` for paths outside the crate.
    fn resolve(&self, from: &[String], path: &str) -> Option<ModPath> {
        let mut segs = path.split("::").filter(|s| !s.is_empty()).peekable();
        let mut at: ModPath = match *segs.peek()? {
            "crate" => Vec::new(),
            "self" => from.to_vec(),
            "super" => from.to_vec(),
            _ => return None,
        };
        while let Some(&s) = segs.peek() {
            match s {
                "crate" | "self" => {}
                "super" => {
                    at.pop();
                }
                _ => break,
            }
            segs.next();
        }
        for s in segs {
            let mut child = at.clone();
            child.push(s.to_string());
            if self.modules.contains(&child) {
                at = child;
            } else if let Some(target) = self.reexports.get(&at).and_then(|r| r.get(s)) {
                at = target.clone();
            } else {
                break;
            }
        }
        Some(at)
    }
}

/// Every import between two different modules: (from, to) → the files that make it.
fn imports() -> BTreeMap<(ModPath, ModPath), BTreeSet<String>> {
    let files = sources();
    let tree = Tree::of(&files);
    let mut edges: BTreeMap<(ModPath, ModPath), BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        for p in paths_in(&f.code) {
            if let Some(to) = tree.resolve(&f.module, &p)
                && to != f.module
            {
                edges
                    .entry((f.module.clone(), to))
                    .or_default()
                    .insert(f.rel.clone());
            }
        }
    }
    edges
}

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|m| *m == module)
        .unwrap_or_else(|| panic!("src/{module} is not in LAYERS: give it a place"))
}

/// Whether top-level `from` may import `to` (`path`: the imported module): downward only; the
/// tools stand apart (they import only `util` and the `sim:` schema, and only the
/// process-running stages and the edge use them).
fn allowed(from: &str, to: &str, path: &[String]) -> bool {
    if from == "tools" {
        return to == "util" || path.starts_with(&["config".into(), "sim_section".into()]);
    }
    if to == "tools" {
        return matches!(from, "run" | "app");
    }
    rank(to) < rank(from)
}

#[test]
fn every_import_goes_down_the_pipeline() {
    let mut wrong = Vec::new();
    for ((from, to), files) in imports() {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue; // lib.rs
        };
        if a == b || allowed(a, b, &to) {
            continue;
        }
        for file in files {
            wrong.push(format!("src/{file}: `{a}` imports `crate::{}`", show(&to)));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the pipeline (docs/DESIGN.md, \"Module graph\"):\n{}",
        wrong.join("\n")
    );
}

/// The strongly connected components of more than one node (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: HashMap<&'g ModPath, usize>,
        low: HashMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The import between the two siblings under the deepest common parent of `from` and `to`;
/// `None` when one contains the other.
fn sibling_edge(from: &[String], to: &[String]) -> Option<(ModPath, ModPath)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

#[test]
fn sibling_modules_never_import_each_other_in_a_cycle() {
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    let mut why: BTreeMap<(ModPath, ModPath), BTreeSet<String>> = BTreeMap::new();
    for ((from, to), files) in imports() {
        if let Some((a, b)) = sibling_edge(&from, &to) {
            graph.entry(a.clone()).or_default().insert(b.clone());
            why.entry((a, b)).or_default().extend(files);
        }
    }
    let mut wrong = Vec::new();
    for component in cycles(&graph) {
        let names: Vec<String> = component.iter().map(|m| show(m)).collect();
        let mut text = format!("cycle among {}:", names.join(", "));
        for a in &component {
            for b in graph.get(a).into_iter().flatten() {
                if component.contains(b) {
                    let files = &why[&(a.clone(), b.clone())];
                    text.push_str(&format!("\n  {} → {} ({files:?})", show(a), show(b)));
                }
            }
        }
        wrong.push(text);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_scanner_resolves_re_exports_and_finds_a_cycle() {
    // The checker itself: a `super::Name` re-exported by the parent resolves to the child that
    // defines it, and a two-module cycle is reported.
    let mut flat = Vec::new();
    expand("super::{a::X, b::{Y, Z as W}}", "", &mut flat);
    assert_eq!(flat, ["super::a::X", "super::b::Y", "super::b::Z"]);
    let m = |s: &str| -> ModPath { s.split("::").map(str::to_string).collect() };
    let tree = Tree {
        modules: [m("p"), m("p::a"), m("p::b")].into_iter().collect(),
        reexports: [(m("p"), [("Thing".to_string(), m("p::b"))].into())].into(),
    };
    assert_eq!(tree.resolve(&m("p::a"), "super::Thing"), Some(m("p::b")));
    assert_eq!(tree.resolve(&m("p::a"), "crate::p::b::f"), Some(m("p::b")));
    assert_eq!(tree.resolve(&m("p::a"), "std::fs"), None);
    assert_eq!(sibling_edge(&m("p::a"), &m("p")), None);
    let graph: BTreeMap<ModPath, BTreeSet<ModPath>> = [
        (m("p::a"), [m("p::b")].into()),
        (m("p::b"), [m("p::a")].into()),
    ]
    .into();
    assert_eq!(cycles(&graph), vec![vec![m("p::a"), m("p::b")]]);
}

#[test]
fn the_allowed_graph_has_no_cycles() {
    // Downward-only edges cannot form a cycle; this checks the rule itself, so a future edit of
    // `allowed` that lets two modules import each other fails here.
    for a in LAYERS {
        for b in LAYERS {
            let path = vec![b.to_string()];
            let back = vec![a.to_string()];
            assert!(
                !(a != b && allowed(a, b, &path) && allowed(b, a, &back)),
                "{a} and {b} may import each other"
            );
        }
    }
}
