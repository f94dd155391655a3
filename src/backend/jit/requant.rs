//! `requant` and `shl`: a per-channel shift with rounding and a clamp,
//! `clamp(((x << s[c]) + a[c]) >> r[c], lo, hi)`. When every shift is a
//! right shift of 1..=31 (the usual requantization) it runs on `i32x4`
//! vectors, four steps at a time, with the overflow-free form
//! `(x >> k) + ((x >> (k-1)) & 1)` of `(x + 2^(k-1)) >> k`; otherwise (left
//! shifts, saturation beyond `i32`) in `i64` scalars. Both give the
//! interpreter's integers (tests/jit.rs covers both paths).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, ConstantData, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

use super::dot::{row_bytes, DotConv, Packed};
use super::kernels::{addr, clamp64, load, store, table, Buf, Dims};
use super::loops::{for_n, for_range};
use super::IDX;

/// Steps per vector.
const LANES: i64 = 4;

/// Per channel `c`: `clamp(((x << s[c]) + a[c]) >> r[c], lo, hi)`, the form
/// of both `requant` (`shift_round`) and `shl`; see [`requant_tables`].
/// Into a buffer the range counts channels; into a packed convolution input
/// it counts groups of 4 channels, whose 4 bytes per step are stored as one
/// 16-byte vector (the group's 4 copies).
#[allow(clippy::too_many_arguments)]
pub fn shift_clamp(
    b: &mut FunctionBuilder,
    d: Dims,
    x: Buf,
    y: Sink,
    tables: &ShiftTables,
    lo: i64,
    hi: i64,
    from: Value,
    to: Value,
) {
    let t = Tables::of(b, tables);
    let l = d.l as i64;
    // Steps `0..vl` run as vectors, the rest as scalars.
    let vl = if tables.vector_form() { l / LANES * LANES } else { 0 };
    let clamp = Clamp::new(b, lo, hi);
    match y {
        Sink::Buf(y) => for_range(b, from, to, 1, |b, c| {
            let k = t.channel(b, c);
            let row = b.ins().imul_imm_s(c, l);
            if vl > 0 {
                let s = VectorShift::of(b, &t, c);
                let (s0, s1) = (b.ins().iconst(IDX, 0), b.ins().iconst(IDX, vl));
                for_range(b, s0, s1, LANES, |b, step| {
                    let i = b.ins().iadd(row, step);
                    let (p, off) = addr(b, x, i);
                    let v = b.ins().load(types::I32X4, flags(), p, off);
                    let v = s.apply(b, v);
                    let v = clamp.vector(b, v);
                    let (p, off) = addr(b, y, i);
                    b.ins().store(flags(), v, p, off);
                });
            }
            for_n(b, vl, l, |b, step| {
                let i = b.ins().iadd(row, step);
                let v = load(b, x, i);
                let v = k.apply(b, v, lo, hi);
                store(b, y, i, v);
            });
        }),
        Sink::Packed(at, dc) => for_range(b, from, to, 1, |b, g| {
            // The group's channels 4g..4g+4; those past the last read the
            // last one's row and store 0 (their weights are 0).
            let last = b.ins().iconst(IDX, d.c as i64 - 1);
            let chans: Vec<Channel> = (0..4)
                .map(|j| {
                    let c = b.ins().imul_imm_s(g, 4);
                    let c = b.ins().iadd_imm_s(c, j);
                    let real = b.ins().icmp_imm_s(IntCC::SignedLessThan, c, d.c as i64);
                    let c = b.ins().smin(c, last);
                    let row = b.ins().imul_imm_s(c, l);
                    let vector = (vl > 0).then(|| VectorShift::of(b, &t, c));
                    Channel { real, row, shift: t.channel(b, c), vector }
                })
                .collect();
            let rb = row_bytes(dc) as i64;
            // The address of step `step`'s 16 bytes of this group.
            let dest = |b: &mut FunctionBuilder, step: Value, plus: i64| {
                let row = b.ins().iadd_imm_s(step, at.left as i64 + plus);
                let row = b.ins().imul_imm_s(row, rb);
                let col = b.ins().imul_imm_s(g, 16);
                let off = b.ins().iadd(row, col);
                b.ins().iadd(at.base, off)
            };
            if vl > 0 {
                let offset = b.ins().iconst(types::I32, i64::from(dc.offset));
                let offset = b.ins().splat(types::I32X4, offset);
                let zero = b.ins().iconst(types::I32, 0);
                let zero = b.ins().splat(types::I32X4, zero);
                // Byte j*4+s of the narrowed vector is channel j at step s;
                // step s's store wants channels 0..4 of it, four times.
                let masks: Vec<_> = (0..LANES as u8)
                    .map(|s| {
                        let m: Vec<u8> = (0..16).map(|i| (i % 4) * 4 + s).collect();
                        b.func.dfg.immediates.push(ConstantData::from(m))
                    })
                    .collect();
                let (s0, s1) = (b.ins().iconst(IDX, 0), b.ins().iconst(IDX, vl));
                for_range(b, s0, s1, LANES, |b, step| {
                    let v: Vec<Value> = chans
                        .iter()
                        .map(|ch| {
                            let i = b.ins().iadd(ch.row, step);
                            let (p, off) = addr(b, x, i);
                            let v = b.ins().load(types::I32X4, flags(), p, off);
                            let s = ch.vector.as_ref().expect("vector shifts");
                            let v = s.apply(b, v);
                            let v = clamp.vector(b, v);
                            let v = b.ins().iadd(v, offset);
                            b.ins().select(ch.real, v, zero)
                        })
                        .collect();
                    // Every lane is in 0..=255 here, so the saturating
                    // narrowings only change the width.
                    let lo = b.ins().snarrow(v[0], v[1]);
                    let hi = b.ins().snarrow(v[2], v[3]);
                    let bytes = b.ins().unarrow(lo, hi);
                    for (s, &mask) in masks.iter().enumerate() {
                        let word = b.ins().shuffle(bytes, bytes, mask);
                        let p = dest(b, step, s as i64);
                        b.ins().store(flags(), word, p, 0);
                    }
                });
            }
            for_n(b, vl, l, |b, step| {
                let mut word = b.ins().iconst(types::I32, 0);
                for (j, ch) in chans.iter().enumerate() {
                    let i = b.ins().iadd(ch.row, step);
                    let v = load(b, x, i);
                    let v = ch.shift.apply(b, v, lo, hi);
                    let v = b.ins().iadd_imm_s(v, i64::from(dc.offset));
                    let zero = b.ins().iconst(types::I32, 0);
                    let v = b.ins().select(ch.real, v, zero);
                    let v = b.ins().band_imm_s(v, 0xff);
                    let v = b.ins().ishl_imm_s(v, 8 * j as i64);
                    word = b.ins().bor(word, v);
                }
                let copies = b.ins().splat(types::I32X4, word);
                let p = dest(b, step, 0);
                b.ins().store(flags(), copies, p, 0);
            });
        }),
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// One channel of a packed group.
struct Channel {
    /// Whether it exists (the last group may be partial).
    real: Value,
    /// Its first element in the input buffer.
    row: Value,
    shift: Shift,
    vector: Option<VectorShift>,
}

/// `(x >> k) + ((x >> (k-1)) & 1)` on `i32x4`, `k` in 1..=31: the rounding
/// shift without the `2^(k-1)` addend that could overflow `i32`.
struct VectorShift {
    k: Value,
    k1: Value,
    one: Value,
}

impl VectorShift {
    fn of(b: &mut FunctionBuilder, t: &Tables, c: Value) -> VectorShift {
        let k = load(b, t.right, c);
        let k1 = b.ins().iadd_imm_s(k, -1);
        let one = b.ins().iconst(types::I32, 1);
        let one = b.ins().splat(types::I32X4, one);
        VectorShift { k, k1, one }
    }

    fn apply(&self, b: &mut FunctionBuilder, v: Value) -> Value {
        let q = b.ins().sshr(v, self.k);
        let half = b.ins().sshr(v, self.k1);
        let half = b.ins().band(half, self.one);
        b.ins().iadd(q, half)
    }
}

/// The clamp bounds as vectors.
struct Clamp {
    lo: Value,
    hi: Value,
}

impl Clamp {
    fn new(b: &mut FunctionBuilder, lo: i64, hi: i64) -> Clamp {
        // Vector values are i32: bounds beyond it clamp nothing.
        let fit = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let lo = b.ins().iconst(types::I32, fit(lo));
        let hi = b.ins().iconst(types::I32, fit(hi));
        Clamp { lo: b.ins().splat(types::I32X4, lo), hi: b.ins().splat(types::I32X4, hi) }
    }

    fn vector(&self, b: &mut FunctionBuilder, v: Value) -> Value {
        let v = b.ins().smax(v, self.lo);
        b.ins().smin(v, self.hi)
    }
}

/// Where a requantization writes: its own buffer, or straight into the
/// packed input of the one vector convolution that reads it.
pub enum Sink<'a> {
    Buf(Buf),
    Packed(Packed, &'a DotConv),
}

/// The shift tables as addresses in the code.
struct Tables {
    left: Buf,
    right: Buf,
    add_lo: Buf,
    add_hi: Buf,
}

/// One channel's shift, loaded from the tables.
struct Shift {
    left: Value,
    right: Value,
    add: Value,
}

impl Tables {
    fn of(b: &mut FunctionBuilder, t: &ShiftTables) -> Tables {
        Tables {
            left: table(b, &t.left),
            right: table(b, &t.right),
            add_lo: table(b, &t.add_lo),
            add_hi: table(b, &t.add_hi),
        }
    }

    fn channel(&self, b: &mut FunctionBuilder, c: Value) -> Shift {
        let left = load(b, self.left, c);
        let left = b.ins().sextend(types::I64, left);
        let right = load(b, self.right, c);
        let right = b.ins().sextend(types::I64, right);
        // The addend 2^(k-1) can exceed i32: two halves.
        let alo = load(b, self.add_lo, c);
        let alo = b.ins().uextend(types::I64, alo);
        let ahi = load(b, self.add_hi, c);
        let ahi = b.ins().uextend(types::I64, ahi);
        let ahi = b.ins().ishl_imm_s(ahi, 32);
        let add = b.ins().bor(alo, ahi);
        Shift { left, right, add }
    }
}

impl Shift {
    /// `clamp(((v << left) + add) >> right, lo, hi)` of an `i32`, in `i64`.
    fn apply(&self, b: &mut FunctionBuilder, v: Value, lo: i64, hi: i64) -> Value {
        let v = b.ins().sextend(types::I64, v);
        let v = b.ins().ishl(v, self.left);
        let v = b.ins().iadd(v, self.add);
        let v = b.ins().sshr(v, self.right);
        clamp64(b, v, lo, hi)
    }
}

/// Per-channel shift tables: `(x << left + add) >> right`, with `add` split
/// into 32-bit halves.
pub struct ShiftTables {
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub add_lo: Vec<i32>,
    pub add_hi: Vec<i32>,
}

impl ShiftTables {
    /// Whether every channel is a plain right shift of 1..=31, the form
    /// the vector path computes.
    fn vector_form(&self) -> bool {
        self.left.iter().all(|&s| s == 0) && self.right.iter().all(|k| (1..=31).contains(k))
    }
}

/// The tables of `requant` for shifts `k` (`shift_round`) on `i32` inputs.
/// `k <= 0`: `x << min(-k, 32)` (beyond 32 any nonzero value saturates anyway);
/// `k > 0`: `(x + 2^(k-1)) >> k` with `k` capped at 33 (beyond, every `i32`
/// rounds to 0, as it does at 33).
pub fn requant_tables(shifts: &[i32]) -> ShiftTables {
    let mut t = ShiftTables { left: vec![], right: vec![], add_lo: vec![], add_hi: vec![] };
    for &k in shifts {
        let (left, right, add) = if k > 0 {
            let k = k.min(33);
            (0, k, 1i64 << (k - 1))
        } else {
            (k.unsigned_abs().min(32) as i32, 0, 0)
        };
        t.left.push(left);
        t.right.push(right);
        t.add_lo.push(add as u32 as i32);
        t.add_hi.push((add >> 32) as i32);
    }
    t
}

/// The tables of `shl` (left shifts `0..=62`; beyond 32 every nonzero i32
/// saturates, as it does at 32).
pub fn shl_tables(shifts: &[i32]) -> ShiftTables {
    let left: Vec<i32> = shifts.iter().map(|&s| s.clamp(0, 32)).collect();
    let zeros = vec![0; left.len()];
    ShiftTables { left, right: zeros.clone(), add_lo: zeros.clone(), add_hi: zeros }
}
