//! Escaping for text echoed to a terminal: file names, ids and YAML strings come from files we do
//! not control, and a raw escape sequence or carriage return in them could rewrite what the user
//! sees. [`escape_controls`] is the one rule; [`escape_lines`] applies it per line of a message.

use std::borrow::Cow;

/// True for characters that must not reach a terminal raw: C0 and C1 controls, DEL, and the
/// Unicode bidirectional overrides and isolates (which reorder what is displayed).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a JSON-style escape (`\n`, `\r`, `\t`, else
/// `\u001b`), borrowed when there is nothing to escape. JSON-style, so that escaping JSON output
/// (whose strings may carry raw DEL, C1 or bidi characters) keeps it valid JSON with the same
/// values. Newlines are escaped too: use [`escape_lines`] for multi-line messages.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape_controls`] applied to the text between line breaks and tabs, which are kept (both are
/// harmless layout, and tables and log tails use them).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c != '\n' && c != '\t' && is_unsafe_char(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (j, cell) in line.split('\t').enumerate() {
            if j > 0 {
                out.push('\t');
            }
            out.push_str(&escape_controls(cell));
        }
    }
    Cow::Owned(out)
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
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u001b[2Jb");
        assert_eq!(escape_controls("x\ry\nz\t"), "x\\ry\\nz\\t");
        assert_eq!(escape_controls("\u{7f}\u{9b}"), "\\u007f\\u009b");
        assert_eq!(escape_controls("a\u{202E}b"), "a\\u202eb");
        assert_eq!(escape_controls("größe ✓"), "größe ✓");
        assert_eq!(escape_lines("one\u{7}\ntwo\r\n"), "one\\u0007\ntwo\\r\n");
        // JSON with raw DEL / bidi characters in a string stays JSON with the same value.
        let json = serde_json::to_string(&"a\u{7f}b\u{202e}").unwrap();
        let escaped = escape_lines(&json);
        let back: String = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, "a\u{7f}b\u{202e}");
        assert!(matches!(escape_lines("a\tb\nc\n"), Cow::Borrowed(_)));
        assert_eq!(escape_lines("a\tb\u{1b}\n"), "a\tb\\u001b\n");
    }
}
