//! Float evaluation and training: a plan compiled from the IR, f32 kernels
//! with their backward rules, and the autodiff interpreter over them; and
//! the exact (f64) evaluation of a fake-quant model (`exact`). Fake
//! quantization itself comes from `crate::quant::kernels`; the integer
//! program's reference interpreter is `backend::interp`.

pub mod exact;
pub mod exec;
pub mod gemm;
pub mod kernels;
pub mod mac;
pub mod plan;

pub use exec::{backward, forward, Mode, Observed, Tape, Weights};
pub use plan::Plan;
