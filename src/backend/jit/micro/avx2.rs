//! The AVX2 microkernel: `u8` inputs and `i8` weights widened to 16 bits
//! and multiplied in pairs by `vpmaddwd` into `i32` lanes (exact: a pair
//! of products is at most 2 * 255 * 128). One 256-bit vector holds 4 output
//! channels x 4 input channels: lanes `2m` and `2m + 1` carry channel `m`'s
//! first and second input pair, added together once at the end. A tile of
//! 3 such blocks and 4 time steps keeps 12 accumulators, 3 weight vectors
//! and the input in x64's 16 vector registers.
//!
//! The only `unsafe` of the family is here; the contract is in `micro`.

use std::arch::x86_64::*;

use super::super::dot::DotConv;
use super::{ConvSpec, TILE};
use crate::ir::op::Conv1d;

const BLOCKS: usize = TILE / 4;
/// Time steps computed together.
const STEPS: usize = 4;
/// 16-bit weights of one (tap, group of 4 input channels) of one tile.
const GROUP: usize = BLOCKS * 16;

/// Weights `[co, c, k]` packed `[tile][tap][group][block][4 out][4 in]` as
/// `i16`, zero where a channel is padding.
pub fn pack(op: &Conv1d, dc: &DotConv, w: &[i32]) -> Vec<i16> {
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

/// The entry point generated code calls.
pub fn entry() -> usize {
    conv as unsafe extern "C" fn(*const ConvSpec, *const u8, *mut i32, i64, i64) as usize
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
        let w = unsafe { s.weights.add(tile * tile_len) };
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
