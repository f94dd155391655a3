//! Text to IR: the logos lexer, the LALRPOP grammar (`grammar/potc.lalrpop`),
//! and the checks that turn the syntax tree into a verified `Graph`.

pub mod ast;
pub mod lexer;
mod to_ir;

pub(crate) use to_ir::suggest;

use crate::diag::Diagnostic;
use crate::ir::{verify, Graph};
use lalrpop_util::ParseError;
use lexer::{LexError, LexErrorKind, Lexer, Token};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_qualifications, dead_code)]
    grammar,
    "/potc.rs"
);

/// Parses `.pot` text into its syntax tree.
pub fn parse_ast(src: &str) -> Result<ast::Model, Diagnostic> {
    grammar::ModelParser::new().parse(Lexer::new(src)).map_err(|e| parse_error(src, e))
}

/// Parses, builds and verifies: the text's graph, or the first mistake in it.
pub fn parse(src: &str) -> Result<Graph, Diagnostic> {
    let model = parse_ast(src)?;
    let graph = to_ir::build(&model)?;
    verify(&graph).map_err(|e| Diagnostic::new(e.node.and_then(|n| graph.span(n)), e.message))?;
    Ok(graph)
}

fn parse_error(src: &str, e: ParseError<usize, Token<'_>, LexError>) -> Diagnostic {
    match e {
        ParseError::InvalidToken { location } => {
            Diagnostic::at(location..location + 1, "invalid token")
        }
        ParseError::UnrecognizedEof { location, expected } => {
            if Lexer::new(src).next().is_none() {
                Diagnostic::at(0..0, "empty file: no model here")
                    .with_help("a model starts with `model NAME(%x: [channels, length]) {`")
            } else {
                Diagnostic::at(
                    location..location,
                    format!("unexpected end of file; expected {}", expected_list(&expected)),
                )
            }
        }
        ParseError::UnrecognizedToken { token: (l, tok, r), expected } if expected.is_empty() => {
            Diagnostic::at(l..r, format!("unexpected {tok} after the end of the model"))
        }
        ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
            Diagnostic::at(l..r, format!("expected {}, found {tok}", expected_list(&expected)))
        }
        ParseError::ExtraToken { token: (l, tok, r) } => {
            Diagnostic::at(l..r, format!("unexpected {tok} after the end of the model"))
        }
        ParseError::User { error } => {
            let message = match error.kind {
                LexErrorKind::StrayCharacter => {
                    let c = src.get(error.span.clone()).unwrap_or("?");
                    format!("stray character `{}`", c.escape_debug())
                }
                LexErrorKind::UnterminatedComment => {
                    "unterminated block comment: `/*` has no `*/`".into()
                }
                LexErrorKind::IntegerOutOfRange => "integer literal out of range (64-bit)".into(),
                LexErrorKind::FloatOutOfRange => "number out of range".into(),
                LexErrorKind::NestedTooDeep => {
                    format!("brackets nested deeper than {}", lexer::MAX_NESTING)
                }
            };
            Diagnostic::at(error.span, message)
        }
    }
}

/// LALRPOP's terminal names, as a reader would say them.
fn expected_list(expected: &[String]) -> String {
    let words: Vec<String> = expected
        .iter()
        .map(|t| match t.as_str() {
            "VALUE" => "a value like `%x`".to_string(),
            "IDENT" => "a name".to_string(),
            "INT" => "an integer".to_string(),
            "FLOAT" => "a number".to_string(),
            quoted => format!("`{}`", quoted.trim_matches('"')),
        })
        .collect();
    match words.as_slice() {
        [] => "nothing more".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
