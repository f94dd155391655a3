//! Value types: an element type and a per-sample shape (the batch is implicit).

use std::fmt;

/// The largest number of elements one per-sample tensor may hold. Shapes are
/// computed with checked arithmetic and refused beyond this, so no later stage
/// (interpreter, JIT, export) has to think about index overflow.
pub const MAX_ELEMENTS: u64 = (1 << 31) - 1;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem {
    F32,
    /// A two's-complement (`signed`) or unsigned integer of `bits` bits, 1..=32.
    Int {
        signed: bool,
        bits: u8,
    },
}

impl Elem {
    /// The range `(lo, hi)` of an integer type; `None` for `f32`.
    pub fn range(self) -> Option<(i64, i64)> {
        match self {
            Elem::Int { signed: true, bits } => {
                Some((-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1))
            }
            Elem::Int { signed: false, bits } => Some((0, (1i64 << bits) - 1)),
            Elem::F32 => None,
        }
    }

    /// Parses `f32`, `i<bits>` (2..=32) or `u<bits>` (1..=32).
    pub fn parse(s: &str) -> Option<Elem> {
        if s == "f32" {
            return Some(Elem::F32);
        }
        let (signed, digits) = match s.split_at_checked(1)? {
            ("i", d) => (true, d),
            ("u", d) => (false, d),
            _ => return None,
        };
        if digits.is_empty()
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let bits: u8 = digits.parse().ok()?;
        let lowest = if signed { 2 } else { 1 };
        (lowest..=32).contains(&bits).then_some(Elem::Int { signed, bits })
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Elem::F32 => write!(f, "f32"),
            Elem::Int { signed: true, bits } => write!(f, "i{bits}"),
            Elem::Int { signed: false, bits } => write!(f, "u{bits}"),
        }
    }
}

/// A tensor type: `[channels, length]` for sequences, `[features]` after
/// pooling or flattening.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Type {
    pub elem: Elem,
    pub shape: Vec<usize>,
}

impl Type {
    pub fn new(elem: Elem, shape: Vec<usize>) -> Type {
        Type { elem, shape }
    }

    pub fn f32(shape: Vec<usize>) -> Type {
        Type::new(Elem::F32, shape)
    }

    /// The number of elements, which [`check_shape`] keeps within [`MAX_ELEMENTS`].
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    /// `(channels, length)` for a rank-2 type.
    pub fn sequence(&self) -> Option<(usize, usize)> {
        match self.shape[..] {
            [c, l] => Some((c, l)),
            _ => None,
        }
    }
}

/// Why a shape is not a tensor potc computes with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("a tensor has rank 1 ([features]) or 2 ([channels, length]), not {0}")]
    Rank(usize),
    #[error("a dimension is zero")]
    ZeroDim,
    #[error("shape {0:?} exceeds the limit of {MAX_ELEMENTS} elements per sample")]
    TooLarge(Vec<u64>),
}

/// Checks that a shape has rank 1 or 2, no zero extent, and at most
/// [`MAX_ELEMENTS`] elements.
pub fn check_shape(shape: &[u64]) -> Result<Vec<usize>, ShapeError> {
    if shape.is_empty() || shape.len() > 2 {
        return Err(ShapeError::Rank(shape.len()));
    }
    if shape.contains(&0) {
        return Err(ShapeError::ZeroDim);
    }
    let total = shape.iter().fold(1u64, |t, &d| t.saturating_mul(d));
    if total > MAX_ELEMENTS {
        return Err(ShapeError::TooLarge(shape.to_vec()));
    }
    Ok(shape.iter().map(|&d| d as usize).collect())
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.elem)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_parse_and_print_back() {
        for s in ["f32", "i2", "i8", "i32", "u1", "u4", "u32"] {
            assert_eq!(Elem::parse(s).unwrap().to_string(), s);
        }
        for s in ["i1", "i33", "u0", "u08", "f16", "x8", "i", "", "i-4"] {
            assert_eq!(Elem::parse(s), None, "{s}");
        }
    }

    #[test]
    fn shapes_are_bounded() {
        assert!(check_shape(&[1, 150]).is_ok());
        assert_eq!(check_shape(&[]), Err(ShapeError::Rank(0)));
        assert!(check_shape(&[1, 2, 3]).is_err());
        assert_eq!(check_shape(&[0, 3]), Err(ShapeError::ZeroDim));
        assert!(check_shape(&[1 << 20, 1 << 20]).is_err());
        assert!(check_shape(&[u64::MAX, u64::MAX]).is_err());
    }
}
