//! The logos lexer for `.pot` text. Tokens carry byte spans; LALRPOP consumes
//! them through [`Lexer`], an iterator of `(start, token, end)` triples.

use logos::Logos;
use std::ops::Range;

/// What went wrong while splitting text into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LexErrorKind {
    /// A character that starts no token.
    #[default]
    StrayCharacter,
    /// `/*` without a matching `*/`.
    UnterminatedComment,
    /// An integer literal outside `i64`.
    IntegerOutOfRange,
    /// A float literal that does not fit a finite `f64`.
    FloatOutOfRange,
    /// An opening bracket beyond [`MAX_NESTING`] unclosed ones.
    NestedTooDeep,
}

/// Brackets (`(`, `[`, `{`) open at once, at most. A model needs a handful;
/// the bound keeps the syntax tree shallow enough that building, cloning
/// and dropping it (all recursive) cannot overflow the stack.
pub const MAX_NESTING: usize = 64;

/// A lexical error with the byte span it covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LexError {
    pub kind: LexErrorKind,
    pub span: Range<usize>,
}

impl LexError {
    fn at<'s>(lex: &logos::Lexer<'s, Token<'s>>, kind: LexErrorKind) -> Self {
        LexError { kind, span: lex.span() }
    }
    fn stray<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Self {
        LexError::at(lex, LexErrorKind::StrayCharacter)
    }
}

#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(error(LexError, LexError::stray))]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Token<'s> {
    #[token("/*", block_comment)]
    BlockComment,

    #[token("model")]
    Model,
    #[token("return")]
    Return,

    /// `%name`: an SSA value.
    #[regex(r"%[A-Za-z0-9_][A-Za-z0-9_.]*", |lex| &lex.slice()[1..])]
    Value(&'s str),
    #[regex(r"[A-Za-z_][A-Za-z0-9_.]*")]
    Ident(&'s str),
    #[regex(r"-?[0-9]+", parse_int)]
    Int(i64),
    #[regex(r"-?[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?", parse_float)]
    #[regex(r"-?[0-9]+[eE][+-]?[0-9]+", parse_float)]
    Float(f64),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token("=")]
    Eq,
    #[token(":")]
    Colon,
}

/// Skips a block comment (they do not nest); an unclosed one is an error at `/*`.
fn block_comment<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<logos::Skip, LexError> {
    match lex.remainder().find("*/") {
        Some(end) => {
            lex.bump(end + 2);
            Ok(logos::Skip)
        }
        None => Err(LexError::at(lex, LexErrorKind::UnterminatedComment)),
    }
}

fn parse_int<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<i64, LexError> {
    lex.slice().parse().map_err(|_| LexError::at(lex, LexErrorKind::IntegerOutOfRange))
}

fn parse_float<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<f64, LexError> {
    match lex.slice().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LexError::at(lex, LexErrorKind::FloatOutOfRange)),
    }
}

impl std::fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::BlockComment => write!(f, "comment"),
            Token::Model => write!(f, "`model`"),
            Token::Return => write!(f, "`return`"),
            Token::Value(v) => write!(f, "value `%{v}`"),
            Token::Ident(s) => write!(f, "identifier `{s}`"),
            Token::Int(i) => write!(f, "integer `{i}`"),
            Token::Float(x) => write!(f, "number `{x:?}`"),
            Token::LParen => write!(f, "`(`"),
            Token::RParen => write!(f, "`)`"),
            Token::LBrace => write!(f, "`{{`"),
            Token::RBrace => write!(f, "`}}`"),
            Token::LBracket => write!(f, "`[`"),
            Token::RBracket => write!(f, "`]`"),
            Token::Comma => write!(f, "`,`"),
            Token::Eq => write!(f, "`=`"),
            Token::Colon => write!(f, "`:`"),
        }
    }
}

/// The token stream in the shape LALRPOP's external-lexer interface expects.
pub struct Lexer<'s> {
    inner: logos::SpannedIter<'s, Token<'s>>,
    /// Brackets open before the next token.
    depth: usize,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Self {
        Lexer { inner: Token::lexer(src).spanned(), depth: 0 }
    }

    /// Tracks bracket depth; an error past [`MAX_NESTING`].
    fn nest(&mut self, tok: &Token<'s>, span: &Range<usize>) -> Result<(), LexError> {
        match tok {
            Token::LParen | Token::LBracket | Token::LBrace => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(LexError { kind: LexErrorKind::NestedTooDeep, span: span.clone() });
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
        Ok(())
    }
}

impl<'s> Iterator for Lexer<'s> {
    type Item = Result<(usize, Token<'s>, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (tok, span) = self.inner.next()?;
        Some(match tok {
            Ok(t) => self.nest(&t, &span).map(|()| (span.start, t, span.end)),
            Err(e) if e.kind == LexErrorKind::StrayCharacter => Err(LexError { span, ..e }),
            Err(e) => Err(e),
        })
    }
}
