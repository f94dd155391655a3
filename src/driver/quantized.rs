//! The quantized model of a QAT run: built from the model text by the same
//! passes `potc print --passes canonicalize,fold-bn,insert-fake-quant` shows,
//! its parameters carried through `fold-bn`, its configuration recorded in
//! the checkpoint so `eval` and `lower` rebuild exactly the same graph.

use super::Failure;
use crate::ckpt::Checkpoint;
use crate::interp::plan::Plan;
use crate::interp::Weights;
use crate::ir::op::Op;
use crate::ir::Graph;
use crate::pass::{ParamStore, PassContext, PassManager};
use crate::passes::registry;
use crate::quant::config::BnFold;
use crate::quant::QuantConfig;
use crate::train::init_weights;
use std::path::Path;

/// Checkpoint metadata key of the `QuantConfig` (JSON).
pub const KEY_QUANT: &str = "quant";
/// The passes from the float model to the quantized one that inference,
/// the exact evaluation and lowering use.
pub const QAT_PIPELINE: &str = "canonicalize,fold-bn,insert-fake-quant";
/// Under simulated folding, training keeps each conv/batch-norm pair (other
/// batch norms become depthwise convolutions, as at inference).
pub const FOLD_SIM_PIPELINE: &str = "canonicalize,fold-lone-bn,insert-fake-quant";

/// The quantized graph of `g` for training (`training`) or inference; with
/// `store`, the float parameters become that graph's (folded) ones.
pub fn quantize_graph(
    g: &Graph,
    cfg: &QuantConfig,
    store: Option<&mut ParamStore>,
    training: bool,
) -> Result<Graph, Failure> {
    let text = if training && cfg.bn == BnFold::FoldSim { FOLD_SIM_PIPELINE } else { QAT_PIPELINE };
    run(g, text, cfg, store)
}

/// Runs a pipeline given as text on a copy of `g`.
fn run(
    g: &Graph,
    text: &str,
    cfg: &QuantConfig,
    store: Option<&mut ParamStore>,
) -> Result<Graph, Failure> {
    let registry = registry();
    let pipeline = registry.pipeline(text).map_err(|e| Failure(format!("error: {e}\n")))?;
    let mut q = g.clone();
    let mut cx = PassContext { weights: store, quant: Some(cfg.clone()), ..Default::default() };
    PassManager { allow_meaning_changes: true }
        .run(&pipeline, &mut q, &mut cx, |_| {})
        .map_err(|e| Failure(format!("error: model `{}`: {e}\n", g.name)))?;
    Ok(q)
}

/// The graph a checkpoint's parameters belong to: the quantized training
/// graph when it records a QAT configuration, else `typed` itself.
pub fn graph_of(
    ck: &Checkpoint,
    typed: &Graph,
    path: &Path,
) -> Result<(Graph, Option<QuantConfig>), Failure> {
    let bad = |why: String| Failure(format!("{}: metadata `{KEY_QUANT}`: {why}\n", path.display()));
    let cfg = ck.json::<QuantConfig>(KEY_QUANT).map_err(|e| e.in_file(path))?;
    let Some(cfg) = cfg else { return Ok((typed.clone(), None)) };
    cfg.validate().map_err(bad)?;
    let g = quantize_graph(typed, &cfg, None, true).map_err(|e| bad(e.0.trim_end().into()))?;
    Ok((g, Some(cfg)))
}

/// The graph to run a checkpoint for inference and its parameters: for a
/// QAT run the quantized graph with batch norm folded (under simulated
/// folding the trained parameters are folded here, by the same function
/// training used).
pub fn inference_model(
    ck: &Checkpoint,
    typed: &Graph,
    path: &std::path::Path,
) -> Result<(Graph, Option<QuantConfig>, ParamStore), Failure> {
    let (trained, cfg) = graph_of(ck, typed, path)?;
    ck.check_against(&trained).map_err(|e| e.in_file(path))?;
    let mut store: ParamStore = ck
        .tensors
        .keys()
        .filter_map(|n| ck.f32(n).map(|(s, v)| (n.clone(), (s.to_vec(), v.to_vec()))))
        .collect();
    let graph = inference_graph(typed, cfg.as_ref(), trained, &mut store)?;
    Ok((graph, cfg, store))
}

/// The inference graph of `trained` (the training graph of `typed` under
/// `cfg`) with parameters `store`, which follow it.
pub fn inference_graph(
    typed: &Graph,
    cfg: Option<&QuantConfig>,
    trained: Graph,
    store: &mut ParamStore,
) -> Result<Graph, Failure> {
    match cfg {
        Some(q) if q.bn == BnFold::FoldSim => {
            // Lone batch norms were converted when training started; the
            // pairs fold here, with the trained parameters.
            let lone = run(typed, "canonicalize,fold-lone-bn", q, None)?;
            run(&lone, "fold-bn,insert-fake-quant", q, Some(store))
        }
        _ => Ok(trained),
    }
}

pub fn store_from(plan: &Plan, w: &Weights) -> ParamStore {
    plan.params.iter().zip(w).map(|(p, v)| (p.name.clone(), (p.shape.clone(), v.clone()))).collect()
}

/// The plan's parameters from a store; any it lacks (new thresholds) start
/// at their initial values.
pub fn weights_from(plan: &Plan, store: &ParamStore, seed: u64) -> Weights {
    let init = init_weights(&plan.params, seed);
    plan.params
        .iter()
        .zip(init)
        .map(|(p, fresh)| match store.get(&p.name) {
            Some((shape, v)) if *shape == p.shape => v.clone(),
            _ => fresh,
        })
        .collect()
}

/// Every quantizer's integer exponent, named `<op>.exp` (activations) or
/// `<op>.w_exp` (weights): the checkpoint stores them as i32 tensors.
pub fn exponents(plan: &Plan, w: &Weights) -> Vec<(String, Vec<i32>)> {
    let mut out = vec![];
    for s in &plan.steps {
        match &s.op {
            Op::FakeQuant(fq) => {
                let spec = crate::quant::QuantSpec {
                    bits: fq.bits as u32,
                    signed: fq.signed,
                    narrow: fq.narrow,
                };
                out.push((format!("{}.exp", s.name), vec![spec.exponent(w[s.params[0]][0])]));
            }
            Op::Conv1d(c) if c.quant.w_bits.is_some() => out.push(weight_exps(s, w, &c.quant)),
            Op::Linear(l) if l.quant.w_bits.is_some() => out.push(weight_exps(s, w, &l.quant)),
            _ => {}
        }
    }
    out
}

fn weight_exps(
    s: &crate::interp::plan::Step,
    w: &Weights,
    q: &crate::ir::op::LayerQuant,
) -> (String, Vec<i32>) {
    let spec = crate::quant::kernels::weight_spec(q.w_bits.unwrap_or(8), q.format());
    let t = *s.params.last().expect("w_log2t is the last parameter");
    (format!("{}.w_exp", s.name), crate::quant::kernels::weight_exps(&w[t], &spec))
}

/// Adds the QAT configuration and the integer exponents to a checkpoint.
pub fn record(ck: &mut Checkpoint, cfg: &QuantConfig, plan: &Plan, w: &Weights) {
    ck.set_json(KEY_QUANT, cfg);
    for (name, e) in exponents(plan, w) {
        ck.insert_i32(name, vec![e.len()], e);
    }
}
