//! The one escaping display helper: every string that comes from outside (a bundle, a
//! registry, a list) goes through it before it reaches a terminal or a log, so an entry name
//! or an error body cannot clear the screen, retitle the window or hide text behind `\r`.
//!
//! Control characters are shown as escapes (`\x1b`, `\r`, `\u{2028}`), as are the Unicode
//! line and paragraph separators and the bidirectional overrides that reorder what is shown.
//! [`escape`] escapes newlines too (one value, one line); [`escape_lines`] keeps `\n` and `\t`,
//! for whole messages whose lines airlift itself laid out. [`clip`] bounds how much of a long
//! value is echoed at all.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must never reach a terminal as is.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{feff}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_dangerous(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_dangerous(c) || keep(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\r' => write!(out, "\\r"),
            '\n' => write!(out, "\\n"),
            '\t' => write!(out, "\\t"),
            c if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    Cow::Owned(out)
}

/// `s` with every control character (newlines included) and every reordering or
/// line-separating character shown as an escape: safe to print as one line.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// Like [`escape`] but keeps `\n` and `\t`: for a whole multi-line message.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n' || c == '\t')
}

/// At most `max` characters of `s`, escaped, with the length said when cut: for echoing a
/// value that may be megabytes long.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return escape(s).into_owned();
    }
    let head: String = s.chars().take(max).collect();
    format!("{}… ({} bytes)", escape(&head), s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_sent() {
        assert_eq!(escape("plain ref:1"), "plain ref:1");
        assert_eq!(escape("\x1b[2Jbundle OK"), "\\x1b[2Jbundle OK");
        assert_eq!(escape("a\rb\nc\x0bd"), "a\\rb\\nc\\x0bd");
        assert_eq!(escape("x\u{2028}y\u{85}z"), "x\\u{2028}y\\x85z");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(
            escape_lines("one\n  two\x1b]0;t\x07"),
            "one\n  two\\x1b]0;t\\x07"
        );
        assert!(matches!(escape("ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn long_values_are_clipped() {
        let long = "a".repeat(10_000_000);
        let c = clip(&long, 64);
        assert!(c.len() < 100, "{c}");
        assert!(c.ends_with("(10000000 bytes)"), "{c}");
        assert_eq!(clip("short\r", 64), "short\\r");
    }
}
