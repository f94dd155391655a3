//! Attribute machinery: the visitor each op lists its attributes to, range
//! errors, and the visitors the IR itself uses (the integer limit check and
//! the list of names). The parser's reader and the printer's writer are the
//! other visitors.

use super::op::{Padding, F64, MAX_ATTR};

/// Reads, writes or checks one op's attributes. Each op lists its attributes
/// once, in [`Op::visit_attrs`]; the parser's reader, the printer's writer and
/// the range check are visitors.
pub trait AttrVisitor {
    /// A non-negative integer; `default: None` makes it required.
    fn uint(&mut self, name: &'static str, value: &mut usize, default: Option<usize>);
    /// A non-negative integer that may be left out (its meaning is documented).
    fn opt_uint(&mut self, name: &'static str, value: &mut Option<usize>);
    fn boolean(&mut self, name: &'static str, value: &mut bool, default: bool);
    fn float(&mut self, name: &'static str, value: &mut F64, default: f64);
    fn padding(&mut self, name: &'static str, value: &mut Padding, default: Padding);
    /// One of `options` (written as a bare name), or absent.
    fn ident(
        &mut self,
        name: &'static str,
        value: &mut Option<&'static str>,
        options: &'static [&'static str],
    );
}

/// An attribute whose value is out of range, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AttrError {
    pub attr: &'static str,
    pub message: String,
}

pub(crate) fn bad(attr: &'static str, message: impl Into<String>) -> Result<(), AttrError> {
    Err(AttrError { attr, message: message.into() })
}

pub(crate) fn positive(attr: &'static str, v: usize) -> Result<(), AttrError> {
    if v == 0 {
        return bad(attr, format!("`{attr}` must be at least 1"));
    }
    Ok(())
}

/// Checks every integer attribute against [`MAX_ATTR`].
pub(crate) struct Limits(pub(crate) Result<(), AttrError>);

impl Limits {
    fn check(&mut self, name: &'static str, v: usize) {
        if self.0.is_ok() && v as u64 > MAX_ATTR {
            self.0 = bad(name, format!("`{name}` = {v} is out of range 0..={MAX_ATTR}"));
        }
    }
}

impl AttrVisitor for Limits {
    fn uint(&mut self, name: &'static str, value: &mut usize, _: Option<usize>) {
        self.check(name, *value);
    }
    fn opt_uint(&mut self, name: &'static str, value: &mut Option<usize>) {
        if let Some(v) = value {
            self.check(name, *v);
        }
    }
    fn boolean(&mut self, _: &'static str, _: &mut bool, _: bool) {}
    fn float(&mut self, _: &'static str, _: &mut F64, _: f64) {}
    fn ident(&mut self, _: &'static str, _: &mut Option<&'static str>, _: &'static [&'static str]) {
    }
    fn padding(&mut self, name: &'static str, value: &mut Padding, _: Padding) {
        if let Padding::Explicit { left, right } = *value {
            self.check(name, left);
            self.check(name, right);
        }
    }
}

/// Collects attribute names.
pub(crate) struct Names(pub(crate) Vec<&'static str>);

impl AttrVisitor for Names {
    fn uint(&mut self, name: &'static str, _: &mut usize, _: Option<usize>) {
        self.0.push(name);
    }
    fn opt_uint(&mut self, name: &'static str, _: &mut Option<usize>) {
        self.0.push(name);
    }
    fn boolean(&mut self, name: &'static str, _: &mut bool, _: bool) {
        self.0.push(name);
    }
    fn float(&mut self, name: &'static str, _: &mut F64, _: f64) {
        self.0.push(name);
    }
    fn padding(&mut self, name: &'static str, _: &mut Padding, _: Padding) {
        self.0.push(name);
    }
    fn ident(
        &mut self,
        name: &'static str,
        _: &mut Option<&'static str>,
        _: &'static [&'static str],
    ) {
        self.0.push(name);
    }
}
