//! Engines that run a lowered integer program: the Cranelift JIT. (The
//! reference interpreter is `crate::interp::integer`.)

pub mod jit;
