//! `potc eval`: accuracy of a trained model on a data set.

use super::model_data::{fit_to_data, pool};
use super::{load_model, Failure};
use crate::ckpt::Checkpoint;
use crate::data;
use crate::interp::Plan;
use crate::train::checkpoint::{labels, weights};
use crate::train::evaluate;
use std::path::Path;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalMode {
    /// f32 arithmetic, batch norm with running statistics.
    Float,
    /// The quantized network simulated in float (not built yet: issue 4).
    FakeQuant,
    /// The integer program in the reference interpreter (not built yet: issue 5).
    Int,
    /// The integer program compiled with Cranelift (not built yet: issue 6).
    Jit,
}

/// Flags of `potc eval` (see `potc eval --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct EvalOptions {
    /// The model text (`.pot`).
    pub model: String,
    /// The trained checkpoint.
    #[arg(long, value_name = "CKPT")]
    pub weights: String,
    /// The data set: `.ts`, `.tsv` or `.npz`.
    #[arg(long, value_name = "DATA")]
    pub data: String,
    /// The arithmetic to evaluate in.
    #[arg(long, value_enum, default_value_t = EvalMode::Float)]
    pub mode: EvalMode,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

pub fn eval(o: &EvalOptions) -> Result<String, Failure> {
    let mode = match o.mode {
        EvalMode::Float => "float",
        EvalMode::FakeQuant => {
            return Err(not_yet("fake-quant", "quantization-aware training (issue 4)"))
        }
        EvalMode::Int => return Err(not_yet("int", "integer lowering (issue 5)")),
        EvalMode::Jit => return Err(not_yet("jit", "the Cranelift JIT (issue 6)")),
    };
    let (_, model) = load_model(&o.model)?;
    let ck = Checkpoint::load_for(Path::new(&o.weights), &model)?;
    let label_map = labels(&ck)?;
    let ds = data::load(Path::new(&o.data))?;
    let ds = if label_map.is_empty() { ds } else { ds.with_labels(&label_map)? };
    let typed = fit_to_data(&model, &ds)?;
    let plan = Plan::new(&typed).map_err(|e| Failure(format!("{}: error: {e}\n", o.model)))?;
    let w = weights(&plan, &ck);
    let threads = pool(o.threads)?;
    let result = threads.install(|| evaluate(&plan, &w, &ds, threads.current_num_threads()));
    Ok(if o.json {
        serde_json::json!({ "accuracy": result.accuracy, "n": ds.n, "mode": mode }).to_string()
            + "\n"
    } else {
        format!("accuracy {:.4} on {} samples ({mode})\n", result.accuracy, ds.n)
    })
}

fn not_yet(mode: &str, what: &str) -> Failure {
    Failure(format!(
        "error: --mode {mode} needs {what}, which potc does not have yet; use --mode float\n"
    ))
}
