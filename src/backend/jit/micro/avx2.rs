//! The AVX2 microkernels, two of them; `pack` picks one per convolution.
//!
//! - **bytes**, for weights of at most 64 in magnitude (7 bits and fewer,
//!   the sub-8-bit layers potc is for): `vpmaddubsw` multiplies 32 `u8`
//!   inputs by 32 `i8` weights and adds pairs into 16-bit lanes, which
//!   then sum `run16` times in 16 bits before `vpmaddwd` by ones widens
//!   them into `i32`. Exact: a pair is at most `2 * 255 * max|w|`, and
//!   `run16` is the most such pairs whose sum stays within `i16`. One
//!   vector holds 4 output channels x 8 input channels (two groups).
//! - **words**, for any `i8` weights: inputs and weights widened to 16
//!   bits, multiplied in pairs by `vpmaddwd` into `i32` lanes (a pair is
//!   at most `2 * 255 * 128`). One vector holds 4 output channels x 4 input
//!   channels: lanes `2m` and `2m + 1` carry channel `m`'s two pairs, added
//!   together once at the end.
//!
//! Each keeps a tile of 3 blocks of 4 output channels and a few time steps
//! in x64's 16 vector registers. The only `unsafe` of the family is here;
//! the contract is in `micro`.

use std::arch::x86_64::*;

// Tiles of 3 blocks of 4 output channels, as `dot.rs` plans them.
use super::super::dot::{DotConv, TILE};
use super::ConvSpec;
use crate::ir::op::Conv1d;

const BLOCKS: usize = TILE / 4;
/// Time steps computed together.
const STEPS: usize = 4;
/// 16-bit weights of one (tap, group of 4 input channels) of one tile.
const GROUP: usize = BLOCKS * 16;

/// The largest input byte: signed inputs are offset into `0..=255`.
const X_MAX: i32 = 255;

/// The packed weights of convolution `op` (`w`: `[co, c, k]`), the kernel
/// that reads them and its `run16`.
pub fn pack(op: &Conv1d, dc: &DotConv, w: &[i32]) -> (Vec<u8>, usize, usize) {
    let w_max = w.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0).max(1) as i32;
    let run16 = (i16::MAX as i32 / (2 * X_MAX * w_max)) as usize;
    if run16 >= 1 {
        let bytes = pack_bytes(op, dc, w).into_iter().map(|v| v as u8).collect();
        (bytes, conv_bytes as Kernel as usize, run16)
    } else {
        let words = pack_words(op, dc, w).into_iter().flat_map(i16::to_le_bytes).collect();
        (words, conv as Kernel as usize, 0)
    }
}

type Kernel = unsafe extern "C" fn(*const ConvSpec, *const u8, *mut i32, i64, i64);

/// Input channel groups of 4, rounded up to pairs (for `bytes`).
fn pairs(dc: &DotConv) -> usize {
    (dc.c4 / 4).div_ceil(2)
}

/// Weights `[co, c, k]` packed `[tile][tap][group pair][block][2 groups][4 out][4 in]`
/// as `i8`, zero where a channel is padding.
fn pack_bytes(op: &Conv1d, dc: &DotConv, w: &[i32]) -> Vec<i8> {
    let (co, k, gp) = (op.out_channels, op.kernel, pairs(dc));
    let c = w.len() / (co * k).max(1);
    let mut out = vec![0i8; dc.co_pad / TILE * k * gp * BLOCKS * 32];
    for o in 0..co {
        let (tile, blk, m) = (o / TILE, o % TILE / 4, o % 4);
        for ci in 0..c {
            let (g, j) = (ci / 4, ci % 4);
            for t in 0..k {
                let at =
                    (((tile * k + t) * gp + g / 2) * BLOCKS + blk) * 32 + (g % 2) * 16 + m * 4 + j;
                out[at] = w[(o * c + ci) * k + t] as i8;
            }
        }
    }
    out
}

