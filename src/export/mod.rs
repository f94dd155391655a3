//! Hand-off files for hardware and embedded targets, written from a lowered
//! program (`potc export`): C99 source that computes the program's integers
//! (`c`), and per-layer test vectors for a hardware test bench (`vectors`).
//! Both are checked against the engines: the C output against the JIT, the
//! vectors against the integer interpreter.

pub mod c;
pub mod vectors;

/// Quantized input samples to ship with an export: the program's input
/// integers (sample-major), with class indices when the data had labels.
#[derive(Debug, Clone)]
pub struct Samples {
    /// `n * input elements` integers, already quantized at the input boundary.
    pub x: Vec<i64>,
    /// Class indices (empty when unknown, e.g. random inputs).
    pub y: Vec<usize>,
    pub n: usize,
    /// Where they came from, for manifests and headers.
    pub source: String,
}
