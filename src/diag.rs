//! User-facing diagnostics: `file:line:col: error: message`, the source line,
//! and a caret under the offending text. Every stage's error converts to one.

use std::fmt::Write;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the source; `None` when the problem has no single place.
    pub span: Option<Range<usize>>,
    pub message: String,
    /// Further places worth showing (e.g. an earlier definition).
    pub notes: Vec<(Range<usize>, String)>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic { span, message: message.into(), notes: vec![], help: None }
    }

    pub fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic::new(Some(span), message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, span: Range<usize>, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Renders against the source text that the spans point into. Words
    /// of the messages and the source line are clipped (see [`clip_words`]
    /// and [`MAX_LINE_SHOWN`]), so a huge name or line is not echoed whole.
    pub fn render(&self, file: &str, src: &str) -> String {
        let mut out = String::new();
        let message = clip_words(&self.message);
        match &self.span {
            Some(span) => snippet(&mut out, file, src, span, "error", &message),
            None => {
                let _ = writeln!(out, "{file}: error: {message}");
            }
        }
        for (span, note) in &self.notes {
            snippet(&mut out, file, src, span, "note", &clip_words(note));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {}", clip_words(help));
        }
        out
    }
}

/// Characters of a source line shown around the caret, at most.
pub const MAX_LINE_SHOWN: usize = 80;
/// Characters of one word (a run without spaces: an echoed name or value)
/// shown in a message, at most.
pub const MAX_WORD_SHOWN: usize = 60;

/// `text` with every word longer than [`MAX_WORD_SHOWN`] characters cut
/// there and marked `...`: messages quote names and values from the input,
/// which may be megabytes long.
pub fn clip_words(text: &str) -> String {
    if !text.split_whitespace().any(|w| w.chars().nth(MAX_WORD_SHOWN).is_some()) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(1024));
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_whitespace() { 0 } else { run + 1 };
        if run <= MAX_WORD_SHOWN {
            out.push(c);
        } else if run == MAX_WORD_SHOWN + 1 {
            out.push_str("...");
        }
    }
    out
}

/// The part of a line shown: at most [`MAX_LINE_SHOWN`] characters starting a
/// little before character `col` (0-based), with `...` where it was cut;
/// returns the text and the caret's column in it.
fn window(line: &str, col: usize) -> (String, usize) {
    let n = line.chars().count();
    if n <= MAX_LINE_SHOWN {
        return (line.to_string(), col);
    }
    let start = col.saturating_sub(MAX_LINE_SHOWN / 4).min(n.saturating_sub(MAX_LINE_SHOWN));
    let end = (start + MAX_LINE_SHOWN).min(n);
    let lead = if start > 0 { "..." } else { "" };
    let tail = if end < n { "..." } else { "" };
    let shown: String = line.chars().skip(start).take(end - start).collect();
    (format!("{lead}{shown}{tail}"), col - start + lead.len())
}

/// `file:line:col: kind: message`, then the line and a caret under the span.
fn snippet(
    out: &mut String,
    file: &str,
    src: &str,
    span: &Range<usize>,
    kind: &str,
    message: &str,
) {
    let start = clamp_to_text(src, span.start);
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let line_no = src[..start].matches('\n').count() + 1;
    let col = src[line_start..start].chars().count() + 1;
    let mut end = span.end.clamp(start, line_end);
    while !src.is_char_boundary(end) {
        end += 1;
    }
    let (text, at) = window(&src[line_start..line_end], col - 1);
    let width =
        src[start..end].chars().count().clamp(1, text.chars().count().saturating_sub(at).max(1));
    let pad: String = text.chars().take(at).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let gutter = " ".repeat(line_no.to_string().len());
    let _ = writeln!(out, "{file}:{line_no}:{col}: {kind}: {message}");
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{line_no} | {text}");
    let _ = writeln!(out, "{gutter} | {pad}{}", "^".repeat(width));
}

/// A byte offset on a char boundary, moved back from the end of the file onto
/// its last non-blank character so "unexpected end of file" points at text.
fn clamp_to_text(src: &str, pos: usize) -> usize {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    if pos == src.len() {
        let trimmed = src.trim_end();
        if !trimmed.is_empty() {
            pos = trimmed.len() - trimmed.chars().next_back().map_or(0, char::len_utf8);
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_column_and_caret() {
        let src = "model m(%x: [1, 4]) {\n  %y = relu(%z)\n}\n";
        let at = src.find("%z").unwrap();
        let d = Diagnostic::at(at..at + 2, "undefined value `%z`");
        assert_eq!(
            d.render("m.pot", src),
            "m.pot:2:13: error: undefined value `%z`\n  |\n2 |   %y = relu(%z)\n  |             ^^\n"
        );
    }

    #[test]
    fn spans_inside_a_character_do_not_panic() {
        let src = "a\u{fffd}b";
        assert!(Diagnostic::at(1..2, "x").render("f", src).starts_with("f:1:2: error"));
        assert!(Diagnostic::at(2..99, "x").render("f", src).starts_with("f:1:2: error"));
    }

    #[test]
    fn end_of_file_points_at_the_last_character() {
        let d = Diagnostic::at(9..9, "unexpected end of file");
        assert!(d.render("f", "model m(\n").starts_with("f:1:8: error"));
        assert!(d.render("f", "").starts_with("f:1:1: error"));
    }
}
