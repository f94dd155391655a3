//! What `potc train` and `potc eval` say about a network
//! (`diagnose`): warnings on standard error and in `--json`, and the
//! per-layer SQNR of `eval --mode fake-quant`.

use super::quantized::{inference_graph, quantize_graph, store_from, weights_from, KEY_QUANT};
use super::start::Start;
use super::Failure;
use crate::ckpt::Checkpoint;
use crate::data::Dataset;
use crate::diagnose::{
    dead_channels, observe, warnings, weight_use, DeadChannel, Kind, QuantizerUse,
};
use crate::interp::{Plan, Weights};
use crate::ir::Graph;
use crate::pass::ParamStore;
use crate::quant::QuantConfig;

/// Prints `found` on standard error (`warning: <stage>...`) and returns
/// them as `--json` lists them, each after `stage`.
pub fn report(stage: &str, found: Vec<String>) -> Vec<String> {
    let found: Vec<String> = found.into_iter().map(|w| format!("{stage}{w}")).collect();
    for w in &found {
        eprintln!("warning: {w}");
    }
    found
}

/// Whether training starts QAT from float weights, and so calibrates.
pub fn calibrates(start: &Start<'_>) -> bool {
    let qat_init =
        start.init.is_some_and(|ck| matches!(ck.json::<QuantConfig>(KEY_QUANT), Ok(Some(_))));
    start.quant.is_some() && start.resume.is_none() && !qat_init
}

/// The warnings of a QAT run's training `plan` and weights `w` on `ds`, as
/// the inference network they make (batch norm folded) quantizes;
/// `float_init`, the checkpoint QAT started from, holds the statistics of
/// batch norms already folded before training. Diagnostics never fail a
/// run: a network they cannot build is noted on standard error.
pub fn qat(
    typed: &Graph,
    q: &QuantConfig,
    plan: &Plan,
    w: &Weights,
    ds: &Dataset,
    threads: usize,
    float_init: Option<&Checkpoint>,
) -> Vec<String> {
    qat_or_fail(typed, q, plan, w, ds, threads, float_init).unwrap_or_else(|e| {
        eprintln!("note: no quantization diagnostics: {}", e.0.trim_end());
        vec![]
    })
}

fn qat_or_fail(
    typed: &Graph,
    q: &QuantConfig,
    plan: &Plan,
    w: &Weights,
    ds: &Dataset,
    threads: usize,
    float_init: Option<&Checkpoint>,
) -> Result<Vec<String>, Failure> {
    let mut store = store_from(plan, w);
    let dead = dead_in(typed, &store, float_init);
    let trained = quantize_graph(typed, q, None, true)?;
    let graph = inference_graph(typed, Some(q), trained, &mut store)?;
    let iplan = Plan::new(&graph).map_err(|e| Failure(format!("error: {e}\n")))?;
    let iw = weights_from(&iplan, &store, 0);
    let mut uses = weight_use(&iplan, &iw);
    uses.extend(observe(&iplan, &iw, ds, threads, false).activations);
    Ok(warnings(&uses, &dead))
}

/// The warnings of float weights: their dead batch-norm channels, which
/// quantization would fold.
pub fn float(typed: &Graph, plan: &Plan, w: &Weights) -> Vec<String> {
    warnings(&[], &dead_in(typed, &store_from(plan, w), None))
}

/// Dead channels of the batch norms whose statistics `store` or else `ck` holds.
fn dead_in(typed: &Graph, store: &ParamStore, ck: Option<&Checkpoint>) -> Vec<DeadChannel> {
    dead_channels(typed, |n| {
        let stored = store.get(n).map(|(_, v)| v.as_slice());
        stored.or_else(|| ck.and_then(|ck| ck.f32(n)).map(|(_, v)| v))
    })
}

/// `eval`'s diagnostics of a checkpoint's inference `plan` and weights `w`
/// on `ds`: its warnings and, per layer, the SQNR in dB (`None`: exact).
pub struct EvalDiagnosis {
    pub warnings: Vec<String>,
    pub sqnr_db: Vec<(String, Option<f64>)>,
    /// The figures the warnings judge, per quantizer.
    pub uses: Vec<QuantizerUse>,
}

pub fn fake_quant(
    typed: &Graph,
    ck: &Checkpoint,
    plan: &Plan,
    w: &Weights,
    ds: &Dataset,
    threads: usize,
) -> EvalDiagnosis {
    let dead = dead_in(typed, &ParamStore::new(), Some(ck));
    let seen = observe(plan, w, ds, threads, true);
    let mut uses = weight_use(plan, w);
    uses.extend(seen.activations);
    EvalDiagnosis { warnings: warnings(&uses, &dead), sqnr_db: seen.sqnr_db, uses }
}

/// The warnings of a checkpoint's statistics alone: dead batch-norm
/// channels (those of a float checkpoint quantization would fold).
pub fn checkpoint_warnings(typed: &Graph, ck: &Checkpoint) -> Vec<String> {
    warnings(&[], &dead_in(typed, &ParamStore::new(), Some(ck)))
}

/// The SQNR table of `eval`'s text output.
pub fn sqnr_table(sqnr: &[(String, Option<f64>)]) -> String {
    let width = sqnr.iter().map(|(n, _)| n.len() + 1).max().unwrap_or(0);
    let mut t = String::from("SQNR per layer output (dB; float network vs fake-quant):\n");
    for (name, db) in sqnr {
        let db = db.map_or("exact".to_string(), |d| format!("{d:.1}"));
        t += &format!("  {:<width$}  {db:>6}\n", format!("%{name}"));
    }
    t
}

/// The SQNR as `--json` gives it: `{"<value>": dB or null}`.
pub fn sqnr_json(sqnr: &[(String, Option<f64>)]) -> serde_json::Value {
    sqnr.iter()
        .map(|(n, db)| (n.clone(), db.map_or(serde_json::Value::Null, |d| d.into())))
        .collect()
}

/// The grid figures as `--json` gives them: one object per quantizer.
pub fn grid_json(uses: &[QuantizerUse]) -> serde_json::Value {
    let one = |u: &QuantizerUse| {
        let of = match u.kind {
            Kind::Weights { .. } => "weights",
            Kind::Activations { .. } => "activations",
        };
        serde_json::json!({
            "name": u.name,
            "of": of,
            "bits": u.bits,
            "values": u.values,
            "clipped": u.clipped,
            "levels_used": u.levels_used,
            "levels": u.levels,
        })
    };
    uses.iter().map(one).collect()
}
