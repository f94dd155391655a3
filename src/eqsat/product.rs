//! A constant multiplication's cheapest hardware, by saturation and
//! extraction: what `potc report --target asic` counts and `potc lower
//! --target asic` decides with.

#[cfg(doc)]
use super::HardwareCost;
use super::{saturate, IntExpr, Rewrite};

/// The operators extraction chose for `x * m` under [`HardwareCost`]: the
/// hardware a constant multiplication needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductForm {
    pub multipliers: u64,
    pub adders: u64,
    pub shifters: u64,
}

impl ProductForm {
    /// Saturates `x * m` and counts the cheapest form's operators.
    pub fn of(m: u32, rules: &[Rewrite]) -> ProductForm {
        let expr = format!("(* x {m})").parse().expect("a valid expression");
        let best = saturate(&expr, rules).best;
        let mut f = ProductForm::default();
        let nodes = best.as_ref();
        for n in nodes {
            match n {
                IntExpr::Mul(_) => f.multipliers += 1,
                IntExpr::Add(_) | IntExpr::Sub(_) => f.adders += 1,
                IntExpr::Shl([_, a]) if !matches!(nodes[usize::from(*a)], IntExpr::Num(0)) => {
                    f.shifters += 1
                }
                _ => {}
            }
        }
        f
    }
}
