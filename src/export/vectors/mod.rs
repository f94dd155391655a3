//! Per-layer test vectors: every value of the program (the input and each
//! op's output) for a few samples, traced by the integer reference
//! interpreter, as `.npz` and `$readmemh` hex files; the parameter tensors
//! as hex files; and `manifest.json` describing them all. A test bench loads
//! one layer's input vectors and parameters, runs the layer, and compares
//! with the next value's vectors.
//!
//! Files written into the directory (each atomically):
//! - `vectors.npz` (np.savez layout, deflated): one array per value keyed by
//!   its IR name, shape `[N, *value shape]`, dtype the narrowest of
//!   int8/uint8/int16/uint16/int32/uint32 holding the value's IR type; and
//!   `labels`, int64 `[N]`, the class index of each sample or -1.
//! - `<value>.hex`: a `//` comment line, then one element a line, the N
//!   samples one after another, row-major `[sample, channel, time]`
//!   (`[sample, feature]` for vectors), two's complement in `ceil(bits / 4)`
//!   lowercase hex digits (`$readmemh`).
//! - `<node>.<slot>.hex`: each parameter tensor the same way, row-major over
//!   its shape (no sample dimension), in the type its role guarantees:
//!   weights `i<w_bits>` (int format), biases the accumulator's type, shifts
//!   `i8`; `i32` (as stored) for power-of-two weights or values outside it.
//! - `manifest.json`: names, ops, operands, attributes, shapes, types,
//!   exponents and file names of every value and parameter (layout in
//!   `manifest.rs`).

mod encode;
mod manifest;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::Samples;
use crate::backend::interp::IntInterpreter;
use crate::ckpt::write_atomic;
use crate::program::{CheckedProgram, IntProgram};
use encode::IntType;

/// The archive of every value's vectors.
pub const NPZ_FILE: &str = "vectors.npz";
/// The description of every file.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Integers of every value over all samples, at most: the trace is held
/// in memory as `i64` (1 GiB) and each one becomes a hex line.
pub const MAX_INTEGERS: u64 = 1 << 27;

/// The most samples whose vectors fit [`MAX_INTEGERS`]; an error naming the
/// size when `n` is more.
pub fn check_samples(p: &IntProgram, n: u64) -> Result<(), String> {
    let g = &p.graph;
    let per_sample: u64 = g.node_ids().map(|id| g.node(id).ty.elements()).sum::<u64>().max(1);
    let most = MAX_INTEGERS / per_sample;
    if n <= most {
        return Ok(());
    }
    Err(format!(
        "--samples {n}: the vectors of {n} samples hold {per_sample} integers each \
         ({:.1e} in all), beyond the limit of {MAX_INTEGERS}; at most {most} samples fit",
        n as f64 * per_sample as f64
    ))
}

/// One array to write: a value's vectors (with the sample dimension) or a
/// parameter tensor.
struct Array {
    /// The IR name: the value name, or `<node>.<slot>` for a parameter.
    name: String,
    /// The file name stem (the name, made safe for file systems).
    stem: String,
    ty: IntType,
    /// The shape without the sample dimension.
    shape: Vec<usize>,
    /// The names of the dimensions in `shape`, outermost first.
    dims: Vec<&'static str>,
    data: Vec<i64>,
    /// How the integers encode the tensor, where they are codes
    /// (shift-format weights: `WeightFormat::encoding`).
    encoding: Option<&'static str>,
}

impl Array {
    fn hex_file(&self) -> String {
        format!("{}.hex", self.stem)
    }
}

