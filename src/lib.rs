//! potc: trains Conv1d/BatchNorm networks under power-of-two quantization and
//! lowers them to integer-only programs.
//!
//! The pipeline is the tree: `syntax` (text to IR), `ir` (types, ops, graph,
//! verifier, printer), `pass` (the pass manager), and the concrete passes in
//! the top-level `passes/` folder; `quant` (the quantizer and its kernels),
//! `interp` (float evaluation and autodiff), `train` and `diagnose` for the
//! float and quantization-aware model; `program` (the lowered integer
//! program and its checks), `backend` (the engines that run it: the
//! reference interpreter and the JIT), `export` and `report` for the
//! integer one; `driver` runs the commands. docs/design.md ("Module map")
//! gives the order in which they may import each other.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod ckpt;
pub mod data;
pub mod diag;
pub mod diagnose;
pub mod driver;
pub mod eqsat;
pub mod export;
pub mod interp;
pub mod ir;
pub mod onnx;
pub mod pass;
pub mod program;
pub mod quant;
pub mod report;
pub mod syntax;
pub mod train;

// The concrete passes live outside `src/` so that the infrastructure never
// names one; they are compiled into this crate as `potc::passes`.
#[path = "../passes/mod.rs"]
pub mod passes;
