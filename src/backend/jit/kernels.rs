//! One lowering function per integer op: each emits the loops that compute
//! one sample of its result into its buffer. Values live as `i32` arrays
//! (every integer type of a program fits); arithmetic that can leave `i32`
//! (requantization, alignment, sums) runs in `i64` and saturates exactly as
//! the reference interpreter does. MACs add in `i32`: the program loader has
//! proved (spec section 7) that no partial sum leaves the accumulator.

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

use super::loops::{for_n, for_range};
use super::IDX;
use crate::backend::interp::taps;
use crate::ir::op::{Conv1d, Pool1d};

/// Where a value's elements live: `base + 4 * (offset + index)`.
#[derive(Debug, Clone, Copy)]
pub struct Buf {
    pub base: Value,
    pub offset: i64,
}

/// Shapes of one op application: operand `[c, l]`, result `[co, lo]`.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub c: usize,
    pub l: usize,
    pub co: usize,
    pub lo: usize,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The address of element `idx` (an `i64` Value) of `buf`.
pub fn addr(b: &mut FunctionBuilder, buf: Buf, idx: Value) -> (Value, i32) {
    let bytes = b.ins().ishl_imm_s(idx, 2);
    let p = b.ins().iadd(buf.base, bytes);
    (p, (buf.offset * 4) as i32)
}

pub fn load(b: &mut FunctionBuilder, buf: Buf, idx: Value) -> Value {
    let (p, off) = addr(b, buf, idx);
    b.ins().load(types::I32, flags(), p, off)
}

pub fn store(b: &mut FunctionBuilder, buf: Buf, idx: Value, v: Value) {
    let (p, off) = addr(b, buf, idx);
    b.ins().store(flags(), v, p, off);
}

/// A constant table baked into the code as its address.
pub fn table(b: &mut FunctionBuilder, data: &[i32]) -> Buf {
    Buf { base: b.ins().iconst(IDX, data.as_ptr() as i64), offset: 0 }
}

fn at(b: &mut FunctionBuilder, base: Value, plus: i64) -> Value {
    b.ins().iadd_imm_s(base, plus)
}

/// `y[co, t] = bias[co] + sum over (ci, k) of w[co, ci, k] * x[ci, t*stride + k*dilation - left]`.
pub fn conv1d(
    b: &mut FunctionBuilder,
    op: &Conv1d,
    d: Dims,
    x: Buf,
    y: Buf,
    w: &[i32],
    bias: Option<&[i32]>,
) {
    let (cg, og) = (d.c / op.groups, op.out_channels / op.groups);
    let (left, _) = op.padding.amounts(op.kernel, op.dilation);
    let wt = table(b, w);
    let bt = bias.map(|v| table(b, v));
    let (l, lo, kernel, stride) = (d.l as i64, d.lo as i64, op.kernel as i64, op.stride as i64);
    for_n(b, 0, op.groups as i64, |b, g| {
        for_n(b, 0, og as i64, |b, j| {
            // co = g * og + j; its row of y and of w.
            let co = b.ins().imul_imm_s(g, og as i64);
            let co = b.ins().iadd(co, j);
            let yrow = b.ins().imul_imm_s(co, lo);
            let init = match bt {
                Some(bt) => load(b, bt, co),
                None => b.ins().iconst(types::I32, 0),
            };
            for_n(b, 0, lo, |b, t| {
                let i = b.ins().iadd(yrow, t);
                store(b, y, i, init);
            });
            let xg = b.ins().imul_imm_s(g, (cg * d.l) as i64);
            let wrow = b.ins().imul_imm_s(co, cg as i64 * kernel);
            for k in 0..kernel {
                let off = k * op.dilation as i64 - left as i64;
                let (t0, t1) = taps(off as isize, op.stride, d.l, d.lo);
                let (t0, t1) = (t0 as i64, t1 as i64);
                if t0 >= t1 {
                    continue;
                }
                for_n(b, 0, cg as i64, |b, ci| {
                    let wi = b.ins().imul_imm_s(ci, kernel);
                    let wi = b.ins().iadd(wrow, wi);
                    let wi = at(b, wi, k);
                    let wv = load(b, wt, wi);
                    let xrow = b.ins().imul_imm_s(ci, l);
                    let xrow = b.ins().iadd(xg, xrow);
                    let xrow = at(b, xrow, off);
                    for_n(b, t0, t1, |b, t| {
                        let xi = b.ins().imul_imm_s(t, stride);
                        let xi = b.ins().iadd(xrow, xi);
                        let xv = load(b, x, xi);
                        let yi = b.ins().iadd(yrow, t);
                        let acc = load(b, y, yi);
                        let p = b.ins().imul(wv, xv);
                        let acc = b.ins().iadd(acc, p);
                        store(b, y, yi, acc);
                    });
                });
            }
        });
    });
}

/// `y[r] = bias[r] + sum over i of w[r, i] * x[i]`.
pub fn linear(b: &mut FunctionBuilder, d: Dims, x: Buf, y: Buf, w: &[i32], bias: Option<&[i32]>) {
    let wt = table(b, w);
    let bt = bias.map(|v| table(b, v));
    let f = d.c as i64;
    for_n(b, 0, d.co as i64, |b, r| {
        let init = match bt {
            Some(bt) => load(b, bt, r),
            None => b.ins().iconst(types::I32, 0),
        };
        store(b, y, r, init);
        let wrow = b.ins().imul_imm_s(r, f);
        for_n(b, 0, f, |b, i| {
            let wi = b.ins().iadd(wrow, i);
            let wv = load(b, wt, wi);
            let xv = load(b, x, i);
            let acc = load(b, y, r);
            let p = b.ins().imul(wv, xv);
            let acc = b.ins().iadd(acc, p);
            store(b, y, r, acc);
        });
    });
}

