//! NumPy `.npz` archives (`np.savez`, `np.savez_compressed`) holding `x`,
//! float32 or float64 of shape `[N, C, L]` (or `[N, L]`, read as `C = 1`),
//! and `y`, any integer dtype of shape `[N]`. Labels are the distinct values
//! of `y` as decimal text, in numeric order.
//!
//! The `.npy` members are parsed here rather than by a general library: only
//! the three header keys are needed, and every size is checked against the
//! bytes actually present before anything is allocated, so no header can make
//! the reader overflow, allocate wildly or panic.

use std::io::{Cursor, Read};

use super::{DataError, Dataset, Raw};

pub(super) fn parse(path: &str, bytes: &[u8]) -> Result<Dataset, DataError> {
    let file = |reason: String| DataError::File { path: path.to_string(), reason };
    if bytes.is_empty() {
        return Err(file("empty file: expected an .npz archive with arrays `x` and `y`".into()));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| file(format!("not an .npz file (a zip archive of .npy arrays): {e}")))?;
    let x_bytes = member(path, &mut zip, "x")?;
    let y_bytes = member(path, &mut zip, "y")?;
    let array = |name: &'static str| {
        move |reason: String| DataError::Array {
            path: path.to_string(),
            array: name.to_string(),
            reason,
        }
    };
    let x = Npy::parse(&x_bytes).map_err(array("x"))?;
    let y = Npy::parse(&y_bytes).map_err(array("y"))?;

    let (n, channels, length) = match x.shape[..] {
        [n, l] => (n, 1, l),
        [n, c, l] => (n, c, l),
        _ => return Err(array("x")(format!("shape {:?} is not [N, C, L] or [N, L]", x.shape))),
    };
    if n == 0 {
        return Err(array("x")(format!("no samples (shape {:?})", x.shape)));
    }
    if channels == 0 || length == 0 {
        return Err(array("x")(format!("shape {:?} has an empty dimension", x.shape)));
    }
    let values = x.floats(n, channels, length).map_err(array("x"))?;
    if y.shape.len() != 1 {
        return Err(array("y")(format!("shape {:?} is not [N]", y.shape)));
    }
    if y.shape[0] != n {
        let reason = format!("{} labels, but array `x` has {n} samples", y.shape[0]);
        return Err(array("y")(reason));
    }
    let texts = y.ints().map_err(array("y"))?;
    let raw = Raw {
        path,
        x: values,
        labels: texts.iter().map(String::as_str).collect(),
        origin: (0..n).collect(),
        channels,
        length,
    };
    raw.finish(None)
}

/// The bytes of member `<name>.npy`.
fn member(
    path: &str,
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Vec<u8>, DataError> {
    let err = |reason: String| DataError::Array {
        path: path.to_string(),
        array: name.to_string(),
        reason,
    };
    let file = format!("{name}.npy");
    if zip.index_for_name(&file).is_none() {
        let mut held: Vec<String> =
            zip.file_names().map(|f| super::clip(f.trim_end_matches(".npy"))).collect();
        held.sort_unstable();
        return Err(err(format!(
            "missing (the archive holds: {}; save with `np.savez(path, x=x, y=y)`)",
            super::list(&held)
        )));
    }
    let mut entry = zip.by_name(&file).map_err(|e| err(format!("cannot read `{file}`: {e}")))?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out).map_err(|e| err(format!("cannot read `{file}`: {e}")))?;
    Ok(out)
}

/// A parsed `.npy` array: its dtype, layout, shape and raw data.
struct Npy<'a> {
    descr: String,
    kind: u8,
    size: usize,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
    data: &'a [u8],
}

