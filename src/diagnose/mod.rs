//! Diagnostics of a quantized network, so that potc speaks up when its
//! quantization is failing: how each quantizer's values fall on its grid
//! (clipped beyond the largest level; integer levels used of those
//! available), batch-norm channels too dead to fold safely, the per-layer
//! signal-to-quantization-noise ratio against the float network, and a
//! one-line warning with the fix for every figure beyond its threshold.
//! docs/quantization.md ("Diagnostics") defines each figure and threshold.
//! Also the accumulator bits each layer needs ([`accum`]).
//!
//! They run the trained model in the float interpreter and its exact
//! fake-quant evaluation, so they sit above `interp`, beside `train`.

pub mod accum;
mod batch_norm;
mod grid;
mod input;
mod observe;
mod warn;
mod weights;

pub use batch_norm::{dead_channels, DeadChannel};
pub use input::{channel_moments, input_bits_for, offset_input, OFFSET_IN_STDS};
pub use observe::{observe, Observation};
pub use warn::{warnings, ACTIVATION_CLIP, LEVEL_USE, VALUES_PER_LEVEL, WEIGHT_CLIP};
pub use weights::weight_use;

/// What a quantizer quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A MAC layer's weights; `per_channel` with one exponent per output
    /// channel (each channel its own grid).
    Weights { per_channel: bool },
    /// A `fake_quant` over the values a data set produces; `signed` or
    /// unsigned (clamping at 0 is then its relu, not clipping).
    Activations { signed: bool },
}

/// How the values of one quantizer fall on its grid.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizerUse {
    /// The MAC layer (weights) or `fake_quant` value (activations).
    pub name: String,
    pub kind: Kind,
    pub bits: u32,
    pub values: u64,
    /// Values beyond the largest level (`|v| > qmax * 2^e`).
    pub clipped: u64,
    /// Distinct integer levels taken: per exponent group (the tensor, or
    /// each output channel with per-channel weights), the median.
    pub levels_used: u64,
    /// Integer levels the quantizer can output.
    pub levels: u64,
    /// Values per exponent group: with fewer than `VALUES_PER_LEVEL` per
    /// level, few levels used says nothing.
    pub group_values: u64,
    /// The largest level times the scale: the clipping bound (the widest
    /// channel's, per channel).
    pub limit: f64,
    /// The same values quantized on a wider range (an exponent up to
    /// [`WIDER_STEPS`] above) have at most [`WIDER_GAIN`] of the squared
    /// error: the clipping costs clearly more than the finer steps gain.
    pub wider_is_better: bool,
}

/// How much less squared error a wider range must have for clipping to
/// count as a fault. Calibration picks the exponent of least squared error
/// on the float network's training values; the quantized network's values,
/// or another data set's, can tip a close choice the other way by a few per
/// cent, which is no fault. A broken range loses far more.
pub const WIDER_GAIN: f64 = 0.5;
/// The wider ranges tried: 2, 4, 8 and 16 times as wide (a threshold that
/// shrank far gains little from one doubling).
pub const WIDER_STEPS: usize = 4;

/// Whether one of `wider` (the errors of the ranges 2, 4, ... times as wide)
/// clearly beats `err`.
pub fn wider_is_better(err: f64, wider: &[f64]) -> bool {
    wider.iter().any(|&w| w < WIDER_GAIN * err)
}

impl QuantizerUse {
    pub fn clipped_fraction(&self) -> f64 {
        self.clipped as f64 / self.values.max(1) as f64
    }
}