/// `clamp(v, lo, hi)` of an `i64`, as `i32`.
pub fn clamp64(b: &mut FunctionBuilder, v: Value, lo: i64, hi: i64) -> Value {
    let (l, h) = (b.ins().iconst(types::I64, lo), b.ins().iconst(types::I64, hi));
    let v = b.ins().smax(v, l);
    let v = b.ins().smin(v, h);
    b.ins().ireduce(types::I32, v)
}

/// `y = clamp(a + b)` in `i64`.
pub fn add(b: &mut FunctionBuilder, n: usize, x: Buf, z: Buf, y: Buf, lo: i64, hi: i64) {
    for_n(b, 0, n as i64, |b, i| {
        let u = load(b, x, i);
        let u = b.ins().sextend(types::I64, u);
        let v = load(b, z, i);
        let v = b.ins().sextend(types::I64, v);
        let s = b.ins().iadd(u, v);
        let s = clamp64(b, s, lo, hi);
        store(b, y, i, s);
    });
}

/// `y = max(x, 0)`.
pub fn relu(b: &mut FunctionBuilder, n: usize, x: Buf, y: Buf) {
    for_n(b, 0, n as i64, |b, i| {
        let v = load(b, x, i);
        let zero = b.ins().iconst(types::I32, 0);
        let v = b.ins().smax(v, zero);
        store(b, y, i, v);
    });
}

/// `y[c] = clamp(sum over t of x[c, t])`, exact: in `i64`, or in `i32`
/// lanes where values of magnitude `bound` cannot overflow them.
pub fn sum_pool(b: &mut FunctionBuilder, d: Dims, x: Buf, y: Buf, bound: i64) {
    let l = d.l as i64;
    // Where no sum of `l` values of magnitude `bound` can leave `i32`,
    // steps `0..vl` add as `i32x4` vectors (four partial sums a channel).
    let vl = if bound.saturating_mul(l) <= i64::from(i32::MAX) { l / 4 * 4 } else { 0 };
    for_n(b, 0, d.c as i64, |b, c| {
        let row = b.ins().imul_imm_s(c, l);
        let zero = b.ins().iconst(types::I64, 0);
        // The running sum: a variable, i.e. an SSA value through the loop.
        let acc = b.declare_var(types::I64);
        b.def_var(acc, zero);
        if vl > 0 {
            let vacc = b.declare_var(types::I32X4);
            let z = b.ins().iconst(types::I32, 0);
            let z = b.ins().splat(types::I32X4, z);
            b.def_var(vacc, z);
            let (s0, s1) = (b.ins().iconst(IDX, 0), b.ins().iconst(IDX, vl));
            for_range(b, s0, s1, 4, |b, t| {
                let i = b.ins().iadd(row, t);
                let (p, off) = addr(b, x, i);
                let v = b.ins().load(types::I32X4, MemFlagsData::trusted(), p, off);
                let s = b.use_var(vacc);
                let s = b.ins().iadd(s, v);
                b.def_var(vacc, s);
            });
            let v = b.use_var(vacc);
            let mut sum = b.ins().extractlane(v, 0);
            for lane in 1..4u8 {
                let e = b.ins().extractlane(v, lane);
                sum = b.ins().iadd(sum, e);
            }
            let sum = b.ins().sextend(types::I64, sum);
            b.def_var(acc, sum);
        }
        for_n(b, vl, l, |b, t| {
            let i = b.ins().iadd(row, t);
            let v = load(b, x, i);
            let v = b.ins().sextend(types::I64, v);
            let s = b.use_var(acc);
            let s = b.ins().iadd(s, v);
            b.def_var(acc, s);
        });
        let s = b.use_var(acc);
        let s = clamp64(b, s, i32::MIN as i64, i32::MAX as i64);
        store(b, y, c, s);
    });
}

/// `y[c, o] = max over the window's taps inside the input`.
pub fn max_pool(b: &mut FunctionBuilder, p: &Pool1d, d: Dims, x: Buf, y: Buf) {
    let (l, lo, k, stride, pad) =
        (d.l as i64, d.lo as i64, p.kernel as i64, p.stride() as i64, p.padding as i64);
    for_n(b, 0, d.c as i64, |b, c| {
        let xrow = b.ins().imul_imm_s(c, l);
        let yrow = b.ins().imul_imm_s(c, lo);
        for_n(b, 0, lo, |b, o| {
            // Taps from max(o*stride - pad, 0) to min(o*stride - pad + k, l).
            let s = b.ins().imul_imm_s(o, stride);
            let s = b.ins().iadd_imm_s(s, -pad);
            let e = b.ins().iadd_imm_s(s, k);
            let zero = b.ins().iconst(IDX, 0);
            let s = b.ins().smax(s, zero);
            let lim = b.ins().iconst(IDX, l);
            let e = b.ins().smin(e, lim);
            let first = b.ins().iadd(xrow, s);
            let m = b.declare_var(types::I32);
            let v0 = load(b, x, first);
            b.def_var(m, v0);
            for_range(b, s, e, 1, |b, t| {
                let i = b.ins().iadd(xrow, t);
                let v = load(b, x, i);
                let cur = b.use_var(m);
                let v = b.ins().smax(cur, v);
                b.def_var(m, v);
            });
            let yi = b.ins().iadd(yrow, o);
            let v = b.use_var(m);
            store(b, y, yi, v);
        });
    });
}

/// `y = x`, element by element.
pub fn copy(b: &mut FunctionBuilder, n: usize, x: Buf, y: Buf) {
    for_n(b, 0, n as i64, |b, i| {
        let v = load(b, x, i);
        store(b, y, i, v);
    });
}
