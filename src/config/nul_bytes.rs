//! NUL bytes in config strings. Config values reach processes as argv elements, environment
//! variables and file names, none of which can hold a NUL byte: a YAML string like `"a\0b"`
//! used to pass every check and fail only when the process was spawned, after other workers had
//! started. Any string or key with a NUL is a config error naming its key path and line.

use crate::util::yaml::{Node, Value};

use super::error::Problems;

/// Records a problem for every string value or key under `root` that contains a NUL byte.
pub fn check_no_nul(root: &Node, p: &mut Problems) {
    // Iterative walk (the loader caps depth, but this check should not rely on it).
    let mut stack: Vec<(String, &Node)> = vec![(String::new(), root)];
    while let Some((path, node)) = stack.pop() {
        match &node.value {
            Value::Str(s) if s.contains('\0') => p.push(
                &path,
                node.line,
                "contains a NUL byte; config values are passed to processes, which cannot take one",
            ),
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}[{i}]"), item));
                }
            }
            Value::Map(m) => {
                for (k, v) in &m.entries {
                    let child = if path.is_empty() {
                        k.name.clone()
                    } else {
                        format!("{path}.{}", k.name)
                    };
                    if k.name.contains('\0') {
                        p.push(&child, k.line, "the key contains a NUL byte");
                    }
                    stack.push((child, v));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::yaml::load_str;

    #[test]
    fn nul_bytes_are_named_by_key_and_line() {
        let root = load_str(
            "environment:\n  worker_env_var: \"A=1\\0B=2\"\nlist: [ok, \"x\\0\"]\n\"k\\0\": 1\n",
        )
        .unwrap();
        let mut p = Problems::default();
        check_no_nul(&root, &mut p);
        let e = p
            .into_result(std::path::Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.yaml:2: `environment.worker_env_var`: contains a NUL"),
            "{e}"
        );
        assert!(e.contains("c.yaml:3: `list[1]`"), "{e}");
        assert!(e.contains("c.yaml:4: `k"), "{e}");
        let mut p = Problems::default();
        check_no_nul(&load_str("a: [b, {c: d}]\n").unwrap(), &mut p);
        assert!(p.is_empty());
    }
}
