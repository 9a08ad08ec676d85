//! The `trtllm_custom` JSON Lines dataset format, shared by the bench client (which loads it) and
//! the planner (which checks a plan's dataset file before anything starts).
//!
//! One request per line: `{"input": {"messages": [{…}, {"role": "user", "content": "…"}],
//! "max_tokens": N}}`; the prompt is the second message's content, as TensorRT-LLM's
//! `CustomDataset` reads it. Other keys are ignored; blank lines are skipped.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A malformed line of a `trtllm_custom` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct CustomDatasetError {
    /// The dataset file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Deserialize)]
struct CustomLine {
    input: CustomInput,
}

#[derive(Deserialize)]
struct CustomInput {
    messages: Vec<CustomMessage>,
    max_tokens: u32,
}

#[derive(Deserialize)]
struct CustomMessage {
    content: String,
}

/// One parsed `trtllm_custom` line: the second message's content and `max_tokens`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomEntry {
    /// `input.messages[1].content`.
    pub prompt: String,
    /// `input.max_tokens`.
    pub max_tokens: u32,
}

/// Parses a `trtllm_custom` JSON Lines text; `path` only names the file in errors.
/// Blank lines are skipped; any other malformed line is an error naming file and line.
pub fn parse_custom(path: &Path, text: &str) -> Result<Vec<CustomEntry>, CustomDatasetError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| CustomDatasetError {
            path: path.to_path_buf(),
            line: idx + 1,
            message,
        };
        let parsed: CustomLine = serde_json::from_str(line).map_err(|e| {
            err(format!(
                "expected {{\"input\": {{\"messages\": [{{…}}, {{\"role\": \"user\", \"content\": \
                 \"…\"}}], \"max_tokens\": N}}}}: {e}"
            ))
        })?;
        let mut messages = parsed.input.messages;
        if messages.len() < 2 {
            return Err(err(format!(
                "input.messages has {} message(s); the prompt is the second message's content",
                messages.len()
            )));
        }
        out.push(CustomEntry {
            prompt: std::mem::take(&mut messages[1].content),
            max_tokens: parsed.input.max_tokens,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_lines_are_parsed_and_errors_name_the_line() {
        let p = Path::new("data.json");
        let good = r#"{"input": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "t1 t2 t3"}], "max_tokens": 7}, "extra": 1}"#;
        let text = format!("{good}\n\n{good}\n");
        let e = parse_custom(p, &text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].prompt, "t1 t2 t3");
        assert_eq!(e[0].max_tokens, 7);

        let one_msg =
            r#"{"input": {"messages": [{"role": "user", "content": "x"}], "max_tokens": 7}}"#;
        let err = parse_custom(p, &format!("{good}\n{one_msg}\n")).unwrap_err();
        assert_eq!(err.line, 2);
        let err = err.to_string();
        assert!(
            err.starts_with("data.json:2:") && err.contains("second message"),
            "{err}"
        );
        let err = parse_custom(p, "{not json").unwrap_err().to_string();
        assert!(err.starts_with("data.json:1:"), "{err}");
        let err = parse_custom(p, r#"{"input": {"messages": [], "max_tokens": -1}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("data.json:1:"), "{err}");
    }
}
