//! The encodings: `.npy` members in a zip (np.savez layout) and `$readmemh`
//! hex lines, for integer types of 1..=32 bits.

use std::fmt;
use std::io::{self, Cursor, Write};

use npyz::WriterBuilder;

use crate::ir::Elem;

/// A two's-complement (`signed`) or unsigned integer type of 1..=32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IntType {
    pub signed: bool,
    pub bits: u32,
}

impl IntType {
    pub const I32: IntType = IntType { signed: true, bits: 32 };

    pub fn of(elem: Elem) -> Option<IntType> {
        match elem {
            Elem::Int { signed, bits } => Some(IntType { signed, bits: u32::from(bits) }),
            Elem::F32 => None,
        }
    }

    fn elem(self) -> Elem {
        Elem::Int { signed: self.signed, bits: self.bits as u8 }
    }

    pub fn fits(self, v: &[i64]) -> bool {
        let (lo, hi) = self.elem().range().expect("an integer type has a range");
        v.iter().all(|x| (lo..=hi).contains(x))
    }

    pub fn hex_digits(self) -> usize {
        self.bits.div_ceil(4) as usize
    }

    /// The narrowest NumPy dtype holding the type, by name (`int8`, `uint16`, ...).
    pub fn numpy(self) -> &'static str {
        match (self.signed, self.storage_bytes()) {
            (true, 1) => "int8",
            (false, 1) => "uint8",
            (true, 2) => "int16",
            (false, 2) => "uint16",
            (true, _) => "int32",
            (false, _) => "uint32",
        }
    }

    fn storage_bytes(self) -> usize {
        match self.bits {
            0..=8 => 1,
            9..=16 => 2,
            _ => 4,
        }
    }
}

impl fmt::Display for IntType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.elem().fmt(f)
    }
}

/// A zip of `<key>.npy` members, deflated (as `np.savez_compressed` writes
/// them): each array `(key, type, shape, values)` in its [`IntType::numpy`]
/// dtype, then the labels as int64 `[N]`.
pub(super) fn npz<'a>(
    arrays: impl Iterator<Item = (&'a str, IntType, Vec<u64>, &'a [i64])>,
    (labels_key, labels): (&str, &[i64]),
) -> Result<Vec<u8>, String> {
    let err = |key: &str, e: &dyn fmt::Display| format!("{key}.npy: cannot encode: {e}");
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let member = |z: &mut zip::ZipWriter<Cursor<Vec<u8>>>, key: &str, bytes: usize| {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(bytes as u64 >= u64::from(u32::MAX) - 4096);
        z.start_file(format!("{key}.npy"), opts).map_err(|e| err(key, &e))
    };
    for (key, ty, shape, v) in arrays {
        member(&mut z, key, v.len() * ty.storage_bytes())?;
        let r = match (ty.signed, ty.storage_bytes()) {
            (true, 1) => npy::<i8>(&mut z, &shape, v),
            (false, 1) => npy::<u8>(&mut z, &shape, v),
            (true, 2) => npy::<i16>(&mut z, &shape, v),
            (false, 2) => npy::<u16>(&mut z, &shape, v),
            (true, _) => npy::<i32>(&mut z, &shape, v),
            (false, _) => npy::<u32>(&mut z, &shape, v),
        };
        r.map_err(|e| err(key, &e))?;
    }
    member(&mut z, labels_key, labels.len() * 8)?;
    npy::<i64>(&mut z, &[labels.len() as u64], labels).map_err(|e| err(labels_key, &e))?;
    Ok(z.finish().map_err(|e| format!("cannot finish the archive: {e}"))?.into_inner())
}

/// One `.npy` array (C order) of `v` as `T`.
fn npy<T: npyz::AutoSerialize + TryFrom<i64>>(
    w: &mut dyn Write,
    shape: &[u64],
    v: &[i64],
) -> io::Result<()> {
    let mut out =
        npyz::WriteOptions::<T>::new().default_dtype().shape(shape).writer(w).begin_nd()?;
    for &x in v {
        let x = T::try_from(x).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{x} is outside the dtype"))
        })?;
        out.push(&x)?;
    }
    out.finish()
}

/// `$readmemh` text: `// header`, then each value of `v` on its own line in
/// two's complement, `ty.hex_digits()` lowercase digits.
pub(super) fn hex(w: &mut dyn Write, header: &str, ty: IntType, v: &[i64]) -> io::Result<()> {
    writeln!(w, "// {}", header.replace(['\n', '\r'], " "))?;
    let (digits, mask) = (ty.hex_digits(), (1u64 << ty.bits) - 1);
    for &x in v {
        writeln!(w, "{:0digits$x}", (x as u64) & mask)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_twos_complement_at_the_type_width() {
        let mut out = vec![];
        let i4 = IntType { signed: true, bits: 4 };
        hex(&mut out, "h", i4, &[-3, 7, -8, 0]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "// h\nd\n7\n8\n0\n");
        let mut out = vec![];
        hex(&mut out, "h", IntType::I32, &[-1, 255]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "// h\nffffffff\n000000ff\n");
        let u9 = IntType { signed: false, bits: 9 };
        assert_eq!((u9.hex_digits(), u9.numpy()), (3, "uint16"));
        assert!(i4.fits(&[-8, 7]) && !i4.fits(&[8]));
    }
}
