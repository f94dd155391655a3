//! Pass infrastructure: the `Pass` trait, a registry of named passes, pipelines
//! given as text (`a,b,c`), and a manager that verifies the IR after each pass
//! and enforces each pass's declared semantics. Concrete passes live in the
//! top-level `passes/` folder; nothing here names one.

mod manager;
mod registry;

pub use manager::{PassManager, PassReport};
pub use registry::{Pipeline, Registry};

use crate::ir::{Graph, VerifyError};
use crate::quant::QuantConfig;
use std::collections::BTreeMap;

/// Parameter values by name (`c1.w`), with their shapes.
pub type ParamStore = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Integer tensors by name (`c1.w`, `r1.q.shift`, `x.exp`), with their shapes:
/// the parameters of an integer program.
pub type IntStore = BTreeMap<String, (Vec<usize>, Vec<i32>)>;

/// What a pass may use besides the graph.
#[derive(Debug, Default)]
pub struct PassContext<'a> {
    /// The model's parameters, when the pipeline runs on a trained model;
    /// passes that rewrite parameters (e.g. `fold-bn`) update them here.
    pub weights: Option<&'a mut ParamStore>,
    /// The `--quant` configuration, for `insert-fake-quant`.
    pub quant: Option<QuantConfig>,
    /// The integer program's tensors, which `lower-int` fills.
    pub ints: Option<&'a mut IntStore>,
    /// The default accumulator width of integer MAC layers (`--acc-bits`;
    /// 32 when absent).
    pub acc_bits: Option<usize>,
    /// What extraction optimises for (`potc lower --target`): the
    /// datapath `select-datapath` records on each integer layer.
    pub target: crate::eqsat::Target,
    /// Lines a pass reports about its run (e.g. why equality saturation
    /// stopped); the manager hands them to the observer with the pass.
    pub notes: Vec<String>,
}

/// Whether a pass keeps the model's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// An identity: the same outputs for every input (at inference). The
    /// manager also requires the signature (input and output types) to stay.
    Preserving,
    /// Changes what the model computes (e.g. inserting fake quantization);
    /// only pipelines that allow it may run it.
    Changing,
    /// Keeps every number but changes its representation: values on
    /// power-of-two grids become integers whose exponents move into the
    /// program's tensors, so the signature's types change (`lower-int`).
    Lowering,
}

impl std::fmt::Display for Semantics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Semantics::Preserving => "meaning-preserving",
            Semantics::Changing => "meaning-changing",
            Semantics::Lowering => "meaning-preserving lowering to integers",
        })
    }
}

/// A transformation of the IR graph.
pub trait Pass: Sync {
    /// The name pipelines use, in kebab-case.
    fn name(&self) -> &'static str;
    /// One line: what the pass does.
    fn summary(&self) -> &'static str;
    /// Why and how, with a before/after example in `.pot` text.
    fn description(&self) -> &'static str;
    fn semantics(&self) -> Semantics;
    /// Rewrites `g`; returns whether anything changed. A rewrite that does not
    /// apply is "no change", never an error.
    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError>;
}

/// Why a pass could not rewrite the graph it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the graph has a cycle")]
    Cycle,
    #[error("the weights lack `{0}`")]
    MissingParameter(String),
    #[error(
        "`%{node}`: {op} has no integer form; lower the quantized model \
             (canonicalize,fold-bn,insert-fake-quant) of a checkpoint trained with --quant"
    )]
    NoIntegerForm { node: String, op: &'static str },
    #[error("`%{node}`: weights not quantized (lower a model trained with --quant)")]
    NotQuantized { node: String },
    #[error(
        "`%{node}`: its accumulator needs {need} bits (output channel {channel} can reach \
             |acc| = {worst}), more than its {have}; lower with --acc-bits {need} (or set \
             `acc_bits` on the layer), or train with fewer weight or activation bits"
    )]
    AccumulatorTooNarrow { node: String, need: u32, channel: usize, worst: u128, have: usize },
    /// The graph is valid but the pass cannot take this node: `reason` says
    /// what it needs instead.
    #[error("`%{node}`: {reason}")]
    Unsupported { node: String, reason: String },
    /// The graph as a whole is outside what the pass takes.
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Op(#[from] crate::ir::OpError),
}

/// Why a pipeline could not be built or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("unknown pass `{name}`{}; known passes: {}", .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), .known.join(", "))]
    Unknown { name: String, suggestion: Option<&'static str>, known: Vec<&'static str> },
    #[error("empty pass name in the pipeline `{0}`")]
    EmptyName(String),
    #[error("pass `{0}` changes the model's meaning, and this pipeline allows only meaning-preserving passes")]
    MeaningChangeNotAllowed(&'static str),
    #[error("pass `{pass}` failed: {error}")]
    Failed { pass: &'static str, error: RewriteError },
    #[error("the IR after pass `{pass}` is invalid (a bug in potc): {error}")]
    Verify { pass: &'static str, error: VerifyError },
    #[error("pass `{0}` is declared meaning-preserving but changed the model's signature (a bug in potc)")]
    SignatureChanged(&'static str),
}
