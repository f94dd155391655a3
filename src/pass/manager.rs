//! Runs a pipeline: each pass, then the verifier, then the semantics check.

use super::{Pass, PassContext, PassError, Pipeline, Semantics};
use crate::ir::{verify, Graph, Type};

/// How a pipeline is run.
#[derive(Debug, Clone, Copy)]
pub struct PassManager {
    /// Whether meaning-changing passes may run (training pipelines); lowering
    /// of a trained model allows only identities.
    pub allow_meaning_changes: bool,
}

/// What one pass did, handed to the observer after it ran.
pub struct PassReport<'a> {
    pub pass: &'a dyn Pass,
    pub changed: bool,
    pub graph: &'a Graph,
    /// What the pass reported about its run.
    pub notes: Vec<String>,
}

impl PassManager {
    /// Runs every pass of `pipeline` on `g`, verifying after each one, and
    /// calls `after` with the result (e.g. for `--print-after-all`).
    pub fn run(
        &self,
        pipeline: &Pipeline<'_>,
        g: &mut Graph,
        cx: &mut PassContext<'_>,
        mut after: impl FnMut(PassReport<'_>),
    ) -> Result<(), PassError> {
        if !self.allow_meaning_changes {
            if let Some(p) = pipeline.passes.iter().find(|p| p.semantics() == Semantics::Changing) {
                return Err(PassError::MeaningChangeNotAllowed(p.name()));
            }
        }
        for &pass in &pipeline.passes {
            let before = signature(g);
            let changed =
                pass.run(g, cx).map_err(|error| PassError::Failed { pass: pass.name(), error })?;
            verify(g).map_err(|error| PassError::Verify { pass: pass.name(), error })?;
            if pass.semantics() == Semantics::Preserving && signature(g) != before {
                return Err(PassError::SignatureChanged(pass.name()));
            }
            let notes = std::mem::take(&mut cx.notes);
            after(PassReport { pass, changed, graph: g, notes });
        }
        Ok(())
    }
}

/// The input and output types: what a meaning-preserving pass may not change.
fn signature(g: &Graph) -> (Vec<Type>, Option<Type>) {
    let inputs = g.inputs().iter().map(|&i| g.node(i).ty.clone()).collect();
    (inputs, g.output().filter(|&o| g.contains(o)).map(|o| g.node(o).ty.clone()))
}
