//! The parameter tensors ops own, and how training initialises them.

/// A named parameter tensor that an op owns: `<value name>.<slot>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub slot: &'static str,
    pub shape: Vec<usize>,
    /// False for statistics that training updates without gradients
    /// (batch norm's running mean and variance).
    pub trainable: bool,
    /// How training initialises it (PyTorch's defaults).
    pub init: Init,
}

/// Initial values of a parameter, as PyTorch initialises Conv1d, Linear and
/// BatchNorm1d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Uniform in `±1/sqrt(fan_in)` (Kaiming-uniform with a = sqrt(5) for
    /// weights; the same bound for biases).
    Uniform {
        fan_in: usize,
    },
    Zeros,
    Ones,
    /// A quantizer threshold (`log2 t`): set by calibration before training.
    Calibrate,
}
