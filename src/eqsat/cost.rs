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

/// The cost of one output element's datapath on a CPU: every operation is
/// an instruction (a multiply-add is one lane of a dot-product instruction),
/// so a constant multiplication stays a multiplication.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuCost;

impl CostFunction<IntExpr> for CpuCost {
    type Cost = usize;

    fn cost<C>(&mut self, enode: &IntExpr, mut costs: C) -> usize
    where
        C: FnMut(Id) -> usize,
    {
        let own = match enode {
            IntExpr::Num(_) | IntExpr::Symbol(_) => 0,
            IntExpr::ShiftRound(_) => 2,
            _ => 1,
        };
        enode.fold(own, |sum, id| sum.saturating_add(costs(id)))
    }
}

/// What extraction optimises for: `cpu`, the instructions the JIT runs
/// ([`CpuCost`]); `asic`, the area of a spatial datapath ([`HardwareCost`]:
/// multipliers expensive, adders cheap, shifts by constants nearly free).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Cpu,
    Asic,
}