/// Writes the vector files into `dir` and returns their paths.
pub fn write(p: &CheckedProgram, dir: &Path, data: &Samples) -> Result<Vec<PathBuf>, String> {
    let interp = IntInterpreter::from_checked(p)?;
    let p: &IntProgram = p.program();
    let (n, len) = (data.n, interp.input_len);
    if n == 0 {
        return Err("no samples: test vectors need at least one".into());
    }
    check_samples(p, n as u64)?;
    if data.x.len() != n * len {
        return Err(format!(
            "{} input integers for {n} samples, the program takes {len} per sample",
            data.x.len()
        ));
    }
    let values = value_arrays(&interp, trace(&interp, &data.x, n))?;
    let params = manifest::param_arrays(p, &interp)?;
    check_names(&values, &params)?;
    let labels_key = labels_key(&values);

    let mut written = vec![];
    let mut put = |file: &str, f: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>| {
        let path = dir.join(file);
        write_atomic(&path, |w| f(w))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        written.push(path);
        Ok::<(), String>(())
    };

    let labels: Vec<i64> = if data.y.len() == n {
        data.y.iter().map(|&c| i64::try_from(c).unwrap_or(-1)).collect()
    } else {
        vec![-1; n]
    };
    let npz = encode::npz(
        values.iter().map(|a| (a.stem.as_str(), a.ty, with_samples(n, &a.shape), &a.data[..])),
        (&labels_key, &labels),
    )?;
    put(NPZ_FILE, &mut |w| w.write_all(&npz))?;
    drop(npz);
    // Values carry a sample dimension, parameters do not.
    let headers = values.iter().map(|a| (a, format!(" x {n} samples"), "sample, "));
    for (a, samples, sample_dim) in headers.chain(params.iter().map(|a| (a, String::new(), ""))) {
        let header = format!(
            "{}: {}{:?}{samples}, one element a line, row-major [{sample_dim}{}], {}",
            a.name,
            a.ty,
            a.shape,
            a.dims.join(", "),
            digits(a.ty)
        );
        put(&a.hex_file(), &mut |w| encode::hex(w, &header, a.ty, &a.data))?;
    }
    let json = manifest::render(p, &interp, data, &values, &params, &labels_key);
    put(MANIFEST_FILE, &mut |w| w.write_all(json.as_bytes()))?;
    Ok(written)
}

/// Every value's integers for the `n` samples of `x`, in the interpreter's
/// value order, sample-major.
fn trace(interp: &IntInterpreter, x: &[i64], n: usize) -> Vec<Vec<i64>> {
    let len = interp.input_len;
    let samples: Vec<Vec<Vec<i64>>> =
        (0..n).into_par_iter().map(|i| interp.trace_one(&x[i * len..][..len])).collect();
    let mut out: Vec<Vec<i64>> =
        interp.values().iter().map(|v| Vec::with_capacity(n * v.ty.elements() as usize)).collect();
    for sample in samples {
        for (o, v) in out.iter_mut().zip(sample) {
            o.extend(v);
        }
    }
    out
}

fn value_arrays(interp: &IntInterpreter, traces: Vec<Vec<i64>>) -> Result<Vec<Array>, String> {
    interp
        .values()
        .iter()
        .zip(traces)
        .map(|(v, data)| {
            let ty = IntType::of(v.ty.elem)
                .ok_or_else(|| format!("`%{}` is {}, not an integer", v.name, v.ty))?;
            let dims =
                if v.ty.shape.len() == 2 { vec!["channel", "time"] } else { vec!["feature"] };
            let (name, stem) = (v.name.clone(), file_stem(&v.name));
            Ok(Array { name, stem, ty, shape: v.ty.shape.clone(), dims, data, encoding: None })
        })
        .collect()
}

/// How a hex file spells its elements, for its header.
fn digits(ty: IntType) -> String {
    let d = ty.hex_digits();
    let kind = if ty.signed { "two's complement" } else { "unsigned" };
    format!("{kind}, {d} hex digit{}", if d == 1 { "" } else { "s" })
}

/// `[n, *shape]` as npy wants it.
fn with_samples(n: usize, shape: &[usize]) -> Vec<u64> {
    std::iter::once(n).chain(shape.iter().copied()).map(|d| d as u64).collect()
}

/// A name as a file name stem: characters other than ASCII letters, digits,
/// `_`, `.` and `-` become `_`, and a leading `.` (a hidden file) gets a `_`.
fn file_stem(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let s: String = name.chars().map(|c| if safe(c) { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Two arrays may not share a file (a value named like another op's
/// parameter, or names that differ only in unsafe characters).
fn check_names(values: &[Array], params: &[Array]) -> Result<(), String> {
    let mut seen: HashSet<String> = HashSet::new();
    for a in values.iter().chain(params) {
        if !seen.insert(a.hex_file()) {
            return Err(format!(
                "two arrays would both be written to `{}` (rename `%{}`)",
                a.hex_file(),
                a.name.split('.').next().unwrap_or(&a.name)
            ));
        }
    }
    let keys: HashSet<&str> = values.iter().map(|a| a.stem.as_str()).collect();
    if keys.len() != values.len() {
        return Err("two values would share a key of the .npz archive".into());
    }
    Ok(())
}

/// `labels`, or with `_` appended until no value has that key.
fn labels_key(values: &[Array]) -> String {
    let mut key = "labels".to_string();
    while values.iter().any(|a| a.stem == key) {
        key.push('_');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("r1.q"), "r1.q");
        assert_eq!(file_stem("a/b"), "a_b");
        assert_eq!(file_stem(".."), "_..");
        assert_eq!(file_stem(""), "_");
    }
}
