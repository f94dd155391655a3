//! `--distill FLOAT_CKPT`: the teacher's logits on the training data.

use super::quantized::graph_of;
use super::Failure;
use crate::ckpt::Checkpoint;
use crate::data::Dataset;
use crate::interp::Plan;
use crate::ir::Graph;
use crate::train::checkpoint::{labels, weights};
use crate::train::{evaluate, Teacher};
use std::path::Path;

/// Evaluates the float checkpoint `path` of the model `typed` on every
/// training sample. The teacher must be a float run of the same model with
/// the same classes.
pub fn teacher(
    path: &str,
    typed: &Graph,
    train: &Dataset,
    threads: usize,
) -> Result<Teacher, Failure> {
    let ck = Checkpoint::load(Path::new(path))?;
    let (graph, quant) = graph_of(&ck, typed, Path::new(path))?;
    if quant.is_some() {
        return Err(Failure(format!(
            "{path}: a quantization-aware checkpoint; --distill takes a float one (the teacher)\n"
        )));
    }
    ck.check_against(&graph).map_err(|e| e.in_file(Path::new(path)))?;
    let names = labels(&ck).map_err(|e| e.in_file(Path::new(path)))?;
    if !names.is_empty() && names != train.labels {
        return Err(Failure(format!(
            "{path}: the teacher's classes are {}, the training data's {}\n",
            names.join(", "),
            train.labels.join(", ")
        )));
    }
    let plan = Plan::new(&graph).map_err(|e| Failure(format!("{path}: error: {e}\n")))?;
    let ev = evaluate(&plan, &weights(&plan, &ck), train, threads);
    Ok(Teacher { logits: ev.logits, classes: ev.classes })
}
