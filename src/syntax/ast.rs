//! The syntax tree of a `.pot` file, exactly as written, with byte spans.
//! Nothing is checked here; `build` turns it into the IR and reports mistakes.

use std::ops::Range;

pub type Span = Range<usize>;

/// A node together with the bytes of the source it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

/// `model NAME(%in: TYPE, ...) { STMT* }`
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: Spanned<String>,
    pub inputs: Vec<Input>,
    pub stmts: Vec<Stmt>,
    /// The closing `}`: where a missing `return` is reported.
    pub close: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: Spanned<String>,
    pub ty: TypeAst,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Op(OpStmt),
    Return(Spanned<String>),
}

/// `%result = op(%a, %b) {attr = value, ...} : TYPE`
#[derive(Debug, Clone, PartialEq)]
pub struct OpStmt {
    pub result: Spanned<String>,
    pub op: Spanned<String>,
    pub args: Vec<Spanned<String>>,
    pub attrs: Vec<Attr>,
    pub ty: Option<TypeAst>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: Spanned<String>,
    pub value: Spanned<AttrValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
    Ident(String),
    List(Vec<Spanned<AttrValue>>),
}

impl AttrValue {
    /// The kind of value, as a diagnostic names it.
    pub fn kind(&self) -> &'static str {
        match self {
            AttrValue::Int(_) => "an integer",
            AttrValue::Float(_) => "a number",
            AttrValue::Ident(_) => "a name",
            AttrValue::List(_) => "a list",
        }
    }
}

/// `f32[1, 150]`, or `[1, 150]` (element type defaults to `f32`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeAst {
    pub elem: Option<Spanned<String>>,
    pub dims: Vec<Spanned<i64>>,
    pub span: Span,
}
