//! `concurrency_list`: the one value both the parser and the bounds check read — a
//! space-separated string, a list of integers, or one integer.

use crate::util::yaml::{Node, Value};

use super::reader::describe;

/// Why `concurrency_list` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcurrencyListError {
    /// A word of the string form is not a positive integer.
    #[error(
        "{token:?} is not a positive integer; expected space-separated positive integers like \
         \"1 2 4 8\""
    )]
    BadWord {
        /// The word.
        token: String,
    },
    /// An item of the list form is not a positive integer.
    #[error("list item {found} is not a positive integer")]
    BadItem {
        /// The item, described (`the string "x"`).
        found: String,
    },
    /// Neither an integer, a string nor a list.
    #[error(
        "expected a positive integer, a space-separated string of them or a list, found {found}"
    )]
    WrongType {
        /// The value, described.
        found: String,
    },
    /// No values.
    #[error("the list is empty; expected at least one concurrency value")]
    Empty,
}

/// `concurrency_list`: a space-separated string, a list of integers, or one integer.
pub fn parse_concurrency_list(node: &Node) -> Result<Vec<u64>, ConcurrencyListError> {
    let values: Vec<u64> = match &node.value {
        Value::Int(i) if *i > 0 => vec![*i as u64],
        Value::Str(s) => s
            .split_whitespace()
            .map(|tok| {
                tok.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    ConcurrencyListError::BadWord {
                        token: tok.to_string(),
                    }
                })
            })
            .collect::<Result<_, _>>()?,
        Value::Seq(items) => items
            .iter()
            .map(|item| match item.value {
                Value::Int(i) if i > 0 => Ok(i as u64),
                _ => Err(ConcurrencyListError::BadItem {
                    found: describe(&item.value),
                }),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(ConcurrencyListError::WrongType {
                found: describe(other),
            });
        }
    };
    if values.is_empty() {
        return Err(ConcurrencyListError::Empty);
    }
    Ok(values)
}
