//! Microkernels: the MAC inner loops of vector convolutions as fixed,
//! hand-vectorized Rust functions for one instruction set each, called by
//! the generated code once per step (a range of output-channel tiles),
//! never per vector. Cranelift still generates everything around them: the
//! packing of inputs, padding, requantization, the split over threads. A
//! family is chosen per program when it is compiled ([`Kernels`]); the
//! portable family, `xmm`, is Cranelift's own 128-bit code in `dot.rs`.
//!
//! # The contract of every microkernel
//!
//! `conv(spec, x, y, from, to)` computes output-channel tiles `from..to` of
//! one convolution:
//! - `spec` points to a [`ConvSpec`] the `JitProgram` owns, whose weights
//!   were packed by the same family's `pack` for this convolution;
//! - `x` is the packed input (`dot.rs`): `rows * row_bytes` bytes, every
//!   row a time step including the padding rows, each group of 4 channels
//!   stored 4 times (16 bytes), channels past the input's zero;
//! - `y` has room for `co_pad * lo` `i32` (channel-major); the kernel
//!   writes exactly rows `tile * from .. tile * to` of it, `tile` being
//!   [`Kernels::tile`] for the convolution, of which `co_pad` is a multiple;
//! - `from <= to <= co_pad / tile`; no alignment is assumed (unaligned loads);
//! - a kernel may read up to 16 bytes past the last row (`SLACK`), whose
//!   values meet only zero weights.
//!
//! With a fused requantization (`spec.requant.shifts` not null; only
//! families whose [`MicroConv::fuse_requant`] accepts it), `y` is instead
//! either the packed input of the convolution that reads the
//! requantization (the kernel writes rows `left .. left + lo` of it, the
//! groups of its tiles' channels below `groups4`, and nothing else) or,
//! with `requant.sum`, the `i32[co]` output of the global sum pool that
//! reads it (the kernel writes its tiles' channels below `co`).
//!
//! Sums are exact: every product fits its lane and the accumulator, whose
//! bound the program's loader proved, fits `i32`, so wrapping additions
//! give the true integer.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use super::dot::DotConv;
use crate::ir::op::Conv1d;

/// Bytes after a packed input that a microkernel may read (see the contract).
pub const SLACK: usize = 16;

/// The families of MAC kernels, as `--kernels` names them.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fastest family the CPU has: `avx512` where it has AVX512-VNNI,
    /// else `xmm` on AVX-VNNI CPUs (its 128-bit `vpdpbusd` does as many
    /// MACs an instruction as `avx2`), else `avx2` where the CPU has AVX2,
    /// else `xmm`.
    #[default]
    Auto,
    /// 512-bit AVX512-VNNI: `vpdpbusd` on 64 bytes, with the
    /// requantization that follows a convolution in its epilogue.
    Avx512,
    /// 256-bit AVX2: `vpmaddubsw` with 16-bit partial sums (weights up to
    /// 7 bits), else `vpmaddwd` on 16-bit pairs (hosts without VNNI).
    Avx2,
    /// Cranelift's 128-bit code: `vpdpbusd` on VNNI hosts, widening
    /// multiplies elsewhere; every host.
    Xmm,
}

/// A family resolved for this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    Avx512,
    Avx2,
    #[default]
    Xmm,
}

impl Kernels {
    /// Every family this build has, with why the host cannot run it (`Err`).
    pub fn all() -> Vec<(Kernels, Result<(), String>)> {
        vec![
            (Kernels::Avx512, avx512_available()),
            (Kernels::Avx2, avx2_available()),
            (Kernels::Xmm, Ok(())),
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernels::Avx512 => "avx512",
            Kernels::Avx2 => "avx2",
            Kernels::Xmm => "xmm",
        }
    }

    /// Output channels of one tile of a convolution of `co` of them, the
    /// unit its step splits into (its padded channel count is a multiple
    /// of it).
    pub fn tile(self, co: usize) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => avx512::tile(co),
            _ => super::dot::TILE,
        }
    }

    /// `--kernels` resolved: the named family if the host has it (else an
    /// error saying what it lacks), or for `auto` the fastest it has. On a
    /// AVX512-VNNI host that is `avx512`. On an AVX-VNNI host Cranelift's
    /// 128-bit `vpdpbusd` does 16 MACs an instruction, as many as the AVX2
    /// kernel's 256-bit `vpmaddwd` and its add, so `auto` keeps `xmm`
    /// there and takes `avx2` elsewhere.
    pub fn resolve(choice: KernelChoice) -> Result<Kernels, String> {
        match choice {
            KernelChoice::Xmm => Ok(Kernels::Xmm),
            KernelChoice::Avx512 => avx512_available().map(|_| Kernels::Avx512),
            KernelChoice::Avx2 => avx2_available().map(|_| Kernels::Avx2),
            KernelChoice::Auto if avx512_available().is_ok() => Ok(Kernels::Avx512),
            KernelChoice::Auto if host_has_vnni() => Ok(Kernels::Xmm),
            KernelChoice::Auto => {
                Ok(if avx2_available().is_ok() { Kernels::Avx2 } else { Kernels::Xmm })
            }
        }
    }
}

fn avx512_available() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vnni")
    {
        return Ok(());
    }
    Err("--kernels avx512: this CPU has no AVX512-VNNI".into())
}

fn avx2_available() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return Ok(());
    }
    Err("--kernels avx2: this CPU has no AVX2".into())
}

/// Whether the host has a VNNI dot product (AVX-VNNI or AVX512-VNNI).
pub fn host_has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avxvnni")
            || std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// What a microkernel reads of one convolution. `#[repr(C)]`: generated
