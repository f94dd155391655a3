//! Constant tensors: ONNX initializers and `Constant` nodes decoded, and the
//! values the importer folds from them.

use super::proto::{data_type, TensorProto};

/// A constant known at import time, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    /// Integers; `None` is the batch size where it is symbolic (from `Shape`
    /// of a value whose first axis is the batch).
    Int(Vec<Option<i64>>),
}

impl Const {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::Int(v) => v.len(),
        }
    }

    pub fn ints(dims: Vec<usize>, v: Vec<Option<i64>>) -> Const {
        Const { dims, data: Data::Int(v) }
    }

    /// The float values, or why there are none.
    pub fn floats(&self) -> Result<&[f32], String> {
        match &self.data {
            Data::F32(v) => Ok(v),
            Data::Int(_) => Err("is an integer tensor where a float tensor is needed".into()),
        }
    }

    /// The integer values, every one known.
    pub fn known_ints(&self) -> Result<Vec<i64>, String> {
        match &self.data {
            Data::Int(v) => {
                v.iter().map(|x| x.ok_or_else(|| "depends on the batch size".to_string())).collect()
            }
            Data::F32(_) => Err("is a float tensor where integers are needed".into()),
        }
    }
}

/// Decodes a tensor's values: float32 (or float64, rounded) as floats,
/// every integer and boolean type as integers.
pub fn decode(t: &TensorProto) -> Result<Const, String> {
    if t.data_location == 1 {
        return Err("its data lives in an external file; save the model as one file \
                    (onnx.save(model, path, save_as_external_data=False))"
            .into());
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("has a negative dimension {d}"))?;
        n = n.checked_mul(d).ok_or("has more elements than memory can hold")?;
        dims.push(d);
    }
    let raw = &t.raw_data;
    let data = match t.data_type {
        data_type::FLOAT => Data::F32(if raw.is_empty() {
            t.float_data.clone()
        } else {
            chunks::<4>(raw, n)?.map(f32::from_le_bytes).collect()
        }),
        data_type::DOUBLE => Data::F32(if raw.is_empty() {
            t.double_data.iter().map(|&x| x as f32).collect()
        } else {
            chunks::<8>(raw, n)?.map(|b| f64::from_le_bytes(b) as f32).collect()
        }),
        data_type::INT64 => Data::Int(if raw.is_empty() {
            t.int64_data.iter().map(|&x| Some(x)).collect()
        } else {
            chunks::<8>(raw, n)?.map(|b| Some(i64::from_le_bytes(b))).collect()
        }),
        data_type::INT32 => Data::Int(if raw.is_empty() {
            t.int32_data.iter().map(|&x| Some(x.into())).collect()
        } else {
            chunks::<4>(raw, n)?.map(|b| Some(i32::from_le_bytes(b).into())).collect()
        }),
        data_type::INT8 | data_type::UINT8 | data_type::BOOL => {
            let signed = t.data_type == data_type::INT8;
            let byte = |b: u8| Some(if signed { i64::from(b as i8) } else { i64::from(b) });
            Data::Int(if raw.is_empty() {
                t.int32_data.iter().map(|&x| byte(x as u8)).collect()
            } else {
                raw.iter().map(|&b| byte(b)).collect()
            })
        }
        other => {
            return Err(format!(
                "has element type {} (potc reads float and integer tensors)",
                type_name(other)
            ))
        }
    };
    let c = Const { dims, data };
    if c.len() != n {
        return Err(format!("holds {} values where its shape {:?} needs {n}", c.len(), c.dims));
    }
    Ok(c)
}

/// `raw` as `n` little-endian values of `B` bytes each.
fn chunks<const B: usize>(
    raw: &[u8],
    n: usize,
) -> Result<impl Iterator<Item = [u8; B]> + '_, String> {
    if raw.len() != n.saturating_mul(B) {
        return Err(format!(
            "holds {} bytes where its shape needs {n} values of {B} bytes",
            raw.len()
        ));
    }
    Ok(raw.chunks_exact(B).map(|c| {
        let mut a = [0u8; B];
        a.copy_from_slice(c);
        a
    }))
}

/// The ONNX name of an element type.
pub fn type_name(t: i32) -> String {
    let name = match t {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => return format!("number {t}"),
    };
    name.to_string()
}
