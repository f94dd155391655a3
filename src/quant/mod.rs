//! Quantization: the power-of-two quantizer of the numeric contract, its
//! f32 kernels (fake quantization of activations and weights, with their
//! gradients), batch-norm folding, the integer accumulator bounds, and the
//! `--quant` configuration. Below the float interpreter and lowering, which
//! both build on it; it needs only the IR.

pub mod accum;
pub mod config;
pub mod fold;
pub mod format;
pub mod kernels;
pub mod quantizer;

pub use config::QuantConfig;
pub use format::WeightFormat;
pub use quantizer::QuantSpec;
