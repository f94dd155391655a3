//! C fixed-width types, literals and text that is safe inside C comments and strings.

use crate::ir::Elem;

/// The C99 fixed-width integer types the export uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
}

impl CType {
    pub fn name(self) -> &'static str {
        match self {
            CType::I8 => "int8_t",
            CType::U8 => "uint8_t",
            CType::I16 => "int16_t",
            CType::U16 => "uint16_t",
            CType::I32 => "int32_t",
            CType::U32 => "uint32_t",
            CType::I64 => "int64_t",
        }
    }

    /// A short tag for buffer names (`i8`, `u16`, ...).
    pub fn tag(self) -> &'static str {
        match self {
            CType::I8 => "i8",
            CType::U8 => "u8",
            CType::I16 => "i16",
            CType::U16 => "u16",
            CType::I32 => "i32",
            CType::U32 => "u32",
            CType::I64 => "i64",
        }
    }

    /// The range of values the type holds.
    pub fn range(self) -> (i64, i64) {
        match self {
            CType::I8 => (i8::MIN.into(), i8::MAX.into()),
            CType::U8 => (0, u8::MAX.into()),
            CType::I16 => (i16::MIN.into(), i16::MAX.into()),
            CType::U16 => (0, u16::MAX.into()),
            CType::I32 => (i32::MIN.into(), i32::MAX.into()),
            CType::U32 => (0, u32::MAX.into()),
            CType::I64 => (i64::MIN, i64::MAX),
        }
    }

    /// The narrowest type holding every value of `lo..=hi`: unsigned when
    /// `lo >= 0` and `unsigned_ok`, else signed.
    pub fn holding(lo: i64, hi: i64, unsigned_ok: bool) -> CType {
        let candidates: &[CType] = if unsigned_ok && lo >= 0 {
            &[CType::U8, CType::U16, CType::U32, CType::I64]
        } else {
            &[CType::I8, CType::I16, CType::I32, CType::I64]
        };
        let fits = |t: &&CType| t.range().0 <= lo && hi <= t.range().1;
        *candidates.iter().find(fits).unwrap_or(&CType::I64)
    }

    /// The narrowest type holding an integer IR type (`u8` in `uint8_t`,
    /// `i20` in `int32_t`, ...).
    pub fn of(elem: Elem) -> Result<CType, String> {
        match elem {
            Elem::Int { signed, .. } => {
                let (lo, hi) = elem.range().expect("an integer type has a range");
                Ok(CType::holding(lo, hi, !signed))
            }
            Elem::F32 => Err("an integer program holds no f32 values".into()),
        }
    }
}

/// An `int64_t` constant: `INT64_C(-128)`.
pub fn i64_lit(v: i64) -> String {
    if v == i64::MIN {
        "INT64_MIN".into()
    } else {
        format!("INT64_C({v})")
    }
}

/// A constant that fits `int32_t` (the smallest, `-2147483648`, cannot be
/// written as a literal: it is `(-2147483647 - 1)`).
pub fn i32_lit(v: i64) -> String {
    if v == i64::from(i32::MIN) {
        "(-2147483647 - 1)".into()
    } else if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

/// A C identifier made of `s`: every character outside `[A-Za-z0-9_]`
/// becomes `_`.
pub fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Text that is safe inside a `/* ... */` comment: no `*/` or `/*`, no
/// trigraph (`??x`), printable ASCII only.
pub fn comment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c == ' ' || c.is_ascii_graphic() { c } else { '?' };
        if let Some(prev) = out.chars().last() {
            if matches!((prev, c), ('*', '/') | ('/', '*') | ('?', '?')) {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}

/// A C string literal holding `s` (UTF-8 bytes; octal escapes for anything
/// but printable ASCII, `\?` so no trigraph forms).
pub fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_the_narrowest() {
        let t = |s: &str| CType::of(Elem::parse(s).unwrap()).unwrap();
        assert_eq!(t("i2"), CType::I8);
        assert_eq!(t("u8"), CType::U8);
        assert_eq!(t("i9"), CType::I16);
        assert_eq!(t("u16"), CType::U16);
        assert_eq!(t("i20"), CType::I32);
        assert_eq!(t("u32"), CType::U32);
        assert_eq!(CType::holding(-3, 200, false), CType::I16);
        assert_eq!(CType::I16.tag(), "i16");
    }

    #[test]
    fn text_is_safe_in_c() {
        assert_eq!(comment("a*/b/*c??=d\n"), "a* /b/ *c? ?=d?");
        assert_eq!(string("a\"b\\c??=é"), "\"a\\\"b\\\\c\\?\\?=\\303\\251\"");
        assert_eq!(ident("b1.align"), "b1_align");
        assert_eq!(i32_lit(i32::MIN.into()), "(-2147483647 - 1)");
    }
}
