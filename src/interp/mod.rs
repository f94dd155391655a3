//! Float evaluation and training: a plan compiled from the IR, f32 kernels
//! with their backward rules, and the autodiff interpreter over them.

pub mod exact;
pub mod exec;
pub mod gemm;
pub mod kernels;
pub mod mac;
pub mod plan;

pub use exec::{backward, forward, Mode, Observed, Tape, Weights};
pub use plan::Plan;
