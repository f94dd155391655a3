//! The vector convolution: `u8 x i8` products summed four at a time into
//! `i32x4` lanes, the tree that Cranelift's x64 backend turns into one
//! `vpdpbusd` on AVX-VNNI / AVX512-VNNI hosts and into widening multiplies
//! and pairwise adds elsewhere (the same exact integers either way).
//!
//! Layouts. The input is packed time-major, `u8[rows][c4]` (`c4` = channels
//! rounded up to 4), with the padding rows present, so every tap is a plain
//! load. Signed inputs are offset by 128 into `u8` (padding too), and the
//! bias absorbs `-128 * sum(w)`: products stay exact and the sum is the
//! same integer. Weights are packed per block of 4 output channels, tap and
//! group of 4 input channels: 16 bytes whose lane `j` holds the 4 weights of
//! output channel `4b + j`. One step broadcasts 4 input bytes of one time
//! step to all lanes and accumulates 4 output channels.

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::kernels::{load, store, Buf};
use super::loops::{for_n, for_range};
use super::IDX;
use crate::ir::op::Conv1d;

/// Output channel blocks (of 4) and time steps computed together: 9
/// accumulators, 3 weight vectors and a broadcast fit x64's 16 vector
/// registers. `vpdpbusd` has a latency of 5 cycles and 2 issue per cycle, so
/// more independent accumulators keep more of the peak: 3 x 3 measured 3.5 %
/// faster than 2 x 4 on the FCN; 2 x 5 spills and ran about a third slower.
const BLOCKS: usize = 3;
const STEPS: usize = 3;

/// A conv the vector kernel computes: its packed weights and adjusted bias.
pub struct DotConv {
    /// `[blocks][kernel][c4 / 4]` of 16 bytes, as little-endian `i32` words.
    pub weights: Vec<i32>,
    /// Per padded output channel: `b - offset * sum(w)`.
    pub bias: Vec<i32>,
    /// Input channels rounded up to 4; output channels up to a tile.
    pub c4: usize,
    pub co_pad: usize,
    /// Added to every input integer to make it a `u8` (128 for signed).
    pub offset: i32,
    /// Output channels of one tile of the kernel family that computes it
    /// (`micro::Kernels::tile`; [`TILE`] for this file's).
    pub tile: usize,
}

/// Output channels of one tile of the code generated here.
pub const TILE: usize = 4 * BLOCKS;

