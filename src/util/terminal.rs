//! Escaping for text echoed to a terminal: file names, ids and YAML strings come from files we do
//! not control, and a raw escape sequence or carriage return in them could rewrite what the user
//! sees. [`escape_controls`] is the one rule; [`escape_lines`] applies it per line of a message.

use std::borrow::Cow;

/// True for characters that must not reach a terminal raw: C0 and C1 controls, DEL, and the
/// Unicode bidirectional overrides and isolates (which reorder what is displayed).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a Rust-style `\u{..}` escape (`\n`, `\r`, `\t`
/// as themselves), borrowed when there is nothing to escape. Newlines are escaped too: use
/// [`escape_lines`] for multi-line messages.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape_controls`] applied to each line, keeping the line breaks themselves.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe_char(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(escape_controls)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_borrowed() {
        assert!(matches!(
            escape_controls("disagg-a_b.yaml"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_controls("x\ry\nz\t"), "x\\ry\\nz\\t");
        assert_eq!(escape_controls("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
        assert_eq!(escape_controls("a\u{202E}b"), "a\\u{202e}b");
        assert_eq!(escape_controls("größe ✓"), "größe ✓");
        assert_eq!(escape_lines("one\u{7}\ntwo\r\n"), "one\\u{7}\ntwo\\r\n");
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
    }
}
