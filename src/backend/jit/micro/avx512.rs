//! The AVX-512 VNNI microkernel: `vpdpbusd` on 512-bit vectors multiplies
//! 64 `u8` inputs by 64 `i8` weights and adds each 4 products into one of
//! 16 `i32` lanes, exactly (`vpdpbusd` wraps, never saturates, and the
//! loader proved the accumulator fits `i32`). A vector holds 16 output
//! channels x 4 input channels (one group), so an input group of 4 bytes
//! is broadcast to every lane; the packed input's 4 copies of each group
//! (`dot.rs`) are read once. A tile is `NB` such vectors and `S` time
//! steps: `NB * S` = 16 accumulators (the 5-cycle latency of `vpdpbusd`
//! hidden on hosts that issue two a cycle), `NB` weight vectors and a
//! broadcast stay in the 32 vector registers. Tiles of 64 channels x 4
//! steps read the input half as often as 32 x 8 (measured 6 % faster on
//! the FCN at L = 427) and serve convolutions whose channels are a
//! multiple of 64; the others take 32, which pads less. The only `unsafe`
//! of the family is here; the contract is in `micro`.

use std::arch::x86_64::*;

use super::super::dot::DotConv;
use super::ConvSpec;
use crate::ir::op::Conv1d;

/// The output channels of a tile for a convolution of `co` of them.
pub fn tile(co: usize) -> usize {
    if co.is_multiple_of(64) {
        64
    } else {
        32
    }
}

type Kernel = unsafe extern "C" fn(*const ConvSpec, *const u8, *mut i32, i64, i64);

/// The packed weights of convolution `op` (`w`: `[co, c, k]`), planned
/// with tiles of [`tile`], and the kernel that reads them.
pub fn pack(op: &Conv1d, dc: &DotConv, w: &[i32]) -> (Vec<u8>, usize) {
    let (co, k, g4, t) = (op.out_channels, op.kernel, dc.c4 / 4, dc.tile);
    let c = w.len() / (co * k).max(1);
    // [tile][tap][group][t out][4 in], zero where a channel is padding.
    let mut out = vec![0u8; dc.co_pad * k * g4 * 4];
    for o in 0..co {
        for ci in 0..c {
            for tap in 0..k {
                let at = ((o / t * k + tap) * g4 + ci / 4) * t * 4 + o % t * 4 + ci % 4;
                out[at] = w[(o * c + ci) * k + tap] as i8 as u8;
            }
        }
    }
    let entry = if t == 64 { conv::<4, 4> as Kernel } else { conv::<2, 8> as Kernel };
    (out, entry as usize)
}

/// Tiles `from..to` of the convolution `spec` (the contract is in `micro`),
/// of `NB` vectors, `S` steps at a time.
///
/// # Safety
/// The caller upholds the microkernel contract, the weights were packed
/// for tiles of `16 * NB`, and the host has AVX-512F and AVX512-VNNI
/// (`Kernels::resolve` checked it).
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe extern "C" fn conv<const NB: usize, const S: usize>(
    spec: *const ConvSpec,
    x: *const u8,
    y: *mut i32,
    from: i64,
    to: i64,
) {
    // SAFETY: `spec` points to a live ConvSpec (contract).
    let s = unsafe { &*spec };
    let tile_len = s.kernel * s.groups4 * 64 * NB;
    for tile in from.max(0) as usize..to.max(0) as usize {
        // SAFETY: tile < co_pad / (16 NB), and the weights hold that many tiles.
        let w = unsafe { s.weights.add(tile * tile_len) };
        let co0 = tile * 16 * NB;
        let mut t = 0;
        while t + S <= s.lo {
            // SAFETY: as for this function; steps t..t + S exist.
            unsafe { steps::<NB, S>(s, x, w, y, co0, t) };
            t += S;
        }
        if S > 4 && t + 4 <= s.lo {
            // SAFETY: as above, for 4 steps.
            unsafe { steps::<NB, 4>(s, x, w, y, co0, t) };
            t += 4;
        }
        while t < s.lo {
            // SAFETY: as above, for one step.
            unsafe { steps::<NB, 1>(s, x, w, y, co0, t) };
            t += 1;
        }
    }
}