/// Weights `[co, c, k]` packed `[tile][tap][group][block][4 out][4 in]` as
/// `i16`, zero where a channel is padding.
fn pack_words(op: &Conv1d, dc: &DotConv, w: &[i32]) -> Vec<i16> {
    let (co, k, g4) = (op.out_channels, op.kernel, dc.c4 / 4);
    let c = w.len() / (co * k).max(1);
    let mut out = vec![0i16; dc.co_pad / TILE * k * g4 * GROUP];
    for o in 0..co {
        let (tile, blk, m) = (o / TILE, o % TILE / 4, o % 4);
        for ci in 0..c {
            for t in 0..k {
                let at = ((tile * k + t) * g4 + ci / 4) * GROUP + blk * 16 + m * 4 + ci % 4;
                out[at] = w[(o * c + ci) * k + t] as i16;
            }
        }
    }
    out
}

/// Tiles `from..to` of the convolution `spec` (the contract is in `micro`).
///
/// # Safety
/// The caller upholds the microkernel contract and the host has AVX2
/// (`Kernels::resolve` checked it).
#[target_feature(enable = "avx2")]
unsafe extern "C" fn conv(spec: *const ConvSpec, x: *const u8, y: *mut i32, from: i64, to: i64) {
    // SAFETY: `spec` points to a live ConvSpec (contract).
    let s = unsafe { &*spec };
    let tile_len = s.kernel * s.groups4 * GROUP;
    for tile in from.max(0) as usize..to.max(0) as usize {
        // SAFETY: tile < co_pad / 12, and the weights hold that many tiles.
        let w = unsafe { s.weights.cast::<i16>().add(tile * tile_len) };
        let mut t = 0;
        while t + STEPS <= s.lo {
            // SAFETY: as for this function; steps t..t+STEPS exist.
            unsafe { steps::<STEPS>(s, x, w, y, tile * TILE, t) };
            t += STEPS;
        }
        while t < s.lo {
            // SAFETY: as above, for one step.
            unsafe { steps::<1>(s, x, w, y, tile * TILE, t) };
            t += 1;
        }
    }
}

/// Output channels `co0..co0 + 12` at steps `t0..t0 + S`. Indexed loops:
/// the accumulators are a register tile, indexed by step and block.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn steps<const S: usize>(
    s: &ConvSpec,
    x: *const u8,
    w: *const i16,
    y: *mut i32,
    co0: usize,
    t0: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); S]; BLOCKS];
    for k in 0..s.kernel {
        let row = (t0 * s.stride + k * s.dilation) * s.row_bytes;
        for g in 0..s.groups4 {
            // SAFETY: (k, g) indexes this tile's weights; each block is 16 i16.
            let wg = unsafe { w.add((k * s.groups4 + g) * GROUP) };
            // SAFETY: 32-byte unaligned loads inside the weights.
            let wv: [__m256i; BLOCKS] =
                std::array::from_fn(|b| unsafe { _mm256_loadu_si256(wg.add(b * 16).cast()) });
            for st in 0..S {
                // SAFETY: row `(t0 + st) * stride + k * dilation` is inside the
                // packed rows (the output length guarantees every tap is),
                // and group g's 16 bytes inside its row.
                let xv = unsafe {
                    let p = x.add(row + st * s.stride * s.row_bytes + g * 16);
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(p.cast()))
                };
                for b in 0..BLOCKS {
                    acc[b][st] = _mm256_add_epi32(acc[b][st], _mm256_madd_epi16(xv, wv[b]));
                }
            }
        }
    }
    for (b, block) in acc.iter().enumerate() {
        for (st, &v) in block.iter().enumerate() {
            // Lanes 2m and 2m + 1 hold channel m's halves.
            let h = _mm256_hadd_epi32(v, v);
            let (lo, hi) = (_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
            let ch = [
                _mm_extract_epi32::<0>(lo),
                _mm_extract_epi32::<1>(lo),
                _mm_extract_epi32::<0>(hi),
                _mm_extract_epi32::<1>(hi),
            ];
            for (m, v) in ch.into_iter().enumerate() {
                let co = co0 + 4 * b + m;
                // SAFETY: co < co_pad (bias length) and y holds co_pad * lo.
                unsafe { *y.add(co * s.lo + t0 + st) = v.wrapping_add(*s.bias.add(co)) };
            }
        }
    }
}

