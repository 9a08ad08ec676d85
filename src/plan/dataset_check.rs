//! Checking a plan's dataset file before anything starts: a folder, an empty file or a file
//! that is not `trtllm_custom` JSON Lines is reported by `perfsanity check` and fails the trial
//! before the first worker is launched, instead of failing the client minutes later.

use std::io::Read;
use std::path::Path;

use super::DatasetPlan;
use crate::util::custom_dataset::parse_custom;

/// How much of a dataset file is read and parsed up front (whole lines within this many bytes;
/// the client parses the rest when it loads the file).
pub const DATASET_PREFLIGHT_BYTES: u64 = 1024 * 1024;

/// Checks the dataset a plan names: an existing file must be a `trtllm_custom` JSONL file with
/// at least one request; a generated stand-in's path must not be taken by a folder.
pub fn check_dataset(dataset: &DatasetPlan) -> Result<(), String> {
    match dataset {
        DatasetPlan::File { path, key } => {
            check_jsonl_file(path).map_err(|e| format!("dataset file ({key}) {e}"))
        }
        DatasetPlan::Generated { path, key, .. } if path.is_dir() => Err(format!(
            "dataset file ({key}): the generated stand-in's path {} is a folder",
            shown(path)
        )),
        _ => Ok(()),
    }
}

fn shown(path: &Path) -> String {
    crate::util::terminal::escape_controls(&path.to_string_lossy()).into_owned()
}

/// `path` is a regular file whose leading lines parse as `trtllm_custom` requests.
pub fn check_jsonl_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", shown(path)))?;
    if meta.is_dir() {
        return Err(format!(
            "{}: is a folder, expected a JSONL file",
            shown(path)
        ));
    }
    if !meta.is_file() {
        return Err(format!("{}: is not a regular file", shown(path)));
    }
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(DATASET_PREFLIGHT_BYTES).read_to_end(&mut head))
        .map_err(|e| format!("{}: cannot read: {e}", shown(path)))?;
    // Only whole lines: a long file is cut at the last newline inside the window.
    if meta.len() > head.len() as u64 {
        let end = head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        head.truncate(end);
    }
    let text = match std::str::from_utf8(&head) {
        Ok(t) => t,
        Err(e) => {
            let line = head[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            return Err(format!("{}:{line}: not UTF-8 text", shown(path)));
        }
    };
    let entries = parse_custom(path, text).map_err(|e| e.to_string())?;
    if entries.is_empty() && meta.len() <= DATASET_PREFLIGHT_BYTES {
        return Err(format!(
            "{}: holds no requests; expected trtllm_custom JSON Lines",
            shown(path)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}], "max_tokens": 8}}"#;

    #[test]
    fn folders_empty_files_and_non_jsonl_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        assert!(check_jsonl_file(&file("ok.jsonl", &format!("{LINE}\n\n{LINE}\n"))).is_ok());
        let e = check_jsonl_file(dir.path()).unwrap_err();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_jsonl_file(&file("empty.jsonl", "\n\n")).unwrap_err();
        assert!(e.contains("no requests"), "{e}");
        let e = check_jsonl_file(&file("csv.jsonl", &format!("{LINE}\na,b,c\n"))).unwrap_err();
        assert!(e.contains("csv.jsonl") && e.contains('2'), "{e}");
        let e = check_jsonl_file(&dir.path().join("missing.jsonl")).unwrap_err();
        assert!(e.contains("missing.jsonl"), "{e}");
        // A long file is checked on its leading whole lines only.
        let long: String = std::iter::repeat_n(format!("{LINE}\n"), 20_000).collect();
        assert!(check_jsonl_file(&file("long.jsonl", &format!("{long}not json"))).is_ok());
        let plan = DatasetPlan::File {
            path: dir.path().to_path_buf(),
            key: "benchmark.dataset_file".to_string(),
        };
        let e = check_dataset(&plan).unwrap_err();
        assert!(
            e.starts_with("dataset file (benchmark.dataset_file)"),
            "{e}"
        );
    }
}
