//! Multiplication by a constant as shifts and adds (canonical signed digit,
//! CSD): `7x == (x << 3) - x`, `10x == (x << 3) + (x << 1)`. Extraction
//! decides per target whether the adders beat the multiplier.
//!
//! Pattern variables: `?x` any expression; `?c` the constant, which the
//! applier requires to be known.

use egg::{Applier, Id, PatternAst, Subst, Symbol, Var};

use crate::eqsat::{EGraph, IntExpr, Rewrite};

/// The constant-multiplication identities.
pub fn all() -> Vec<Rewrite> {
    let searcher: egg::Pattern<IntExpr> = "(* ?x ?c)".parse().expect("a pattern");
    let applier = SplitConstant { x: var("?x"), c: var("?c") };
    debug_assert!(searcher.vars().contains(&applier.x));
    vec![Rewrite::new("mul-csd", searcher, applier).expect("a valid rule")]
}

fn var(s: &str) -> Var {
    s.parse().expect("a pattern variable")
}

/// For a constant `c > 2` that is no power of two, with `p` the power of two
/// just below it: `x * c == x * p + x * (c - p)` and `x * c == x * 2p - x *
/// (2p - c)`. Both remainders are smaller than `c` (and `mul-pow2` turns the
/// powers into shifts), so repeated application ends, with every form whose
/// digits are powers of two in the e-graph: the canonical signed digit form
/// (fewest nonzero digits) among them.
#[derive(Debug, Clone, Copy)]
pub struct SplitConstant {
    x: Var,
    c: Var,
}

impl Applier<IntExpr, crate::eqsat::ConstFold> for SplitConstant {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        matched: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<IntExpr>>,
        _rule_name: Symbol,
    ) -> Vec<Id> {
        let Some(c) = egraph[subst[self.c]].data else { return vec![] };
        if c <= 2 || c.count_ones() == 1 || c > 1 << 40 {
            return vec![];
        }
        let p = 1i64 << (63 - c.leading_zeros());
        let x = subst[self.x];
        let mut term = |k: i64| {
            let k = egraph.add(IntExpr::Num(k));
            egraph.add(IntExpr::Mul([x, k]))
        };
        let (low, rest) = (term(p), term(c - p));
        let (high, over) = (term(2 * p), term(2 * p - c));
        let sum = egraph.add(IntExpr::Add([low, rest]));
        let diff = egraph.add(IntExpr::Sub([high, over]));
        let mut changed = vec![];
        for form in [sum, diff] {
            if egraph.union(matched, form) {
                changed.push(form);
            }
        }
        changed
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.x, self.c]
    }
}

/// The nonzero digits of `c`'s canonical signed-digit form (non-adjacent
/// form): the fewest powers of two, added or subtracted, that make `c`.
pub fn csd_digits(c: i64) -> u32 {
    let (mut c, mut digits) = (c.unsigned_abs(), 0);
    while c != 0 {
        if c & 1 == 1 {
            digits += 1;
            // A run of ones ends in +1 when c = ...11: take -1 and carry.
            c = if c & 3 == 3 { c + 1 } else { c - 1 };
        }
        c >>= 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::csd_digits;

    #[test]
    fn csd_digit_counts() {
        for (c, d) in
            [(0, 0), (1, 1), (2, 1), (3, 2), (7, 2), (5, 2), (11, 3), (-7, 2), (15, 2), (45, 4)]
        {
            assert_eq!(csd_digits(c), d, "{c}");
        }
    }
}
