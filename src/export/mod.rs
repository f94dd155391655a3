//! Hand-off files for hardware and embedded targets, written from a lowered
//! program (`potc export`): C99 source that computes the program's integers
//! (`c`), per-layer test vectors for a hardware test bench (`vectors`), and
//! the integer program as an ONNX model for ONNX Runtime (`onnx`), and the
//! quantized model as QONNX for FINN and hls4ml (`qonnx`). Each is checked
//! against the engines: the C output against the JIT, the vectors and ONNX
//! Runtime's outputs against the integer interpreter, the QONNX executor's
//! against the fake-quant logits.

pub mod c;
pub mod onnx;
pub mod qonnx;
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
