//! `potc eval`: accuracy of a trained model on a data set.

use super::diagnostics;
use super::model_data::{fit_to_data, pool};
use super::quantized::{inference_model, weights_from};
use super::{load_float_model, Failure};
use crate::backend::EngineKind;
use crate::ckpt::Checkpoint;
use crate::data;
use crate::interp::exact::evaluate_exact;
use crate::interp::Plan;
use crate::train::checkpoint::labels;
use crate::train::evaluate;
use std::path::Path;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalMode {
    /// f32 arithmetic, batch norm with running statistics.
    Float,
    /// The quantized network simulated exactly (f64 accumulation), for a
    /// checkpoint trained with --quant; adds `logits_sha256`, each layer's
    /// SQNR against the float network, and diagnostics.
    FakeQuant,
    /// The integer program (`potc lower`, in memory) in the reference
    /// interpreter, for a checkpoint trained with --quant; equals fake-quant
    /// bit for bit.
    Int,
    /// The integer program compiled with the Cranelift JIT; equals fake-quant
    /// bit for bit.
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
    /// The JIT's MAC kernels (`--mode jit`); a family the CPU lacks is an error.
    #[arg(long, value_enum, default_value_t = crate::backend::jit::micro::KernelChoice::Auto)]
    pub kernels: crate::backend::jit::micro::KernelChoice,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object on standard output (with `warnings`, and in
    /// fake-quant mode `sqnr_db`).
    #[arg(long)]
    pub json: bool,
}

pub fn eval(o: &EvalOptions) -> Result<String, Failure> {
    let mode = match o.mode {
        EvalMode::Float => "float",
        EvalMode::FakeQuant => "fake-quant",
        EvalMode::Int => return eval_int(o, EngineKind::Interp, "int"),
        EvalMode::Jit => return eval_int(o, EngineKind::Jit, "jit"),
    };
    let (_, model) = load_float_model(&o.model)?;
    let path = Path::new(&o.weights);
    let ck = Checkpoint::load(path)?;
    let label_map = labels(&ck).map_err(|e| e.in_file(path))?;
    let ds = data::load(Path::new(&o.data))?;
    let ds = if label_map.is_empty() { ds } else { ds.with_labels(&label_map)? };
    let typed = fit_to_data(&model, &ds)?;
    let (graph, quant, store) = inference_model(&ck, &typed, path)?;
    match (o.mode, &quant) {
        (EvalMode::FakeQuant, None) => {
            return Err(Failure(format!(
                "{}: a float checkpoint; --mode fake-quant needs one trained with --quant\n",
                o.weights
            )))
        }
        (EvalMode::Float, Some(q)) => {
            return Err(Failure(format!(
                "{}: trained with --quant {}; evaluate it with --mode fake-quant\n",
                o.weights,
                q.spec()
            )))
        }
        _ => {}
    }
    let plan = Plan::new(&graph).map_err(|e| Failure(format!("{}: error: {e}\n", o.model)))?;
    let w = weights_from(&plan, &store, 0);
    let threads = pool(o.threads)?;
    let n = threads.current_num_threads();
    let mut out = serde_json::json!({ "n": ds.n, "mode": mode });
    let mut table = String::new();
    let warnings = if o.mode == EvalMode::Float {
        out["accuracy"] = threads.install(|| evaluate(&plan, &w, &ds, n)).accuracy.into();
        diagnostics::checkpoint_warnings(&typed, &ck)
    } else {
        let exact = threads.install(|| evaluate_exact(&plan, &w, &ds, n));
        out["accuracy"] = exact.accuracy.into();
        let bounds = crate::diagnose::accum::analyse(&plan, &w);
        let mut warnings: Vec<String> = bounds
            .iter()
            .filter(|b| b.bits > 32)
            .map(|b| format!(
                "layer `%{}` can need {} accumulator bits, more than 32; its integers may overflow: lower it with `--acc-bits {}`",
                b.layer, b.bits, b.bits
            ))
            .collect();
        out["accumulator_bits"] =
            bounds.iter().map(|b| (b.layer.clone(), serde_json::Value::from(b.bits))).collect();
        if let Some((ints, exponent)) = &exact.ints {
            out["logits_sha256"] = logits_sha256(ints).into();
            out["logits_exponent"] = (*exponent).into();
        }
        let found = threads.install(|| diagnostics::fake_quant(&typed, &ck, &plan, &w, &ds, n));
        out["sqnr_db"] = diagnostics::sqnr_json(&found.sqnr_db);
        out["quantizers"] = diagnostics::grid_json(&found.uses);
        table = diagnostics::sqnr_table(&found.sqnr_db);
        warnings.extend(found.warnings);
        warnings
    };
    out["warnings"] = diagnostics::report("", warnings).into();
    let accuracy = out["accuracy"].as_f64().unwrap_or(0.0);
    Ok(if o.json {
        out.to_string() + "\n"
    } else {
        format!("accuracy {accuracy:.4} on {} samples ({mode})\n{table}", ds.n)
    })
}

/// `--mode int` / `jit`: lowers the checkpoint in memory and runs the
/// integers in the interpreter or the JIT; `mode` names it in the output.
fn eval_int(o: &EvalOptions, engine: EngineKind, mode: &str) -> Result<String, Failure> {
    let (_, model) = load_float_model(&o.model)?;
    let path = Path::new(&o.weights);
    let ck = Checkpoint::load(path)?;
    let program =
        super::lower::lower_model(&model, &ck, path, 32, crate::eqsat::Target::Cpu, false)?.program;
    let report = super::lower::run_report(&program, &o.data, o.threads, engine, o.kernels)?;
    let warnings = diagnostics::report("", diagnostics::checkpoint_warnings(&model, &ck));
    Ok(if o.json {
        let mut out = report.json(mode);
        out["warnings"] = warnings.into();
        out.to_string() + "\n"
    } else {
        format!("accuracy {:.4} on {} samples ({mode})\n", report.accuracy, report.n)
    })
}

/// SHA-256 of the output integers as little-endian i32, sample after sample
/// (values beyond i32 saturate), so every arithmetic path can be compared.
pub fn logits_sha256(ints: &[i64]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for &v in ints {
        h.update((v.clamp(i32::MIN as i64, i32::MAX as i64) as i32).to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