impl<'a> Npy<'a> {
    fn parse(b: &'a [u8]) -> Result<Self, String> {
        if !b.starts_with(b"\x93NUMPY") {
            return Err("not a .npy array (bad magic bytes)".into());
        } else if b.len() < 12 {
            return Err("the .npy header is truncated".into());
        }
        let (len, start): (usize, usize) = match b[6] {
            1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
            2 | 3 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        let end = start.checked_add(len).filter(|&e| e <= b.len());
        let end = end.ok_or("the .npy header is truncated")?;
        let text =
            std::str::from_utf8(&b[start..end]).map_err(|_| "the .npy header is not text")?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        let mut cur = Literal { s: text, i: 0, depth: 0 };
        cur.expect(b'{')?;
        loop {
            if cur.eat(b'}') {
                break;
            }
            let key = cur.value()?;
            cur.expect(b':')?;
            match (key, cur.value()?) {
                (Lit::Str(k), Lit::Str(v)) if k == "descr" => descr = Some(v),
                (Lit::Str(k), _) if k == "descr" => {
                    return Err("structured dtypes are not supported".into())
                }
                (Lit::Str(k), Lit::Bool(v)) if k == "fortran_order" => fortran = Some(v),
                (Lit::Str(k), Lit::Tuple(v)) if k == "shape" => shape = Some(v),
                _ => {}
            }
            if !cur.eat(b',') {
                cur.expect(b'}')?;
                break;
            }
        }
        if !text[cur.i..].trim().is_empty() {
            return Err("unexpected text after the .npy header".into());
        }
        let descr = descr.ok_or("the .npy header has no `descr`")?;
        let fortran = fortran.ok_or("the .npy header has no `fortran_order`")?;
        let shape: Vec<usize> = shape.ok_or("the .npy header has no `shape`")?;
        let d = descr.as_bytes();
        let size = descr.get(2..).and_then(|s| s.parse::<usize>().ok());
        let (kind, size, big_endian) = match (d.first(), d.get(1), size) {
            (Some(e @ (b'<' | b'>' | b'|' | b'=')), Some(&k), Some(s @ 1..=16)) => {
                (k, s, *e == b'>' || (*e == b'=' && cfg!(target_endian = "big")))
            }
            _ => return Err(format!("unsupported dtype `{}`", super::clip(&descr))),
        };
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let need = count.and_then(|c| c.checked_mul(size)).ok_or("the shape is too large")?;
        let data = &b[end..];
        if data.len() != need {
            return Err(format!(
                "shape {shape:?} of `{descr}` needs {need} data bytes, but the array has {} \
                 (is the file truncated?)",
                data.len()
            ));
        }
        Ok(Npy { descr, kind, size, big_endian, fortran, shape, data })
    }

    /// The values as f32 in C order (`[n][c][l]`), all finite.
    fn floats(&self, n: usize, c: usize, l: usize) -> Result<Vec<f32>, String> {
        if self.kind != b'f' || !matches!(self.size, 4 | 8) {
            return Err(format!("dtype `{}` is not float32 or float64", self.descr));
        }
        let mut out = vec![0f32; n * c * l];
        for (i, chunk) in self.data.chunks_exact(self.size).enumerate() {
            let v = match *chunk {
                [a, b, c, d] if self.big_endian => f64::from(f32::from_be_bytes([a, b, c, d])),
                [a, b, c, d] => f64::from(f32::from_le_bytes([a, b, c, d])),
                _ => {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(chunk);
                    if self.big_endian {
                        le.reverse();
                    }
                    f64::from_le_bytes(le)
                }
            };
            // Position of file-order element i, as (sample, channel, step).
            let (s, ch, t) = if self.fortran {
                (i % n, (i / n) % c, i / (n * c))
            } else {
                (i / (c * l), (i / l) % c, i % l)
            };
            let f = v as f32;
            if !f.is_finite() {
                let at = if self.shape.len() == 2 {
                    format!("x[{s}, {t}]")
                } else {
                    format!("x[{s}, {ch}, {t}]")
                };
                return Err(if v.is_finite() {
                    format!("{at} = {v:?} is outside the float32 range")
                } else {
                    format!("{at} is {v} (missing values and infinities are not supported)")
                });
            }
            out[(s * c + ch) * l + t] = f;
        }
        Ok(out)
    }

    /// Integer values as decimal text.
    fn ints(&self) -> Result<Vec<String>, String> {
        let signed = match (self.kind, self.size) {
            (b'i', 1 | 2 | 4 | 8) => true,
            (b'u', 1 | 2 | 4 | 8) => false,
            _ => return Err(format!("dtype `{}` is not an integer type", self.descr)),
        };
        let value = |chunk: &[u8]| -> i128 {
            let mut le = [0u8; 8];
            for (k, &byte) in chunk.iter().enumerate() {
                le[if self.big_endian { chunk.len() - 1 - k } else { k }] = byte;
            }
            if signed && le[chunk.len() - 1] & 0x80 != 0 {
                le[chunk.len()..].fill(0xff);
            }
            if signed {
                i128::from(i64::from_le_bytes(le))
            } else {
                i128::from(u64::from_le_bytes(le))
            }
        };
        Ok(self.data.chunks_exact(self.size).map(|c| value(c).to_string()).collect())
    }
}

/// A Python literal in an `.npy` header.
enum Lit {
    Str(String),
    Bool(bool),
    Int(usize),
    Tuple(Vec<usize>),
    Other,
}

/// A cursor over the header's Python dict literal (only what NumPy writes).
struct Literal<'a> {
    s: &'a str,
    i: usize,
    depth: usize,
}

impl Literal<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.s.as_bytes().get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
        self.s.as_bytes().get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("malformed .npy header: expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Lit, String> {
        let start = self.i;
        let bytes = self.s.as_bytes();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                let from = self.i + 1;
                let len = self.s[from..].find(q as char).ok_or("malformed .npy header")?;
                self.i = from + len + 1;
                Ok(Lit::Str(self.s[from..from + len].to_string()))
            }
            Some(open @ (b'(' | b'[')) => {
                self.depth += 1;
                if self.depth > 4 {
                    return Err("malformed .npy header: nested too deeply".into());
                }
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut ints = Some(Vec::new());
                while !self.eat(close) {
                    match self.value()? {
                        Lit::Int(v) => ints.iter_mut().for_each(|t| t.push(v)),
                        _ => ints = None,
                    }
                    if !self.eat(b',') {
                        self.expect(close)?;
                        break;
                    }
                }
                self.depth -= 1;
                Ok(match ints {
                    Some(t) if open == b'(' => Lit::Tuple(t),
                    _ => Lit::Other,
                })
            }
            Some(c) if c.is_ascii_alphanumeric() => {
                while bytes.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    self.i += 1;
                }
                let word = self.s[start..self.i].trim_start();
                Ok(match word {
                    "True" => Lit::Bool(true),
                    "False" => Lit::Bool(false),
                    _ => match word.trim_end_matches('L').parse() {
                        Ok(v) => Lit::Int(v),
                        Err(_) if word.bytes().all(|b| b.is_ascii_digit()) => {
                            return Err("the shape is too large".into())
                        }
                        Err(_) => Lit::Other,
                    },
                })
            }
            _ => Err(format!("malformed .npy header at byte {}", self.i)),
        }
    }
}
