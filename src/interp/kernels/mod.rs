//! f32 training kernels, forward and backward side by side. Activations of a
//! batch are channel-major: `x[c][n][l]` for sequences, `x[f][n]` for
//! features, so convolutions and linear layers are single GEMMs over the
//! batch and per-channel reductions read contiguous rows.

pub mod batch_norm;
pub mod conv1d;
pub mod elementwise;
pub mod linear;
pub mod loss;
pub mod pool;
