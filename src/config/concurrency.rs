//! `concurrency_list`: the one value both the parser and the bounds check read — a
//! space-separated string, a list of integers, or one integer.

use crate::util::yaml::{Node, Value};

use super::reader::describe;

/// `concurrency_list`: a space-separated string, a list of integers, or one integer.
pub fn parse_concurrency_list(node: &Node) -> Result<Vec<u64>, String> {
    let values: Vec<u64> = match &node.value {
        Value::Int(i) if *i > 0 => vec![*i as u64],
        Value::Str(s) => s
            .split_whitespace()
            .map(|tok| {
                tok.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    format!(
                        "{tok:?} is not a positive integer; expected space-separated positive \
                         integers like \"1 2 4 8\""
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Value::Seq(items) => items
            .iter()
            .map(|item| match item.value {
                Value::Int(i) if i > 0 => Ok(i as u64),
                _ => Err(format!(
                    "list item {} is not a positive integer",
                    describe(&item.value)
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "expected a positive integer, a space-separated string of them or a list, found {}",
                describe(other)
            ));
        }
    };
    if values.is_empty() {
        return Err("the list is empty; expected at least one concurrency value".to_string());
    }
    Ok(values)
}
