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
//!   writes exactly rows `12 * from .. 12 * to` of it;
//! - `from <= to <= co_pad / 12`; no alignment is assumed (unaligned loads);
//! - a kernel may read up to 16 bytes past the last row (`SLACK`), whose
//!   values meet only zero weights.
//!
//! Sums are exact: every product fits its lane and the accumulator, whose
//! bound the program's loader proved, fits `i32`, so wrapping additions
//! give the true integer.

#[cfg(target_arch = "x86_64")]
mod avx2;

use super::dot::DotConv;
use crate::ir::op::Conv1d;

/// Output channels of one tile: 3 blocks of 4, as `dot.rs` pads them.
pub const TILE: usize = 12;

/// Bytes after a packed input that a microkernel may read (see the contract).
pub const SLACK: usize = 16;

/// The families of MAC kernels, as `--kernels` names them.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fastest family the CPU has: `xmm` on VNNI CPUs (its 128-bit
    /// `vpdpbusd` does as many MACs an instruction), else `avx2` where the
    /// CPU has AVX2, else `xmm`.
    #[default]
    Auto,
    /// 256-bit AVX2: `vpmaddwd` on 16-bit pairs (hosts without VNNI).
    Avx2,
    /// Cranelift's 128-bit code: `vpdpbusd` on VNNI hosts, widening
    /// multiplies elsewhere; every host.
    Xmm,
}

/// A family resolved for this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    Avx2,
    #[default]
    Xmm,
}

impl Kernels {
    /// Every family this build has, with why the host cannot run it (`Err`).
    pub fn all() -> Vec<(Kernels, Result<(), String>)> {
        vec![(Kernels::Avx2, avx2_available()), (Kernels::Xmm, Ok(()))]
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernels::Avx2 => "avx2",
            Kernels::Xmm => "xmm",
        }
    }

    /// `--kernels` resolved: the named family if the host has it (else an
    /// error saying what it lacks), or for `auto` the fastest it has. On a
    /// VNNI host Cranelift's 128-bit `vpdpbusd` does 16 MACs an instruction,
    /// as many as the AVX2 kernel's 256-bit `vpmaddwd` and its add, so
    /// `auto` keeps `xmm` there and takes `avx2` elsewhere.
    pub fn resolve(choice: KernelChoice) -> Result<Kernels, String> {
        match choice {
            KernelChoice::Xmm => Ok(Kernels::Xmm),
            KernelChoice::Avx2 => avx2_available().map(|_| Kernels::Avx2),
            KernelChoice::Auto if host_has_vnni() => Ok(Kernels::Xmm),
            KernelChoice::Auto => {
                Ok(if avx2_available().is_ok() { Kernels::Avx2 } else { Kernels::Xmm })
            }
        }
    }
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
}

/// A convolution's microkernel: its entry point and what its spec points to.
pub struct MicroConv {
    pub entry: usize,
    pub spec: Box<ConvSpec>,
    _weights: Vec<u8>,
    _bias: Vec<i32>,
}

// SAFETY: the spec's pointers point into `_weights` and `_bias`, which this
// value owns and never changes after `new`; sharing it only reads them.
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
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Avx2 => return None,
        };
        let bias = dc.bias.clone();
        let spec = Box::new(ConvSpec {
            weights: weights.as_ptr(),
            bias: bias.as_ptr(),
            row_bytes: super::dot::row_bytes(dc),
            groups4: dc.c4 / 4,
            kernel: op.kernel,
            stride: op.stride,
            dilation: op.dilation,
            lo,
            run16,
        });
        Some(MicroConv { entry, spec, _weights: weights, _bias: bias })
    }
}
