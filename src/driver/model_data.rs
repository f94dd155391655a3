//! Matching a model to a data set: channels must agree; a model whose
//! shapes do not depend on the length (global pooling before the head) is
//! re-typed to the data's length.

use super::Failure;
use crate::data::Dataset;
use crate::ir::{Graph, Type};

/// The graph typed for `ds`'s series; the caller keeps the original for hashing.
pub fn fit_to_data(g: &Graph, ds: &Dataset) -> Result<Graph, Failure> {
    let Some(&input) = g.inputs().first() else {
        return Err(Failure("the model has no input\n".into()));
    };
    let ty = &g.node(input).ty;
    let (c, l) = ty.sequence().unwrap_or((ty.shape[0], 1));
    if c != ds.channels {
        return Err(Failure(format!(
            "{}: the data has {} channel(s) per series, but model `{}` takes {c}\n",
            ds.path, ds.channels, g.name
        )));
    }
    if l == ds.length {
        return Ok(g.clone());
    }
    let mut typed = g.clone();
    typed.retype_input(0, Type::f32(vec![c, ds.length])).map_err(|e| {
        Failure(format!(
            "{}: the series have length {}, model `{}` was written for {l}, and it cannot take \
             another length: {e}\n",
            ds.path, ds.length, g.name
        ))
    })?;
    eprintln!(
        "note: model `{}` re-typed from length {l} to the data's length {}",
        g.name, ds.length
    );
    Ok(typed)
}

/// A rayon pool of `threads` threads (0 = one per core).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool, Failure> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure(format!("error: cannot start {threads} threads: {e}\n")))
}
