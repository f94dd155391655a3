//! Each op of an integer program as standard ONNX ops on `int64` tensors
//! `[N, C, L]` (sequences) or `[N, F]` (vectors), computing exactly what the
//! integer interpreter computes (see `docs/hardware.md`, "ONNX"):
//!
//! - every value of a program fits 32 bits (its type), so sums and products
//!   of two values, and the MACs' accumulations (proved to fit their
//!   accumulator), are exact in `int64`;
//! - a rounding shift `floor((x + 2^(k-1)) / 2^k)` is `(t - Mod(t, 2^k)) /
//!   2^k` with `t = x + 2^(k-1)`: ONNX `Mod` with `fmod = 0` takes the sign of
//!   the divisor, so `t - Mod(t, 2^k)` is the multiple of `2^k` at or below
//!   `t`, and `Div` of an exact multiple has nothing to truncate;
//! - a left shift is a multiplication by `2^a` after clamping `x` to
//!   `±((2^33 >> a) + 1)`: beyond that the result saturates at the type's
//!   bounds anyway (every type lies within `±2^32`), and within it the
//!   product stays below `2^63`;
//! - every result is clamped to its type (`Max`, `Min`), as the interpreter
//!   saturates after every op.

use super::graph::{Attr, Builder};
use crate::ir::op::{Conv1d, Linear, Pool1d};
use crate::ir::Elem;

/// A right shift by more than this gives 0 for every value of at most 32
/// bits (`|x| < 2^33 = 2^(k-1)`), as any larger shift does.
const MAX_RIGHT_SHIFT: i64 = 34;

/// Adds ops to a builder under the value names of the program.
pub struct Emitter<'a> {
    pub b: &'a mut Builder,
}

