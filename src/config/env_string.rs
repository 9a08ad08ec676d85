//! Upstream's environment strings (`worker_env_var: "A=1 B=2"`): a list of `NAME=value` words,
//! each split at its first `=`.
//!
//! Upstream's Python harness splits on whitespace, silently drops words without `=` and keeps
//! quote characters inside names and values; its shell launcher, which is what really starts the
//! workers in CI, interprets the quotes. Real configs rely on that (e.g.
//! `"PYTHONWARNINGS=ignore::DeprecationWarning:cutlass.cute.core"`), so we split the way the shell
//! does (POSIX shell words) and reject words without `=`, instead of mangling or dropping them.

/// An ordered list of environment additions; later entries override earlier ones with the same name.
pub type EnvList = Vec<(String, String)>;

/// Why an env string was rejected; each variant names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvStringError {
    /// A quote is never closed.
    #[error("{text:?} has an unbalanced quote; expected shell-style NAME=value words")]
    UnbalancedQuote {
        /// The whole env string.
        text: String,
    },
    /// A word without `=`.
    #[error("token {token:?} has no `=`; expected space-separated NAME=value pairs")]
    NoEquals {
        /// The word.
        token: String,
    },
    /// `=value`.
    #[error("token {token:?} has an empty variable name")]
    EmptyName {
        /// The word.
        token: String,
    },
    /// A name with characters outside `[A-Za-z0-9_]`.
    #[error("token {token:?}: {name:?} is not a valid environment variable name")]
    BadName {
        /// The word.
        token: String,
        /// The name part of it.
        name: String,
    },
}

/// Parses an env string. On error, names the offending token and why.
pub fn parse_env_string(text: &str) -> Result<EnvList, EnvStringError> {
    let mut out = EnvList::new();
    let words = shlex::split(text).ok_or_else(|| EnvStringError::UnbalancedQuote {
        text: text.to_string(),
    })?;
    for token in &words {
        let Some((name, value)) = token.split_once('=') else {
            return Err(EnvStringError::NoEquals {
                token: token.clone(),
            });
        };
        if name.is_empty() {
            return Err(EnvStringError::EmptyName {
                token: token.clone(),
            });
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(EnvStringError::BadName {
                token: token.clone(),
                name: name.to_string(),
            });
        }
        set(&mut out, name, value);
    }
    Ok(out)
}

/// Sets `name` in `env`, replacing an earlier value in place.
pub fn set(env: &mut EnvList, name: &str, value: &str) {
    if let Some(slot) = env.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value.to_string();
    } else {
        env.push((name.to_string(), value.to_string()));
    }
}

/// `base` followed by `extra` (extra wins on conflicts).
pub fn merge(base: &EnvList, extra: &EnvList) -> EnvList {
    let mut out = base.clone();
    for (k, v) in extra {
        set(&mut out, k, v);
    }
    out
}

/// Value of `name` in `env`.
pub fn get<'a>(env: &'a EnvList, name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_upstream() {
        let env = parse_env_string("  A=1 B=x=y\tC= A=2 ").unwrap();
        assert_eq!(
            env,
            vec![
                ("A".into(), "2".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
        assert_eq!(parse_env_string("").unwrap(), EnvList::new());
    }

    #[test]
    fn quotes_are_shell_words_and_bare_words_are_errors() {
        assert_eq!(
            parse_env_string("A=1 \"W=ignore::Dep:cute core\" B='x y'").unwrap(),
            vec![
                ("A".into(), "1".into()),
                ("W".into(), "ignore::Dep:cute core".into()),
                ("B".into(), "x y".into())
            ]
        );
        let err = |text| parse_env_string(text).unwrap_err().to_string();
        assert_eq!(
            err("A=1 oops"),
            "token \"oops\" has no `=`; expected space-separated NAME=value pairs"
        );
        assert_eq!(
            err("A=\"1"),
            "\"A=\\\"1\" has an unbalanced quote; expected shell-style NAME=value words"
        );
        assert_eq!(err("=1"), "token \"=1\" has an empty variable name");
        assert_eq!(
            err("A-B=1"),
            "token \"A-B=1\": \"A-B\" is not a valid environment variable name"
        );
    }
}
