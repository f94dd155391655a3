//! What the CLI's commands do, as library functions that return their
//! standard output or a rendered failure, so tests can call them without a
//! process. Progress and notes go to standard error.

mod bench;
mod diagnostics;
mod eval;
mod export;
mod import;
mod ir_cmds;
mod lower;
mod model_data;
mod plot;
mod quantized;
mod report;
mod start;
mod train;
mod train_options;

pub use bench::{bench, BenchOptions};
pub use eval::{eval, logits_sha256, EvalOptions};
pub use export::{export, ExportFormat, ExportOptions};
pub use import::{import, ImportOptions};
pub use ir_cmds::{check, describe_passes, print_model};
pub use lower::{
    load_data, load_program, lower, lower_graph, lower_model, run, run_program, LowerOptions,
    Lowered, RunOptions, LOWER_PIPELINE,
};
pub use quantized::{weights_from, KEY_QUANT};
pub use report::{report, ReportOptions};
pub use train::train;
pub use train_options::TrainOptions;

use crate::diag::Diagnostic;
use crate::ir::Graph;
use crate::syntax;

/// A user-facing failure, already rendered (`file:line:col: error: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Source text with the path it was read from.
pub struct Source {
    pub path: String,
    pub text: String,
}

impl Source {
    pub fn fail(&self, d: &Diagnostic) -> Failure {
        Failure(d.render(&self.path, &self.text))
    }
}

/// Reads a model file; bytes that are not UTF-8 are reported at their line and column.
pub fn read_source(path: &str) -> Result<Source, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure(format!("{path}: error: cannot read the file: {e}\n")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { path: path.to_string(), text }),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let src = Source { path: path.to_string(), text };
            Err(src.fail(&Diagnostic::at(at..at + 1, "the file is not UTF-8 text")))
        }
    }
}

/// Reads, parses and verifies a model.
pub fn load_model(path: &str) -> Result<(Source, Graph), Failure> {
    let src = read_source(path)?;
    let graph = syntax::parse(&src.text).map_err(|d| src.fail(&d))?;
    Ok((src, graph))
}

/// Reads the float model that `train`, `eval` and `lower` take: every
/// quantizer is placed by `insert-fake-quant`, so a hand-written
/// `fake_quant` is refused where it stands.
pub fn load_float_model(path: &str) -> Result<(Source, Graph), Failure> {
    let (src, g) = load_model(path)?;
    refuse_written_quantizers(&src, &g)?;
    Ok((src, g))
}

/// The first `fake_quant` of the model text as an error at its place.
fn refuse_written_quantizers(src: &Source, g: &Graph) -> Result<(), Failure> {
    match crate::passes::insert_fake_quant::written_quantizer(g) {
        Some((id, refusal)) => Err(src.fail(&Diagnostic::new(g.span(id), refusal.to_string()))),
        None => Ok(()),
    }
}

/// A `--quant` spec, or the error a user sees.
pub fn parse_quant(spec: &str) -> Result<crate::quant::QuantConfig, Failure> {
    crate::quant::QuantConfig::parse(spec).map_err(|e| Failure(format!("error: {e}\n")))
}

impl From<crate::data::DataError> for Failure {
    fn from(e: crate::data::DataError) -> Self {
        Failure(format!("{e}\n"))
    }
}

impl From<crate::train::Diverged> for Failure {
    fn from(e: crate::train::Diverged) -> Self {
        Failure(format!("error: {e}\n"))
    }
}

impl From<crate::ckpt::CkptError> for Failure {
    fn from(e: crate::ckpt::CkptError) -> Self {
        Failure(format!("{e}\n"))
    }
}
