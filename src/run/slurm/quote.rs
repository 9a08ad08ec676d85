//! Quoting for the two readers of a batch script: bash (the body) and sbatch's own `#SBATCH`
//! directive parser (the header). They disagree, so each gets its own quoting.
//!
//! * bash: [`bash_word`] uses `shlex`'s POSIX quoting; any string without NUL survives,
//!   newlines included.
//! * sbatch: a directive is one line; sbatch splits it into words where a backslash escapes the
//!   next character *even inside single quotes*, `'…'` and `"…"` group, and an unquoted `#`
//!   starts a comment (Slurm `src/sbatch/opt.c`, `get_argument`). [`sbatch_word`] single-quotes
//!   and escapes `\` and `'` with a backslash. Control characters (a newline would end the
//!   directive and turn the rest into a shell command) and the words `hetjob`/`packjob` (which
//!   sbatch treats as job-component separators anywhere in a directive line) are refused.

use super::error::SlurmError;

/// `s` as one bash word (literal: no expansion, no splitting).
pub fn bash_word(s: &str, source_name: &str) -> Result<String, SlurmError> {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .map_err(|_| SlurmError::bad_value(source_name, "contains a NUL byte"))
}

/// `words` as bash words joined by spaces.
pub fn bash_words<S: AsRef<str>>(words: &[S], source_name: &str) -> Result<String, SlurmError> {
    words
        .iter()
        .map(|w| bash_word(w.as_ref(), source_name))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(" "))
}

/// `s` as one word of an `#SBATCH` directive line, read literally by sbatch.
pub fn sbatch_word(s: &str, source_name: &str) -> Result<String, SlurmError> {
    if s.is_empty() {
        // sbatch drops an empty quoted word *and the rest of the line*.
        return Err(SlurmError::bad_value(
            source_name,
            "is empty; an #SBATCH word cannot be empty",
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(SlurmError::bad_value(
            source_name,
            format!(
                "{s:?} contains the control character {c:?}; an #SBATCH directive is a single \
                 line, so sbatch options must be printable text"
            ),
        ));
    }
    let lower = s.to_ascii_lowercase();
    if let Some(word) = ["hetjob", "packjob"]
        .into_iter()
        .find(|w| lower.contains(w))
    {
        return Err(SlurmError::bad_value(
            source_name,
            format!(
                "{s:?} contains {word:?}, which sbatch reads as a heterogeneous-job separator \
                 anywhere in an #SBATCH line"
            ),
        ));
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "+-./:=@_,%".contains(c))
    {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

/// `--name=value` as one `#SBATCH` word.
pub fn sbatch_option(name: &str, value: &str, source_name: &str) -> Result<String, SlurmError> {
    sbatch_word(&format!("--{name}={value}"), source_name)
}

/// The words sbatch reads from one directive line (the text after `#SBATCH`), following
/// `get_argument`: backslash escapes, `'`/`"` grouping, unquoted `#` ends the line.
/// Used by tests to check [`sbatch_word`] against sbatch's rules.
pub fn sbatch_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut comment = false;
        while let Some(&c) = chars.peek() {
            // sbatch ends an unquoted word at whitespace even right after a backslash.
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            if escaped {
                escaped = false;
                word.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if let Some(q) = quote {
                if c == q {
                    quote = None;
                } else {
                    word.push(c);
                }
            } else if c == '"' || c == '\'' {
                quote = Some(c);
            } else if c == '#' {
                comment = true;
                break;
            } else {
                word.push(c);
            }
        }
        if let Some(q) = quote {
            return Err(format!("unmatched `{q}` in {line:?}"));
        }
        if !word.is_empty() {
            words.push(word);
        }
        if comment {
            return Ok(words);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_words_round_trip() {
        for s in [
            "batch",
            "a b",
            "it's",
            r"back\slash \\ two",
            r#"dq "x" $(touch x) `id` ; # not a comment"#,
            "50%",
            "ünïcode",
        ] {
            let q = sbatch_word(s, "t").unwrap();
            assert_eq!(sbatch_split(&q).unwrap(), vec![s.to_string()], "{q}");
        }
        assert!(
            sbatch_word("a\nb", "slurm.partition")
                .unwrap_err()
                .to_string()
                .contains("slurm.partition")
        );
        assert!(sbatch_word("x hetjob y", "t").is_err());
        assert_eq!(sbatch_word("--gres=gpu:4", "t").unwrap(), "--gres=gpu:4");
    }

    #[test]
    fn bash_words_are_literal() {
        assert_eq!(bash_word("plain/path-1.0", "t").unwrap(), "plain/path-1.0");
        assert_eq!(bash_word("a b", "t").unwrap(), "'a b'");
        assert!(bash_word("a\0b", "t").is_err());
    }
}