/// Output channels `co0..co0 + 16 NB` at steps `t0..t0 + S`. Indexed loops:
/// the accumulators are a register tile, indexed by block and step.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn steps<const NB: usize, const S: usize>(
    s: &ConvSpec,
    x: *const u8,
    w: *const u8,
    y: *mut i32,
    co0: usize,
    t0: usize,
) {
    let group = 64 * NB;
    // SAFETY: co0 + 16 NB <= co_pad, the bias's length.
    let bias: [__m512i; NB] =
        std::array::from_fn(|b| unsafe { _mm512_loadu_si512(s.bias.add(co0 + 16 * b).cast()) });
    let mut acc: [[__m512i; S]; NB] = std::array::from_fn(|b| [bias[b]; S]);
    let step_bytes = s.stride * s.row_bytes;
    for k in 0..s.kernel {
        // SAFETY: row `(t0 + st) * stride + k * dilation` is inside the
        // packed rows for every st < S (the output length guarantees every
        // tap is), and group g's first 4 bytes inside its row.
        let row = unsafe { x.add((t0 * s.stride + k * s.dilation) * s.row_bytes) };
        // SAFETY: tap k's weights of this tile.
        let wk = unsafe { w.add(k * s.groups4 * group) };
        for g in 0..s.groups4 {
            // SAFETY: (k, g) indexes this tile's weights, 64 bytes a vector.
            let wv: [__m512i; NB] = std::array::from_fn(|b| unsafe {
                _mm512_loadu_si512(wk.add(g * group + 64 * b).cast())
            });
            for st in 0..S {
                // SAFETY: see `row`; an unaligned 4-byte read.
                let four =
                    unsafe { row.add(st * step_bytes + g * 16).cast::<i32>().read_unaligned() };
                let xv = _mm512_set1_epi32(four);
                for b in 0..NB {
                    acc[b][st] = _mm512_dpbusd_epi32(acc[b][st], xv, wv[b]);
                }
            }
        }
    }
    if s.requant.shifts.is_null() {
        // SAFETY: as for this function (y is the i32 output).
        unsafe { store_i32(s, &acc, y, co0, t0) };
    } else if s.requant.sum != 0 {
        // SAFETY: as for this function (y is the pool's i32[co]).
        unsafe { store_summed(s, &acc, y, co0, t0) };
    } else {
        // SAFETY: as for this function (y is the next packed input).
        unsafe { store_requantized(s, &acc, y.cast(), co0, t0) };
    }
}

/// One block's requantization: per lane `clamp((x >> k) + ((x >> (k-1)) & 1),
/// lo, hi)` with `k` the block's shifts (each in `1..=31`), as the
/// generated code computes it.
struct Requantize {
    k: __m512i,
    k1: __m512i,
    one: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Requantize {
    /// The requantization of the 16 channels from `c0`.
    ///
    /// # Safety
    /// `c0 + 16 <= co_pad`, the length of `q.shifts`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn of(q: &super::Requant, c0: usize) -> Requantize {
        let one = _mm512_set1_epi32(1);
        // SAFETY: as the caller promised.
        let k = unsafe { _mm512_loadu_si512(q.shifts.add(c0).cast()) };
        let (lo, hi) = (_mm512_set1_epi32(q.lo), _mm512_set1_epi32(q.hi));
        Requantize { k, k1: _mm512_sub_epi32(k, one), one, lo, hi }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn apply(&self, v: __m512i) -> __m512i {
        let r = _mm512_add_epi32(
            _mm512_srav_epi32(v, self.k),
            _mm512_and_si512(_mm512_srav_epi32(v, self.k1), self.one),
        );
        _mm512_min_epi32(_mm512_max_epi32(r, self.lo), self.hi)
    }
}

/// The accumulators requantized and summed over the steps into `y`
/// (`i32[co]`, the global sum pool's output): the first steps of a tile
/// (`t0 == 0`) store, the others add. Channels past `co` are not touched.
///
/// # Safety
/// As for `steps`, with `y` holding `co` `i32`.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn store_summed<const NB: usize, const S: usize>(
    s: &ConvSpec,
    acc: &[[__m512i; S]; NB],
    y: *mut i32,
    co0: usize,
    t0: usize,
) {
    for (b, block) in acc.iter().enumerate() {
        let c0 = co0 + 16 * b;
        // SAFETY: c0 + 16 <= co_pad.
        let q = unsafe { Requantize::of(&s.requant, c0) };
        let real = lane_mask(s.co.saturating_sub(c0));
        let sum = block.iter().fold(_mm512_setzero_si512(), |sum, &v| {
            // Exact: fuse_requant checked that no sum leaves i32.
            _mm512_add_epi32(sum, q.apply(v))
        });
        // SAFETY: the masked lanes are channels c0 + m < co, inside y.
        unsafe {
            let at = y.add(c0);
            let sum = if t0 == 0 {
                sum
            } else {
                _mm512_add_epi32(sum, _mm512_maskz_loadu_epi32(real, at.cast()))
            };
            _mm512_mask_storeu_epi32(at.cast(), real, sum);
        }
    }
}

