//! A reference evaluator: what every rule must preserve.

use std::collections::HashMap;

use egg::{Id, RecExpr, Symbol};

use super::lang::IntExpr;

/// `x << a` in `i128`; `None` for a negative amount or overflow.
fn shl(x: i128, a: i128) -> Option<i128> {
    x.checked_mul(2i128.checked_pow(u32::try_from(a).ok()?)?)
}

/// `x >> a` in `i128`, arithmetic (floor); `None` for a negative amount.
fn shr(x: i128, a: i128) -> Option<i128> {
    (a >= 0).then(|| x >> a.min(127))
}

/// Evaluates `expr` with the symbols bound by `env`, exactly, in `i128`.
///
/// `None` means undefined: an unbound symbol, a negative shift amount or
/// `pow2` exponent, or a value outside `i128` (the language itself is
/// unbounded; see [`super::lang`]).
pub fn eval(expr: &RecExpr<IntExpr>, env: &HashMap<Symbol, i64>) -> Option<i128> {
    let nodes = expr.as_ref();
    let mut vals: Vec<i128> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let v = |i: &Id| vals[usize::from(*i)];
        let value = match node {
            IntExpr::Num(n) => i128::from(*n),
            IntExpr::Symbol(s) => i128::from(*env.get(s)?),
            IntExpr::Add([a, b]) => v(a).checked_add(v(b))?,
            IntExpr::Sub([a, b]) => v(a).checked_sub(v(b))?,
            IntExpr::Mul([a, b]) => v(a).checked_mul(v(b))?,
            IntExpr::Shl([x, a]) => shl(v(x), v(a))?,
            IntExpr::Shr([x, a]) => shr(v(x), v(a))?,
            IntExpr::ShiftRound([x, k]) => {
                let (x, k) = (v(x), v(k));
                if k > 0 {
                    shr(x.checked_add(shl(1, k - 1)?)?, k)?
                } else {
                    shl(x, k.checked_neg()?)?
                }
            }
            IntExpr::Clamp([x, lo, hi]) => v(x).max(v(lo)).min(v(hi)),
            IntExpr::Max([a, b]) => v(a).max(v(b)),
            IntExpr::Min([a, b]) => v(a).min(v(b)),
            IntExpr::Pow2(k) => shl(1, v(k))?,
        };
        vals.push(value);
    }
    vals.last().copied()
}
