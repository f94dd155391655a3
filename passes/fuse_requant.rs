//! `fuse-requant`: a ReLU that only feeds a requantization disappears into
//! its clamp (spec section 4: "ReLU becomes the clamp of the
//! requantization"), by equality saturation over the integer program's graph
//! ([`crate::eqsat::net`], the rule `relu-into-clamp` of
//! `passes/rules/requant.rs`). The rule applies to a requant only once, for
//! each distinct shift `k` it has, saturation with the scalar identities of
//! `passes/rules/` proves
//!
//! `clamp(shift_round(max(x, 0), k), lo, hi) == clamp(shift_round(x, k), lo, hi)`,
//!
//! which holds when `lo >= 0` (an unsigned output). A requant into a signed
//! type keeps its ReLU, and so does a ReLU with another user (the graph's
//! `share` barrier). The notes name each proof, the cheapest datapath found
//! (adds, shifts and one clamp), and the graph e-graph's size, stop reason
//! and choices.

use std::collections::{BTreeMap, HashSet};

use egg::{RecExpr, Symbol};

use crate::eqsat::net::{rewrite, NetLimits};
use crate::eqsat::{prove, IntExpr, Limits, Proof};
use crate::ir::op::Op;
use crate::ir::Graph;
use crate::pass::{Pass, PassContext, RewriteError, Semantics};
use crate::passes::rules;
use crate::quant::QuantSpec;

pub struct FuseRequant;

impl Pass for FuseRequant {
    fn name(&self) -> &'static str {
        "fuse-requant"
    }

    fn summary(&self) -> &'static str {
        "fold a ReLU into the clamp of the requant after it, proved by equality saturation"
    }

    fn description(&self) -> &'static str {
        "For `requant(relu(x))` into an unsigned type, and each distinct shift k\n\
         of the requant, saturates clamp(shift_round(max(x, 0), k), 0, hi) with\n\
         the rewrite rules until it meets clamp(shift_round(x, k), 0, hi). The\n\
         proved requants are then fused by equality saturation over the\n\
         program's graph (rule relu-into-clamp): the requant reads x and the\n\
         ReLU goes, unless another op reads it. Bounded by explicit iteration,\n\
         e-node and time limits; the notes show each proof, the graph's\n\
         e-graph and the stop reasons.\n\
         \n\
         Before:\n\
         \x20 %r = relu(%c) : i32[4, 14]\n\
         \x20 %r.q = requant(%r) {bits = 8, signed = false} : u8[4, 14]\n\
         After:\n\
         \x20 %r.q = requant(%c) {bits = 8, signed = false} : u8[4, 14]"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Preserving
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        let Some(ints) = cx.ints.as_deref() else { return Ok(false) };
        let rules = rules::all();
        let mut proofs: BTreeMap<(i64, i64, i64), Proof> = BTreeMap::new();
        let mut fusable = HashSet::new();
        for id in g.order().map_err(|_| RewriteError::Cycle)? {
            let Op::Requant(q) = &g.node(id).op else { continue };
            let relu = g.operands(id)[0];
            if g.node(relu).op != Op::Relu || g.users(relu).len() != 1 || g.output() == Some(relu) {
                continue;
            }
            let spec = QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
            let (lo, hi) = (spec.qmin(), spec.qmax());
            let name = g.node(id).name.clone();
            let Some((_, shifts)) = ints.get(&format!("{name}.shift")) else { continue };
            let mut distinct: Vec<i64> = shifts.iter().map(|&k| i64::from(k)).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let mut all = true;
            for k in distinct {
                let proof = proofs.entry((k, lo, hi)).or_insert_with(|| {
                    prove(
                        &datapath(true, k, lo, hi),
                        &datapath(false, k, lo, hi),
                        &rules,
                        Limits::default(),
                    )
                });
                cx.notes.push(format!(
                    "%{name}, k = {k}: {} {}",
                    if proof.equal { "relu fusable:" } else { "relu kept, not proved:" },
                    proof
                ));
                all &= proof.equal;
            }
            if all {
                fusable.insert(Symbol::from(name.as_str()));
            }
        }
        if fusable.is_empty() {
            return Ok(false);
        }
        let report = rewrite(g, None, &rules::requant::net(fusable), NetLimits::default())?;
        cx.notes.extend(report.lines());
        Ok(report.changed)
    }
}

/// `clamp(shift_round(x, k), lo, hi)`, with `max(x, 0)` for `x` when `relu`.
fn datapath(relu: bool, k: i64, lo: i64, hi: i64) -> RecExpr<IntExpr> {
    let x = if relu { "(max x 0)" } else { "x" };
    format!("(clamp (shift-round {x} {k}) {lo} {hi})").parse().expect("a valid expression")
}
