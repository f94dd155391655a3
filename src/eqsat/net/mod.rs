//! Equality saturation over the network graph: the IR's layers as e-nodes
//! whose parameters are symbolic, rules (in `passes/rules/`) that rewrite
//! layers into equal ones, and extraction of the cheapest form back into the
//! IR, with its parameters computed from a checkpoint's tensors.
//!
//! Only the iteration and e-node limits bound a run, never wall-clock time:
//! training and lowering must extract the same graph from the same model
//! (the weights QAT quantizes are the weights the integers are made from),
//! and a time limit would make that depend on the machine's load.

mod build;
mod cost;
mod extract;
mod lang;
mod params;

use std::collections::BTreeSet;
use std::time::Duration;

use egg::{Extractor, Runner};

pub use cost::NetCost;
pub use lang::{Net, NetGraph, NetRewrite};

use crate::ir::Graph;
use crate::pass::{ParamStore, RewriteError};

/// The bounds on one run over a network. Both are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    /// Rule-application rounds.
    pub iterations: usize,
    /// E-nodes in the graph (checked between rounds).
    pub nodes: usize,
}

impl Default for NetLimits {
    /// Each folding rule removes a batch norm, so a network saturates in a
    /// few rounds; the e-node bound is some hundred times a 64-block
    /// residual network's size.
    fn default() -> Self {
        NetLimits { iterations: 30, nodes: 200_000 }
    }
}

/// What one run did, for the pass notes.
#[derive(Debug, Clone)]
pub struct NetReport {
    pub changed: bool,
    pub stop_reason: String,
    pub iterations: usize,
    pub nodes: usize,
    pub classes: usize,
    /// One line per node extraction made: `%name = conv from %key, w = (fold-w c1.w b1), ...`.
    pub chosen: Vec<String>,
}

impl NetReport {
    /// The report as note lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "e-graph: {} e-nodes in {} classes, {} iteration{}, stopped: {}",
            self.nodes,
            self.classes,
            self.iterations,
            if self.iterations == 1 { "" } else { "s" },
            self.stop_reason
        )];
        out.extend(self.chosen.iter().map(|c| format!("chosen: {c}")));
        out
    }
}

/// Saturates `g` with `rules`, extracts the cheapest form under [`NetCost`]
/// and writes it back into `g` (and, with `store`, its parameters).
pub fn rewrite(
    g: &mut Graph,
    store: Option<&mut ParamStore>,
    rules: &[NetRewrite],
    limits: NetLimits,
) -> Result<NetReport, RewriteError> {
    let mut enc = build::encode(g)?;
    let runner = Runner::<Net, ()>::default()
        .with_egraph(std::mem::take(&mut enc.egraph))
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(Duration::from_secs(u64::from(u32::MAX)))
        .run(rules);
    let enc = build::Encoded { egraph: runner.egraph, ..enc };
    let ex = Extractor::new(&enc.egraph, NetCost);
    let original = g.clone();
    let before: BTreeSet<String> = g.params().into_iter().map(|p| p.0).collect();
    let mut m = extract::Materializer::new(g, &original, &enc, &ex);
    let output = m.materialize(enc.root)?;
    m.finish(output);
    let chosen =
        m.made.iter().map(|made| describe(made, m.g.node(made.node).op.name(), &ex)).collect();
    let changed = !m.made.is_empty() || m.g.len() != original.len();
    if let Some(store) = store {
        let fresh = m.params(store)?;
        let after: BTreeSet<String> = m.g.params().into_iter().map(|p| p.0).collect();
        for gone in before.difference(&after) {
            store.remove(gone);
        }
        for made in &m.made {
            if made.params.is_some() && !m.g.node_ids().any(|n| m.g.node(n).name == made.key) {
                store.remove(&format!("{}.w_log2t", made.key));
            }
        }
        store.extend(fresh);
    }
    Ok(NetReport {
        changed,
        stop_reason: crate::eqsat::describe(runner.stop_reason.as_ref()),
        iterations: runner.iterations.len(),
        nodes: enc.egraph.total_number_of_nodes(),
        classes: enc.egraph.number_of_classes(),
        chosen,
    })
}

/// `%name = conv1d from %key, w = ..., b = ...`.
fn describe(made: &extract::Made, op: &str, ex: &Extractor<'_, NetCost, Net, ()>) -> String {
    let mut s = format!("%{} = {op} from %{}", made.name, made.key);
    if let Some((w, b)) = made.params {
        s += &format!(", w = {}, b = {}", ex.find_best(w).1, ex.find_best(b).1);
    }
    s
}