/// code passes its address.
#[repr(C)]
pub struct ConvSpec {
    /// The kernel's packed weights (`i16` or `i8`, as its `pack` wrote them).
    pub weights: *const u8,
    /// Per padded output channel: the bias with the input offset absorbed.
    pub bias: *const i32,
    pub row_bytes: usize,
    /// Input channel groups of 4.
    pub groups4: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// Output length.
    pub lo: usize,
    /// Products summed in 16 bits before widening (kernels that do so):
    /// as many as keep every partial sum exact.
    pub run16: usize,
    /// Output channels (those up to `co_pad` are padding).
    pub co: usize,
    /// The requantization of the output fused into the kernel, if any.
    pub requant: Requant,
}

/// A requantization a kernel applies to its sums before storing them:
/// per channel `clamp((x >> k) + ((x >> (k-1)) & 1), lo, hi) + offset`
/// (`(x + 2^(k-1)) >> k` without the overflow), as a byte of the next
/// convolution's packed input. `#[repr(C)]`: part of [`ConvSpec`].
#[repr(C)]
pub struct Requant {
    /// Per padded output channel, `k` in `1..=31`; null: no requantization.
    pub shifts: *const i32,
    pub lo: i32,
    pub hi: i32,
    /// The next input's offset into `u8` (`dot::DotConv::offset`).
    pub offset: i32,
    /// The next packed input: bytes per row, rows before step 0, groups
    /// of 4 channels in a row.
    pub row_bytes: usize,
    pub left: usize,
    pub groups4: usize,
    /// Nonzero: sum over time into `y`, `i32[co]`, instead (no offset).
    pub sum: usize,
}

/// What a fused requantization computes, and where it writes.
pub struct RequantInto {
    /// Right shifts per output channel, each in `1..=31`.
    pub shifts: Vec<i32>,
    pub lo: i32,
    pub hi: i32,
    /// Added after the clamp (the reading convolution's `u8` offset).
    pub offset: i32,
    pub dest: Dest,
}

/// Where a fused requantization writes.
pub enum Dest {
    /// The packed input of the convolution that reads it: bytes per row,
    /// rows before step 0, groups of 4 channels in a row.
    Packed { row_bytes: usize, left: usize, groups4: usize },
    /// Summed over time into `i32[co]` (a global sum pool reads it), which
    /// must not leave `i32`: `max(|lo|, |hi|) * lo` steps fit it.
    Sum,
}

/// A convolution's microkernel: its entry point and what its spec points to.
pub struct MicroConv {
    pub entry: usize,
    pub spec: Box<ConvSpec>,
    family: Kernels,
    _weights: Vec<super::Line>,
    _bias: Vec<i32>,
    _shifts: Vec<i32>,
}

// SAFETY: the spec's pointers point into `_weights`, `_bias` and `_shifts`,
// which this value owns and never changes after construction; sharing it
// only reads them.
unsafe impl Send for MicroConv {}
// SAFETY: as for `Send`: read-only after construction.
unsafe impl Sync for MicroConv {}

impl MicroConv {
    /// The microkernel of `family` for convolution `op` packed as `dc`;
    /// `None` for `xmm` (Cranelift generates it).
    pub fn new(
        family: Kernels,
        op: &Conv1d,
        dc: &DotConv,
        w: &[i32],
        lo: usize,
    ) -> Option<MicroConv> {
        let (weights, entry, run16) = match family {
            Kernels::Xmm => return None,
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => avx2::pack(op, dc, w),
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => {
                let (weights, entry) = avx512::pack(op, dc, w);
                (weights, entry, 0)
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Avx2 | Kernels::Avx512 => return None,
        };
        // On cache lines, as the kernels' 32- and 64-byte loads want them.
        let weights = super::Line::of_bytes(&weights);
        let bias = dc.bias.clone();
        let spec = Box::new(ConvSpec {
            weights: weights.as_ptr().cast(),
            bias: bias.as_ptr(),
            row_bytes: super::dot::row_bytes(dc),
            groups4: dc.c4 / 4,
            kernel: op.kernel,
            stride: op.stride,
            dilation: op.dilation,
            lo,
            run16,
            co: op.out_channels,
            requant: Requant {
                shifts: std::ptr::null(),
                lo: 0,
                hi: 0,
                offset: 0,
                row_bytes: 0,
                left: 0,
                groups4: 0,
                sum: 0,
            },
        });
        let (_weights, _bias, _shifts) = (weights, bias, vec![]);
        Some(MicroConv { entry, spec, family, _weights, _bias, _shifts })
    }

    /// Fuses requantization `r` of the output into the kernel, writing the
    /// reading convolution's packed input; `false` (and no change) where
    /// the family has no such epilogue or a shift is outside `1..=31`.
    pub fn fuse_requant(&mut self, r: RequantInto) -> bool {
        let co_pad = self._bias.len();
        let bound = i64::from(r.lo).abs().max(i64::from(r.hi).abs());
        if self.family != Kernels::Avx512
            || r.shifts.len() != self.spec.co
            || self.spec.lo == 0
            || !r.shifts.iter().all(|k| (1..=31).contains(k))
            || matches!(r.dest, Dest::Sum) && bound * self.spec.lo as i64 > i64::from(i32::MAX)
        {
            return false;
        }
        // Padding channels shift by 1 (any valid shift: they are masked).
        let mut shifts = r.shifts;
        shifts.resize(co_pad, 1);
        self._shifts = shifts;
        let (row_bytes, left, groups4, sum) = match r.dest {
            Dest::Packed { row_bytes, left, groups4 } => (row_bytes, left, groups4, 0),
            Dest::Sum => (0, 0, 0, 1),
        };
        self.spec.requant = Requant {
            shifts: self._shifts.as_ptr(),
            lo: r.lo,
            hi: r.hi,
            offset: r.offset,
            row_bytes,
            left,
            groups4,
            sum,
        };
        true
    }
}