/// The accumulators into the channel-major `i32` output: lane m of a
/// block goes to row co0 + 16b + m, scattered by `i32` row offsets where
/// `15 * lo` fits one.
///
/// # Safety
/// As for `steps`, with `y` the `i32[co_pad, lo]` output.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn store_i32<const NB: usize, const S: usize>(
    s: &ConvSpec,
    acc: &[[__m512i; S]; NB],
    y: *mut i32,
    co0: usize,
    t0: usize,
) {
    let scatter = s.lo <= i32::MAX as usize / 16;
    let rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(if scatter { s.lo as i32 } else { 0 }),
    );
    for (b, block) in acc.iter().enumerate() {
        for (st, &v) in block.iter().enumerate() {
            // SAFETY: rows co0 + 16b .. co0 + 16b + 16 < co_pad and step
            // t0 + st < lo: inside y's co_pad * lo.
            unsafe {
                let at = y.add((co0 + 16 * b) * s.lo + t0 + st);
                if scatter {
                    _mm512_i32scatter_epi32::<4>(at.cast(), rows, v);
                } else {
                    let mut lanes = [0i32; 16];
                    _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v);
                    for (m, v) in lanes.into_iter().enumerate() {
                        *at.add(m * s.lo) = v;
                    }
                }
            }
        }
    }
}

/// The accumulators requantized (the fused epilogue, `Requant` in
/// `micro`) into the next convolution's packed input: per channel
/// `clamp((x >> k) + ((x >> (k-1)) & 1), lo, hi) + offset` as a byte,
/// channels past the last zero, each group of 4 bytes stored 4 times.
///
/// # Safety
/// As for `steps`, with `y` the packed input `s.requant` describes.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn store_requantized<const NB: usize, const S: usize>(
    s: &ConvSpec,
    acc: &[[__m512i; S]; NB],
    y: *mut u8,
    co0: usize,
    t0: usize,
) {
    let q = &s.requant;
    let offset = _mm512_set1_epi32(q.offset);
    // Dword m of the 16 bytes is group m: each 4 times.
    let copies = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (b, block) in acc.iter().enumerate() {
        let c0 = co0 + 16 * b;
        // SAFETY: c0 + 16 <= co_pad.
        let rq = unsafe { Requantize::of(q, c0) };
        let real = lane_mask(s.co.saturating_sub(c0));
        // The block's groups inside the next input's rows, 4 dwords each.
        let groups = (q.groups4 as isize - (c0 / 4) as isize).clamp(0, 4) as usize;
        let stored = lane_mask(4 * groups);
        for (st, &v) in block.iter().enumerate() {
            let r = _mm512_add_epi32(rq.apply(v), offset);
            let bytes = _mm512_cvtepi32_epi8(_mm512_maskz_mov_epi32(real, r));
            let words = _mm512_permutexvar_epi32(copies, _mm512_castsi128_si512(bytes));
            // SAFETY: row left + t0 + st of the packed input exists (its
            // rows are left + lo + right), and the stored lanes are groups
            // below groups4, inside the row.
            unsafe {
                let at = y.add((q.left + t0 + st) * q.row_bytes + c0 / 4 * 16);
                _mm512_mask_storeu_epi32(at.cast(), stored, words);
            }
        }
    }
}

/// The first `n` of 16 lanes (all for `n >= 16`).
fn lane_mask(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}
