//! `potc check`, `potc print` and `potc passes`.

use super::quantized::graph_of;
use super::{load_float_model, load_model, Failure};
use crate::ckpt::Checkpoint;
use crate::ir::print;
use crate::pass::{ParamStore, PassContext, PassManager};
use crate::passes::registry;
use crate::quant::QuantConfig;
use std::path::Path;

/// `potc check`: a one-line summary of a valid model.
pub fn check(path: &str) -> Result<String, Failure> {
    let (_, g) = load_model(path)?;
    let count = |trainable: bool| -> usize {
        let params = g.params().into_iter().filter(|(_, p)| p.trainable == trainable);
        params.map(|(_, p)| p.shape.iter().product::<usize>()).sum()
    };
    let out = g.output().map(|o| g.node(o).ty.to_string()).unwrap_or_default();
    Ok(format!(
        "{path}: ok: model `{}`, {} ops, {} trainable parameters, {} statistics, returns {out}\n",
        g.name,
        g.len() - g.inputs().len(),
        count(true),
        count(false),
    ))
}

/// `potc print`: the IR after the named passes; with `print_after_all`, the
/// parsed IR and the IR after every pass, each under a header. `quant` is the
/// configuration `insert-fake-quant` uses (`--quant`); `weights` a checkpoint
/// whose parameters the passes carry (e.g. `fold-bn` folds them), summarised
/// after the final IR.
pub fn print_model(
    path: &str,
    passes: &str,
    print_after_all: bool,
    quant: Option<QuantConfig>,
    weights: Option<&str>,
    target: crate::eqsat::Target,
) -> Result<String, Failure> {
    let registry = registry();
    let pipeline = registry.pipeline(passes).map_err(|e| Failure(format!("error: {e}\n")))?;
    let quantizes = pipeline.passes.iter().any(|p| p.name() == "insert-fake-quant");
    // Only quantizing refuses hand-written quantizers: printing and lowering
    // an already quantized model stays possible.
    let (src, mut g) = if quantizes { load_float_model(path)? } else { load_model(path)? };
    let mut store = weights.map(|w| checkpoint_params(&g, w)).transpose()?;
    let mut ints = crate::pass::IntStore::new();
    let mut cx = PassContext {
        weights: store.as_mut(),
        quant,
        ints: Some(&mut ints),
        target,
        ..Default::default()
    };
    let mut out = String::new();
    if print_after_all {
        out.push_str("// *** IR after parse ***\n");
        out.push_str(&print(&g));
    }
    let manager = PassManager { allow_meaning_changes: true };
    manager
        .run(&pipeline, &mut g, &mut cx, |r| {
            if print_after_all {
                let note = if r.changed { "" } else { " (no change)" };
                out.push_str(&format!("\n// *** IR after {}{note} ***\n", r.pass.name()));
                for n in &r.notes {
                    out.push_str(&format!("// {n}\n"));
                }
                out.push_str(&print(r.graph));
            }
        })
        .map_err(|e| Failure(format!("{}: error: {e}\n", src.path)))?;
    if !print_after_all {
        out.push_str(&print(&g));
    }
    drop(cx);
    if crate::ir::verify::is_integer_program(&g) {
        out.push_str(&int_summary(&ints));
    } else if let Some(store) = &store {
        out.push_str(&summary(&g, store));
    }
    Ok(out)
}

/// A checkpoint's parameters, checked against the model (its float
/// parameters; a QAT checkpoint against its quantized training graph).
fn checkpoint_params(g: &crate::ir::Graph, path: &str) -> Result<ParamStore, Failure> {
    let ck = Checkpoint::load(Path::new(path))?;
    let (trained, _) = graph_of(&ck, g, Path::new(path))?;
    ck.check_against(&trained).map_err(|e| e.in_file(Path::new(path)))?;
    Ok(ck
        .tensors
        .keys()
        .filter_map(|n| ck.f32(n).map(|(s, v)| (n.clone(), (s.to_vec(), v.to_vec()))))
        .collect())
}

/// `// name: f32[shape] min .. max` for every parameter the graph names.
fn summary(g: &crate::ir::Graph, store: &ParamStore) -> String {
    let mut out = String::from("// parameters:\n");
    for (name, spec) in g.params() {
        match store.get(&name) {
            Some((shape, v)) => {
                let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                out.push_str(&format!("//   {name}: f32{shape:?} in [{lo:?}, {hi:?}]\n"));
            }
            None => {
                out.push_str(&format!("//   {name}: f32{:?} (not in the checkpoint)\n", spec.shape))
            }
        }
    }
    out
}

/// `// name: i32[shape] = [values]` (or its range) for every integer tensor.
fn int_summary(ints: &crate::pass::IntStore) -> String {
    let mut out = String::from("// integer tensors:\n");
    for (name, (shape, v)) in ints {
        let values = if v.len() <= 8 {
            format!("= {v:?}")
        } else {
            let (lo, hi) = (v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
            format!("in [{lo}, {hi}]")
        };
        out.push_str(&format!("//   {name}: i32{shape:?} {values}\n"));
    }
    out
}

/// `potc passes`: every pass with its summary, or one pass in full.
pub fn describe_passes(name: Option<&str>) -> Result<String, Failure> {
    let registry = registry();
    match name {
        None => Ok(registry
            .iter()
            .map(|p| format!("{:<16} {} ({})\n", p.name(), p.summary(), p.semantics()))
            .collect()),
        Some(n) => {
            let pipeline = registry.pipeline(n).map_err(|e| Failure(format!("error: {e}\n")))?;
            Ok(pipeline
                .passes
                .iter()
                .map(|p| {
                    format!(
                        "{}: {} ({})\n\n{}\n",
                        p.name(),
                        p.summary(),
                        p.semantics(),
                        p.description()
                    )
                })
                .collect())
        }
    }
}
