//! The integer language of one output element's datapath, and the constant
//! analysis every rule condition reads.
//!
//! Semantics are unbounded integer arithmetic: no operator wraps or saturates
//! here (saturation to a destination width belongs to the lowered program, not
//! to these identities). Constants are `i64`; a fold that would leave `i64`, a
//! negative shift amount and a negative `pow2` exponent are left unfolded, in
//! agreement with [`super::eval::eval`], which calls them undefined.

use egg::{define_language, merge_option, Analysis, DidMerge, Id, Symbol};

define_language! {
    /// One integer expression. Shift amounts and `pow2` exponents are
    /// expressions too, but every rule that moves them requires constants.
    pub enum IntExpr {
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        // `x << a`, a >= 0: x * 2^a.
        "<<" = Shl([Id; 2]),
        // `x >> a`, a >= 0: floor(x / 2^a), the arithmetic shift.
        ">>" = Shr([Id; 2]),
        // k > 0: (x + 2^(k-1)) >> k; k <= 0: x << -k (spec section 4).
        "shift-round" = ShiftRound([Id; 2]),
        // min(max(x, lo), hi): total, also for lo > hi.
        "clamp" = Clamp([Id; 3]),
        "max" = Max([Id; 2]),
        "min" = Min([Id; 2]),
        // 2^k, k >= 0.
        "pow2" = Pow2(Id),
        Num(i64),
        Symbol(Symbol),
    }
}

/// The e-graph of [`IntExpr`] with constant facts.
pub type EGraph = egg::EGraph<IntExpr, ConstFold>;

/// Constant analysis: a class's value when every node of some member is
/// constant. `modify` adds the literal and, for a positive power of two
/// `2^k`, the node `(pow2 k)`, so a pattern `(* ?x (pow2 ?k))` sees `8` as
/// `(pow2 3)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConstFold;

/// `x << a` on `i64`, checked; `None` for a negative amount or overflow.
pub fn shl(x: i64, a: i64) -> Option<i64> {
    let a = u32::try_from(a).ok()?;
    x.checked_mul(2i64.checked_pow(a)?)
}

/// `x >> a` on `i64` (arithmetic, floor); `None` for a negative amount.
pub fn shr(x: i64, a: i64) -> Option<i64> {
    (a >= 0).then(|| x >> a.min(63))
}

/// `shift_round(x, k)` on `i64`, checked.
pub fn shift_round(x: i64, k: i64) -> Option<i64> {
    if k > 0 {
        shr(x.checked_add(shl(1, k - 1)?)?, k)
    } else {
        shl(x, k.checked_neg()?)
    }
}

impl Analysis<IntExpr> for ConstFold {
    type Data = Option<i64>;

    fn make(egraph: &mut EGraph, enode: &IntExpr, _id: Id) -> Self::Data {
        let c = |i: &Id| egraph[*i].data;
        match enode {
            IntExpr::Num(n) => Some(*n),
            IntExpr::Symbol(_) => None,
            IntExpr::Add([a, b]) => c(a)?.checked_add(c(b)?),
            IntExpr::Sub([a, b]) => c(a)?.checked_sub(c(b)?),
            IntExpr::Mul([a, b]) => c(a)?.checked_mul(c(b)?),
            IntExpr::Shl([x, a]) => shl(c(x)?, c(a)?),
            IntExpr::Shr([x, a]) => shr(c(x)?, c(a)?),
            IntExpr::ShiftRound([x, k]) => shift_round(c(x)?, c(k)?),
            IntExpr::Clamp([x, lo, hi]) => Some(c(x)?.max(c(lo)?).min(c(hi)?)),
            IntExpr::Max([a, b]) => Some(c(a)?.max(c(b)?)),
            IntExpr::Min([a, b]) => Some(c(a)?.min(c(b)?)),
            IntExpr::Pow2(k) => shl(1, c(k)?),
        }
    }

    fn merge(&mut self, to: &mut Self::Data, from: Self::Data) -> DidMerge {
        merge_option(to, from, |a, b| {
            // Two values in one class means an unsound rule: stop loudly.
            assert_eq!(*a, b, "equality saturation merged unequal constants");
            DidMerge(false, false)
        })
    }

    fn modify(egraph: &mut EGraph, id: Id) {
        let Some(c) = egraph[id].data else { return };
        let lit = egraph.add(IntExpr::Num(c));
        egraph.union(id, lit);
        if c > 0 && c.count_ones() == 1 {
            let k = egraph.add(IntExpr::Num(i64::from(c.trailing_zeros())));
            let pow = egraph.add(IntExpr::Pow2(k));
            egraph.union(id, pow);
        }
    }
}
