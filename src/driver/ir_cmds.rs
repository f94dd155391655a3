//! `potc check`, `potc print` and `potc passes`.

use super::{load_model, Failure};
use crate::ir::print;
use crate::pass::{PassContext, PassManager};
use crate::passes::registry;
use crate::quant::QuantConfig;

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
/// `--quant` spec that `insert-fake-quant` uses.
pub fn print_model(
    path: &str,
    passes: &str,
    print_after_all: bool,
    quant: Option<&str>,
) -> Result<String, Failure> {
    let (src, mut g) = load_model(path)?;
    let quant =
        quant.map(QuantConfig::parse).transpose().map_err(|e| Failure(format!("error: {e}\n")))?;
    let mut cx = PassContext { weights: None, quant };
    let registry = registry();
    let pipeline = registry.pipeline(passes).map_err(|e| Failure(format!("error: {e}\n")))?;
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
                out.push_str(&print(r.graph));
            }
        })
        .map_err(|e| Failure(format!("{}: error: {e}\n", src.path)))?;
    if !print_after_all {
        out.push_str(&print(&g));
    }
    Ok(out)
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