impl DotConv {
    /// The packing of `op`'s weights `w` (`[co, c, k]`) and bias, when every
    /// weight fits `i8` and inputs (`signed`, `bits`) fit `u8` after the
    /// offset; `None` otherwise (the scalar kernel runs). Output channels
    /// are padded to a multiple of `tile` (a multiple of 4).
    pub fn plan(
        op: &Conv1d,
        c: usize,
        w: &[i32],
        b: Option<&[i32]>,
        (signed, bits): (bool, u8),
        tile: usize,
    ) -> Option<DotConv> {
        // Inputs of up to 8 bits fit u8: unsigned as they are, signed after
        // the offset of 128.
        if op.groups != 1 || bits > 8 || w.iter().any(|&v| !(-128..=127).contains(&v)) {
            return None;
        }
        let (co, k) = (op.out_channels, op.kernel);
        let c4 = c.div_ceil(4) * 4;
        let co_pad = co.div_ceil(tile) * tile;
        let offset = if signed { 128 } else { 0 };
        let mut bytes = vec![0u8; co_pad / 4 * k * c4 * 4];
        for o in 0..co {
            for ci in 0..c {
                for t in 0..k {
                    let (blk, lane) = (o / 4, o % 4);
                    let at = ((blk * k + t) * (c4 / 4) + ci / 4) * 16 + lane * 4 + ci % 4;
                    bytes[at] = w[(o * c + ci) * k + t] as i8 as u8;
                }
            }
        }
        let weights =
            bytes.chunks(4).map(|q| i32::from_le_bytes([q[0], q[1], q[2], q[3]])).collect();
        let bias = (0..co_pad)
            .map(|o| {
                if o >= co {
                    return 0;
                }
                let sum: i64 = w[o * c * k..][..c * k].iter().map(|&v| i64::from(v)).sum();
                let adjusted = i64::from(b.map_or(0, |b| b[o])) - i64::from(offset) * sum;
                // Wrapping is exact here: the true accumulator fits i32 and
                // i32 addition is arithmetic modulo 2^32.
                adjusted as i32
            })
            .collect();
        Some(DotConv { weights, bias, c4, co_pad, offset, tile })
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Rows of the packed input: the padded length (every tap of every output
/// step lies inside it, as the conv's output length guarantees).
pub fn packed_rows(op: &Conv1d, l: usize) -> usize {
    let (left, right) = op.padding.amounts(op.kernel, op.dilation);
    left + l + right
}

/// Bytes per packed row: each group of 4 channels is stored 4 times, so a
/// step's 4 input bytes load as a ready broadcast vector.
pub fn row_bytes(dc: &DotConv) -> usize {
    dc.c4 * 4
}

/// Where the packed input of a conv lives and how it is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Packed {
    /// Byte address of row 0.
    pub base: Value,
    /// Rows before the input's first step (the conv's left padding).
    pub left: usize,
    /// Rows in all (see [`packed_rows`]).
    pub rows: usize,
    /// The input's length.
    pub l: usize,
}

/// Fills the padding rows (before and after the input) with `offset`, the
/// image of 0.
/// Rows are whole 16-byte vectors (`row_bytes` is 16 per group of 4).
pub fn fill_padding(b: &mut FunctionBuilder, at: Packed, dc: &DotConv) {
    let fill = b.ins().iconst(types::I8, i64::from(dc.offset));
    let fill = b.ins().splat(types::I8X16, fill);
    let rb = row_bytes(dc);
    for (from, to) in [(0, at.left * rb), ((at.left + at.l) * rb, at.rows * rb)] {
        if from < to {
            let (from, to) = (b.ins().iconst(IDX, from as i64), b.ins().iconst(IDX, to as i64));
            for_range(b, from, to, 16, |b, i| {
                let p = b.ins().iadd(at.base, i);
                b.ins().store(flags(), fill, p, 0);
            });
        }
    }
}

/// Stores `v + offset` (an `i32` Value) as the byte of channel `ci` at input
/// step `t` (both `i64` Values): row `left + t`, group `ci / 4`, byte
/// `ci % 4` of each of the group's 4 copies.
pub fn store_packed(
    b: &mut FunctionBuilder,
    at: Packed,
    dc: &DotConv,
    ci: Value,
    t: Value,
    v: Value,
) {
    let rb = row_bytes(dc) as i64;
    let grp = b.ins().ushr_imm_s(ci, 2);
    let grp = b.ins().ishl_imm_s(grp, 4);
    let sub = b.ins().band_imm_s(ci, 3);
    let col = b.ins().iadd(grp, sub);
    let v = b.ins().iadd_imm_s(v, i64::from(dc.offset));
    let row = b.ins().iadd_imm_s(t, at.left as i64);
    let row = b.ins().imul_imm_s(row, rb);
    let byte = b.ins().iadd(row, col);
    let p = b.ins().iadd(at.base, byte);
    for copy in 0..4 {
        b.ins().istore8(flags(), v, p, copy * 4);
    }
}

/// Packs `x` (`i32[c, l]`, channel-major) with its padding.
pub fn pack(b: &mut FunctionBuilder, x: Buf, c: usize, at: Packed, dc: &DotConv) {
    fill_padding(b, at, dc);
    for_n(b, 0, c as i64, |b, ci| {
        let row = b.ins().imul_imm_s(ci, at.l as i64);
        for_n(b, 0, at.l as i64, |b, t| {
            let i = b.ins().iadd(row, t);
            let v = load(b, x, i);
            store_packed(b, at, dc, ci, t, v);
        });
    });
}

/// `acc + sum over 4 bytes of w (signed) * x (unsigned)`, per `i32` lane.
fn dot(b: &mut FunctionBuilder, acc: Value, x: Value, w: Value) -> Value {
    let (wl, xl) = (b.ins().swiden_low(w), b.ins().uwiden_low(x));
    let lo = b.ins().imul(wl, xl);
    let (wh, xh) = (b.ins().swiden_high(w), b.ins().uwiden_high(x));
    let hi = b.ins().imul(wh, xh);
    let (a, c) = (b.ins().swiden_low(lo), b.ins().swiden_high(lo));
    let plo = b.ins().iadd_pairwise(a, c);
    let (a, c) = (b.ins().swiden_low(hi), b.ins().swiden_high(hi));
    let phi = b.ins().iadd_pairwise(a, c);
    let sum = b.ins().iadd_pairwise(plo, phi);
    b.ins().iadd(sum, acc)
}

/// The number of output channel tiles a step's range counts.
pub fn tiles(dc: &DotConv) -> usize {
    dc.co_pad / dc.tile
}

/// The convolution from the packed input `xp` (byte address) into `y`
/// (`i32[co_pad, lo]`, channel-major), for output channel tiles `from..to`
/// (of [`tiles`]), when `dc` was planned with tiles of [`TILE`].
#[allow(clippy::too_many_arguments)]
pub fn conv(
    b: &mut FunctionBuilder,
    op: &Conv1d,
    lo: usize,
    xp: Value,
    y: Buf,
    dc: &DotConv,
    from: Value,
    to: Value,
) {
    assert_eq!(dc.tile, TILE, "a convolution planned for a microkernel");
    let wt = b.ins().iconst(IDX, dc.weights.as_ptr() as i64);
    let bt = Buf { base: b.ins().iconst(IDX, dc.bias.as_ptr() as i64), offset: 0 };
    let (groups4, kernel) = (dc.c4 / 4, op.kernel as i64);
    let row_bytes = row_bytes(dc) as i64;
    let full = (lo / STEPS) as i64;
    let tile_bytes = kernel * groups4 as i64 * 16;
    for_range(b, from, to, 1, |b, cb| {
        let wblk = b.ins().imul_imm_s(cb, tile_bytes * BLOCKS as i64);
        let wblk = b.ins().iadd(wt, wblk);
        let co0 = b.ins().imul_imm_s(cb, (4 * BLOCKS) as i64);
        let tiles = |b: &mut FunctionBuilder, t0: Value, steps: usize| {
            let accs: Vec<Variable> =
                (0..BLOCKS * steps).map(|_| b.declare_var(types::I32X4)).collect();
            for blk in 0..BLOCKS {
                let at = b.ins().iadd_imm_s(co0, (4 * blk) as i64);
                let bytes = b.ins().ishl_imm_s(at, 2);
                let p = b.ins().iadd(bt.base, bytes);
                let bias = b.ins().load(types::I32X4, flags(), p, 0);
                for s in 0..steps {
                    b.def_var(accs[blk * steps + s], bias);
                }
            }
            for_n(b, 0, kernel, |b, k| {
                // Input row of step s: (t0 + s) * stride + k * dilation.
                let r = b.ins().imul_imm_s(t0, op.stride as i64);
                let kd = b.ins().imul_imm_s(k, op.dilation as i64);
                let r = b.ins().iadd(r, kd);
                let r = b.ins().imul_imm_s(r, row_bytes);
                let xrow = b.ins().iadd(xp, r);
                let wk = b.ins().imul_imm_s(k, groups4 as i64 * 16);
                let wk = b.ins().iadd(wblk, wk);
                // Weight and input pointers advance 16 bytes a group: loop
                // variables, so the loop body holds no address arithmetic.
                let (wv, xv) = (b.declare_var(IDX), b.declare_var(IDX));
                b.def_var(wv, wk);
                b.def_var(xv, xrow);
                for_n(b, 0, groups4 as i64, |b, _| {
                    let (wp, xq) = (b.use_var(wv), b.use_var(xv));
                    let ws: Vec<Value> = (0..BLOCKS)
                        .map(|blk| {
                            b.ins().load(
                                types::I8X16,
                                flags(),
                                wp,
                                (blk as i64 * tile_bytes) as i32,
                            )
                        })
                        .collect();
                    for s in 0..steps {
                        let off = (s * op.stride) as i64 * row_bytes;
                        let xv = b.ins().load(types::I8X16, flags(), xq, off as i32);
                        for (blk, &w) in ws.iter().enumerate() {
                            let v = accs[blk * steps + s];
                            let acc = b.use_var(v);
                            let acc = dot(b, acc, xv, w);
                            b.def_var(v, acc);
                        }
                    }
                    let (wn, xn) = (b.ins().iadd_imm_s(wp, 16), b.ins().iadd_imm_s(xq, 16));
                    b.def_var(wv, wn);
                    b.def_var(xv, xn);
                });
            });
            for blk in 0..BLOCKS {
                for s in 0..steps {
                    let acc = b.use_var(accs[blk * steps + s]);
                    let t = b.ins().iadd_imm_s(t0, s as i64);
                    for lane in 0..4u8 {
                        let v = b.ins().extractlane(acc, lane);
                        let co = b.ins().iadd_imm_s(co0, (4 * blk) as i64 + i64::from(lane));
                        let i = b.ins().imul_imm_s(co, lo as i64);
                        let i = b.ins().iadd(i, t);
                        store(b, y, i, v);
                    }
                }
            }
        };
        for_n(b, 0, full, |b, tile| {
            let t0 = b.ins().imul_imm_s(tile, STEPS as i64);
            tiles(b, t0, STEPS);
        });
        for t in (full as usize * STEPS)..lo {
            let t0 = b.ins().iconst(IDX, t as i64);
            tiles(b, t0, 1);
        }
    });
}