/// Tiles `from..to` with the `bytes` kernel (the contract is in `micro`).
///
/// # Safety
/// As for `conv`; the weights were packed by `pack_bytes`, and `run16`
/// keeps 16-bit sums exact (`pack`).
#[target_feature(enable = "avx2")]
unsafe extern "C" fn conv_bytes(
    spec: *const ConvSpec,
    x: *const u8,
    y: *mut i32,
    from: i64,
    to: i64,
) {
    // SAFETY: `spec` points to a live ConvSpec (contract).
    let s = unsafe { &*spec };
    let tile_len = s.kernel * s.groups4.div_ceil(2) * BLOCKS * 32;
    for tile in from.max(0) as usize..to.max(0) as usize {
        // SAFETY: tile < co_pad / 12, and the weights hold that many tiles.
        let w = unsafe { s.weights.add(tile * tile_len) };
        let mut t = 0;
        while t + BYTE_STEPS <= s.lo {
            // SAFETY: as for this function; steps t..t+BYTE_STEPS exist.
            unsafe { byte_steps::<BYTE_STEPS>(s, x, w, y, tile * TILE, t) };
            t += BYTE_STEPS;
        }
        while t < s.lo {
            // SAFETY: as above, for one step.
            unsafe { byte_steps::<1>(s, x, w, y, tile * TILE, t) };
            t += 1;
        }
    }
}

/// Time steps the `bytes` kernel computes together: 6 accumulators in 16
/// bits, 6 in 32, the inputs, a weight vector and the ones fill the registers.
const BYTE_STEPS: usize = 2;

/// Output channels `co0..co0 + 12` at steps `t0..t0 + S`, with the `bytes`
/// kernel. Indexed loops: the accumulators are a register tile.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn byte_steps<const S: usize>(
    s: &ConvSpec,
    x: *const u8,
    w: *const u8,
    y: *mut i32,
    co0: usize,
    t0: usize,
) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); S]; BLOCKS];
    let mut part = [[_mm256_setzero_si256(); S]; BLOCKS];
    let pairs = s.groups4.div_ceil(2);
    let mut run = 0;
    for k in 0..s.kernel {
        let row = (t0 * s.stride + k * s.dilation) * s.row_bytes;
        for gp in 0..pairs {
            // SAFETY: row `(t0 + st) * stride + k * dilation` is a packed row;
            // 32 bytes from group 2 * gp end at most 16 bytes past it, inside
            // the next row or the slack after the last.
            let xs: [__m256i; S] = std::array::from_fn(|st| unsafe {
                let p = x.add(row + st * s.stride * s.row_bytes + gp * 32);
                _mm256_loadu_si256(p.cast())
            });
            for b in 0..BLOCKS {
                // SAFETY: (k, gp, b) indexes this tile's weights, 32 bytes each.
                let wv = unsafe {
                    _mm256_loadu_si256(w.add(((k * pairs + gp) * BLOCKS + b) * 32).cast())
                };
                for st in 0..S {
                    part[b][st] = _mm256_add_epi16(part[b][st], _mm256_maddubs_epi16(xs[st], wv));
                }
            }
            run += 1;
            if run == s.run16 {
                for b in 0..BLOCKS {
                    for st in 0..S {
                        acc[b][st] =
                            _mm256_add_epi32(acc[b][st], _mm256_madd_epi16(part[b][st], ones));
                        part[b][st] = _mm256_setzero_si256();
                    }
                }
                run = 0;
            }
        }
    }
    for b in 0..BLOCKS {
        for st in 0..S {
            acc[b][st] = _mm256_add_epi32(acc[b][st], _mm256_madd_epi16(part[b][st], ones));
        }
    }
    for (b, block) in acc.iter().enumerate() {
        for (st, &v) in block.iter().enumerate() {
            // Lanes m and m + 4 hold channel m's two groups.
            let h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            let ch = [
                _mm_extract_epi32::<0>(h),
                _mm_extract_epi32::<1>(h),
                _mm_extract_epi32::<2>(h),
                _mm_extract_epi32::<3>(h),
            ];
            for (m, v) in ch.into_iter().enumerate() {
                let co = co0 + 4 * b + m;
                // SAFETY: co < co_pad (bias length) and y holds co_pad * lo.
                unsafe { *y.add(co * s.lo + t0 + st) = v.wrapping_add(*s.bias.add(co)) };
            }
        }
    }
}
