//! Equality saturation over the integer datapath of one output element.
//!
//! This module is the one place that builds an egg `Runner`: the language and
//! its constant analysis ([`lang`]), the hardware cost model ([`cost`]), the
//! reference evaluator ([`eval()`]) and [`saturate`], which runs a rule set under
//! explicit limits and extracts the cheapest equivalent expression. The rules
//! themselves are identities listed in `passes/rules/`.

pub mod cost;
pub mod eval;
pub mod lang;
pub mod net;
mod product;

use std::time::Duration;

use egg::{Extractor, Id, RecExpr, Runner, StopReason, Subst, Var};

pub use cost::{HardwareCost, Target};
pub use eval::eval;
pub use lang::{ConstFold, EGraph, IntExpr};
pub use product::ProductForm;

/// A rewrite over [`IntExpr`] with the constant analysis.
pub type Rewrite = egg::Rewrite<IntExpr, ConstFold>;

/// A rule condition: every named pattern variable is a known constant and
/// `pred` holds of their values, in the order named.
///
/// `when(["?lo", "?hi"], |[lo, hi]| lo <= hi)`
pub fn when<const N: usize>(
    vars: [&str; N],
    pred: fn([i64; N]) -> bool,
) -> impl Fn(&mut EGraph, Id, &Subst) -> bool {
    let vars: [Var; N] = vars.map(|v| v.parse().expect("a pattern variable like `?k`"));
    move |egraph, _, subst| {
        let mut vals = [0i64; N];
        for (slot, var) in vals.iter_mut().zip(vars) {
            match egraph[subst[var]].data {
                Some(c) => *slot = c,
                None => return false,
            }
        }
        pred(vals)
    }
}

/// The bounds on one saturation run. Whichever is reached first stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rule-application rounds.
    pub iterations: usize,
    /// E-nodes in the graph (checked between rounds, so a round may overshoot).
    pub nodes: usize,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for Limits {
    /// Generous for one element's datapath, which saturates in a few rounds.
    fn default() -> Self {
        Limits { iterations: 32, nodes: 20_000, time: Duration::from_secs(2) }
    }
}

/// The outcome of [`saturate`].
#[derive(Debug, Clone)]
pub struct Saturated {
    /// The cheapest expression found, under [`HardwareCost`].
    pub best: RecExpr<IntExpr>,
    /// Its cost.
    pub cost: usize,
    /// Why the run stopped: `saturated`, or the limit that was reached.
    pub stop_reason: String,
    /// Rounds run.
    pub iterations: usize,
    /// E-nodes in the final graph.
    pub nodes: usize,
}

/// Saturates `expr` with `rules` under [`Limits::default`] and extracts.
pub fn saturate(expr: &RecExpr<IntExpr>, rules: &[Rewrite]) -> Saturated {
    saturate_with(expr, rules, Limits::default())
}

fn runner(expr: &RecExpr<IntExpr>, limits: Limits) -> Runner<IntExpr, ConstFold> {
    Runner::<IntExpr, ConstFold>::default()
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(limits.time)
        .with_expr(expr)
}

/// Saturates `expr` with `rules` under `limits` and extracts the cheapest
/// equivalent expression. Stopping at a limit is not an error: the best
/// expression found so far is still equal to `expr`.
pub fn saturate_with(expr: &RecExpr<IntExpr>, rules: &[Rewrite], limits: Limits) -> Saturated {
    let runner = runner(expr, limits).run(rules);
    let root = runner.roots[0];
    let (cost, best) = Extractor::new(&runner.egraph, HardwareCost).find_best(root);
    Saturated {
        best,
        cost,
        stop_reason: describe(runner.stop_reason.as_ref()),
        iterations: runner.iterations.len(),
        nodes: runner.egraph.total_number_of_nodes(),
    }
}

/// The outcome of [`prove`].
#[derive(Debug, Clone)]
pub struct Proof {
    /// Whether saturation put both expressions in one e-class: the rules
    /// (each an identity) prove them equal. `false` proves nothing.
    pub equal: bool,
    /// The cheapest expression of the first one's class, under [`HardwareCost`].
    pub best: RecExpr<IntExpr>,
    pub stop_reason: String,
    pub iterations: usize,
    pub nodes: usize,
}

impl std::fmt::Display for Proof {
    /// `best [stop reason, N iterations, M e-nodes]`, for pass notes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}, {} iterations, {} e-nodes]",
            self.best, self.stop_reason, self.iterations, self.nodes
        )
    }
}

/// Saturates `lhs` and `rhs` together under `limits` and reports whether
/// the rules made them one class, with the cheapest form of `lhs`.
pub fn prove(
    lhs: &RecExpr<IntExpr>,
    rhs: &RecExpr<IntExpr>,
    rules: &[Rewrite],
    limits: Limits,
) -> Proof {
    let runner = Runner::<IntExpr, ConstFold>::default()
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(limits.time)
        .with_expr(lhs)
        .with_expr(rhs)
        .with_hook(|r| {
            // Stop as soon as the goal is reached: the rest is wasted work.
            let (a, b) = (r.egraph.find(r.roots[0]), r.egraph.find(r.roots[1]));
            if a == b {
                Err("proved".to_string())
            } else {
                Ok(())
            }
        })
        .run(rules);
    let (a, b) = (runner.egraph.find(runner.roots[0]), runner.egraph.find(runner.roots[1]));
    let (_, best) = Extractor::new(&runner.egraph, HardwareCost).find_best(a);
    Proof {
        equal: a == b,
        best,
        stop_reason: describe(runner.stop_reason.as_ref()),
        iterations: runner.iterations.len(),
        nodes: runner.egraph.total_number_of_nodes(),
    }
}

/// A stop reason as text.
pub(crate) fn describe(reason: Option<&StopReason>) -> String {
    match reason {
        None => "not run".to_string(),
        Some(StopReason::Saturated) => "saturated".to_string(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(s)) => format!("time limit ({s} s)"),
        Some(StopReason::Other(s)) => s.clone(),
    }
}