impl Emitter<'_> {
    /// `clamp(floor(x * 2^-e + 1/2), lo, hi)` of the float input, in `double`
    /// (exact: scaling by a power of two, and the add of 1/2 rounds as the
    /// interpreter's boundary, `potc run`, does in f64), as `int64`.
    pub fn quantize_input(&mut self, x: &str, name: &str, e: i32, elem: Elem) -> String {
        let (lo, hi) = elem.range().unwrap_or((0, 0));
        let b = &mut *self.b;
        let d = b.node("Cast", &[x], vec![("to", Attr::Int(DOUBLE))], name, None);
        let scale = b.double(name, 2f64.powi(-e));
        let scaled = b.node("Mul", &[&d, &scale], vec![], name, None);
        let half = b.double(name, 0.5);
        let up = b.node("Add", &[&scaled, &half], vec![], name, None);
        let floor = b.node("Floor", &[&up], vec![], name, None);
        let (lo, hi) = (b.double(name, lo as f64), b.double(name, hi as f64));
        let above = b.node("Max", &[&floor, &lo], vec![], name, None);
        let within = b.node("Min", &[&above, &hi], vec![], name, None);
        b.node("Cast", &[&within], vec![("to", Attr::Int(INT64))], name, Some(name))
    }

    /// `int_conv1d` as im2col: pad, gather each output step's taps, and one
    /// batched `MatMul` per group.
    pub fn conv(
        &mut self,
        x: &str,
        name: &str,
        op: &Conv1d,
        (c, l, lo): (usize, usize, usize),
        w: &[i32],
        bias: Option<&[i32]>,
    ) -> String {
        let (k, stride, dil, groups) = (op.kernel, op.stride, op.dilation, op.groups);
        let (left, _) = op.padding.amounts(k, dil);
        // Enough zeros on the right for the last window.
        let span = (lo - 1) * stride + (k - 1) * dil + 1;
        let right = span.saturating_sub(l + left);
        let padded = self.pad(x, name, left, right, 0);
        let idx: Vec<i64> =
            (0..lo).flat_map(|t| (0..k).map(move |j| (t * stride + j * dil) as i64)).collect();
        // [N, C, L'] windows: [N, C, L', k] -> [N, C, k, L'] -> [N, G, C/G * k, L'].
        let windows = self.gather(&padded, name, &idx, [lo, k]);
        let b = &mut *self.b;
        let cols = b.node(
            "Transpose",
            &[&windows],
            vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))],
            name,
            None,
        );
        let (cg, og) = (c / groups, op.out_channels / groups);
        let shape = b.int64(name, &[4], &[0, groups as i64, (cg * k) as i64, lo as i64]);
        let cols = b.node("Reshape", &[&cols, &shape], vec![], name, None);
        let wide: Vec<i64> = w.iter().map(|&v| i64::from(v)).collect();
        let weights = b.int64(&format!("{name}.w"), &[groups, og, cg * k], &wide);
        let acc = b.node("MatMul", &[&weights, &cols], vec![], name, None);
        let shape = b.int64(name, &[3], &[0, op.out_channels as i64, lo as i64]);
        let out = if bias.is_some() { None } else { Some(name) };
        let acc = b.node("Reshape", &[&acc, &shape], vec![], name, out);
        match bias {
            Some(bias) => self.add_bias(&acc, name, bias, &[op.out_channels, 1]),
            None => acc,
        }
    }

    /// `int_linear`: `x W^T + b`.
    pub fn linear(
        &mut self,
        x: &str,
        name: &str,
        op: &Linear,
        f: usize,
        w: &[i32],
        bias: Option<&[i32]>,
    ) -> String {
        let rows = op.out_features;
        let wt: Vec<i64> =
            (0..f).flat_map(|i| (0..rows).map(move |r| i64::from(w[r * f + i]))).collect();
        let b = &mut *self.b;
        let weights = b.int64(&format!("{name}.w"), &[f, rows], &wt);
        let out = if bias.is_some() { None } else { Some(name) };
        let acc = b.node("MatMul", &[x, &weights], vec![], name, out);
        match bias {
            Some(bias) => self.add_bias(&acc, name, bias, &[rows]),
            None => acc,
        }
    }

    fn add_bias(&mut self, acc: &str, name: &str, bias: &[i32], dims: &[usize]) -> String {
        let v: Vec<i64> = bias.iter().map(|&x| i64::from(x)).collect();
        let b = self.b.int64(&format!("{name}.b"), dims, &v);
        self.b.node("Add", &[acc, &b], vec![], name, Some(name))
    }

    /// `clamp(shift_round(x, k[c]), type)` per channel `c` (`requant`, and
    /// `shl` with `k = -shift`); `dims` shapes a per-channel constant
    /// (`[C, 1]` for sequences, `[F]` for vectors).
    pub fn shift_round(
        &mut self,
        x: &str,
        name: &str,
        shifts: &[i32],
        dims: &[usize],
        elem: Elem,
    ) -> String {
        let per = |f: &dyn Fn(i64) -> i64| -> Vec<i64> {
            shifts.iter().map(|&k| f(i64::from(k))).collect()
        };
        let mut v = x.to_string();
        if shifts.iter().any(|&k| k <= 0) {
            // Left shifts: clamp where the result saturates anyway, then multiply.
            let bound = |k: i64| if k > 0 { 1 << 40 } else { ((1i64 << 33) >> (-k).min(62)) + 1 };
            let hi = per(&|k| bound(k));
            let lo = per(&|k| -bound(k));
            let (lo, hi) = (self.b.int64(name, dims, &lo), self.b.int64(name, dims, &hi));
            let above = self.b.node("Max", &[&v, &lo], vec![], name, None);
            v = self.b.node("Min", &[&above, &hi], vec![], name, None);
            let m = self.b.int64(name, dims, &per(&|k| if k > 0 { 1 } else { 1 << (-k).min(62) }));
            v = self.b.node("Mul", &[&v, &m], vec![], name, None);
        }
        if shifts.iter().any(|&k| k > 0) {
            let k = |k: i64| k.clamp(0, MAX_RIGHT_SHIFT);
            let half = self.b.int64(name, dims, &per(&|s| if s > 0 { 1 << (k(s) - 1) } else { 0 }));
            let t = self.b.node("Add", &[&v, &half], vec![], name, None);
            let d = self.b.int64(name, dims, &per(&|s| 1 << k(s)));
            let rem = self.b.node("Mod", &[&t, &d], vec![("fmod", Attr::Int(0))], name, None);
            let floor = self.b.node("Sub", &[&t, &rem], vec![], name, None);
            v = self.b.node("Div", &[&floor, &d], vec![], name, None);
        }
        self.clamp(&v, name, elem)
    }

    /// `x` clamped to `elem`'s range, named `name`.
    pub fn clamp(&mut self, x: &str, name: &str, elem: Elem) -> String {
        let (lo, hi) = elem.range().unwrap_or((i64::MIN, i64::MAX));
        let (lo, hi) = (self.b.int64(name, &[], &[lo]), self.b.int64(name, &[], &[hi]));
        let above = self.b.node("Max", &[x, &lo], vec![], name, None);
        self.b.node("Min", &[&above, &hi], vec![], name, Some(name))
    }

    pub fn relu(&mut self, x: &str, name: &str) -> String {
        let zero = self.b.int64(name, &[], &[0]);
        self.b.node("Max", &[x, &zero], vec![], name, Some(name))
    }

    pub fn add(&mut self, a: &str, z: &str, name: &str, elem: Elem) -> String {
        let sum = self.b.node("Add", &[a, z], vec![], name, None);
        self.clamp(&sum, name, elem)
    }

    pub fn flatten(&mut self, x: &str, name: &str) -> String {
        self.b.node("Flatten", &[x], vec![("axis", Attr::Int(1))], name, Some(name))
    }

    pub fn global_sum_pool(&mut self, x: &str, name: &str, elem: Elem) -> String {
        let axes = self.b.int64(name, &[1], &[2]);
        let sum =
            self.b.node("ReduceSum", &[x, &axes], vec![("keepdims", Attr::Int(0))], name, None);
        self.clamp(&sum, name, elem)
    }

    /// `max_pool1d`: windows padded with the type's least value (never above
    /// a real tap, and every window holds one), then `ReduceMax`.
    pub fn max_pool(
        &mut self,
        x: &str,
        name: &str,
        p: &Pool1d,
        (l, lo): (usize, usize),
        elem: Elem,
    ) -> String {
        let (k, stride, left) = (p.kernel, p.stride(), p.padding);
        let right = ((lo - 1) * stride + k).saturating_sub(l + left);
        let least = elem.range().map_or(0, |r| r.0);
        let padded = self.pad(x, name, left, right, least);
        let idx: Vec<i64> =
            (0..lo).flat_map(|t| (0..k).map(move |j| (t * stride + j) as i64)).collect();
        let windows = self.gather(&padded, name, &idx, [lo, k]);
        let axes = self.b.int64(name, &[1], &[3]);
        self.b.node(
            "ReduceMax",
            &[&windows, &axes],
            vec![("keepdims", Attr::Int(0))],
            name,
            Some(name),
        )
    }

    /// `x` `[N, C, L]` with `left` and `right` steps of `value` added in time.
    fn pad(&mut self, x: &str, name: &str, left: usize, right: usize, value: i64) -> String {
        if left == 0 && right == 0 {
            return x.to_string();
        }
        let pads = self.b.int64(name, &[6], &[0, 0, left as i64, 0, 0, right as i64]);
        let value = self.b.int64(name, &[], &[value]);
        self.b.node("Pad", &[x, &pads, &value], vec![], name, None)
    }

    /// `x[:, :, idx]` with `idx` of shape `dims`: `[N, C, dims...]`.
    fn gather(&mut self, x: &str, name: &str, idx: &[i64], dims: [usize; 2]) -> String {
        let idx = self.b.int64(name, &dims, idx);
        self.b.node("Gather", &[x, &idx], vec![("axis", Attr::Int(2))], name, None)
    }
}

const DOUBLE: i64 = crate::onnx::proto::data_type::DOUBLE as i64;
const INT64: i64 = crate::onnx::proto::data_type::INT64 as i64;
