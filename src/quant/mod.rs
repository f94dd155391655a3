//! Quantization: the power-of-two quantizer of the numeric contract and the
//! `--quant` configuration.

pub mod accum;
pub mod calibrate;
pub mod config;
pub mod diagnose;
pub mod fold;
pub mod quantizer;

pub use config::QuantConfig;
pub use quantizer::QuantSpec;
