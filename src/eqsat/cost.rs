//! The hardware cost model extraction minimises.

use egg::{CostFunction, Id, Language};

use super::lang::IntExpr;

/// Area-like cost of one output element's datapath, summed over the tree
/// (a shared subterm is counted at each use). A multiplier is expensive; adds,
/// shifts by constants, max/min and clamps are cheap; constants and inputs are
/// wires. `shift-round` costs just above its lowering (an add and a shift), so
/// extraction exposes both. Division is not in the language at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct HardwareCost;

/// The cost of one operator, children excluded.
pub fn op_cost(enode: &IntExpr) -> usize {
    match enode {
        IntExpr::Num(_) | IntExpr::Symbol(_) => 0,
        IntExpr::Mul(_) => 8,
        IntExpr::ShiftRound(_) => 3,
        IntExpr::Add(_)
        | IntExpr::Sub(_)
        | IntExpr::Shl(_)
        | IntExpr::Shr(_)
        | IntExpr::Clamp(_)
        | IntExpr::Max(_)
        | IntExpr::Min(_)
        | IntExpr::Pow2(_) => 1,
    }
}

impl CostFunction<IntExpr> for HardwareCost {
    type Cost = usize;

    fn cost<C>(&mut self, enode: &IntExpr, mut costs: C) -> usize
    where
        C: FnMut(Id) -> usize,
    {
        enode.fold(op_cost(enode), |sum, id| sum.saturating_add(costs(id)))
    }
}

/// What a program is for: `cpu`, the JIT, whose dot-product instructions
/// multiply (every layer keeps its multiplications); `asic`, a spatial
/// datapath whose area [`HardwareCost`] models (multipliers expensive,
/// adders and shifts by constants cheap), so extraction chooses shift-add
/// forms wherever they are cheaper.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Cpu,
    Asic,
}
