//! Requantization: the rounding shift of spec section 4 in adds and shifts.
//!
//! Pattern variables: `?x` any expression; `?k`, `?a` shift amounts, which
//! every condition requires to be known constants.
//!
//! Deliberately absent: `x / 2^k == x >> k`. Division truncates toward zero
//! and the arithmetic shift floors, so the two differ for negative `x` not
//! divisible by `2^k` (`-1 / 2 == 0`, `-1 >> 1 == -1`). The language has no
//! division; requantization is `shift-round`, defined by the right-hand side
//! of `shift-round-right`.

use std::collections::HashSet;

use egg::{rewrite as rw, Id, Subst, Symbol, Var};

use crate::eqsat::net::{Net, NetGraph, NetRewrite};
use crate::eqsat::{when, Rewrite};

/// The requantization identities.
#[rustfmt::skip]
pub fn all() -> Vec<Rewrite> {
    vec![
        // shift_round(x, k) == (x + 2^(k-1)) >> k, for k > 0.
        rw!("shift-round-right"; "(shift-round ?x ?k)"        => "(>> (+ ?x (pow2 (- ?k 1))) ?k)" if when(["?k"], |[k]| k > 0)),
        // shift_round(x, k) == x << -k, for k <= 0.
        rw!("shift-round-left";  "(shift-round ?x ?k)"        => "(<< ?x (- 0 ?k))"               if when(["?k"], |[k]| k <= 0)),
        // shift_round(x, 0) == x.
        rw!("shift-round-zero";  "(shift-round ?x 0)"         => "?x"),
        // shift_round(max(x, 0), k) == max(shift_round(x, k), 0), for every k:
        // shift_round is monotone and maps 0 to 0, so it commutes with ReLU.
        rw!("shift-round-relu";  "(shift-round (max ?x 0) ?k)" => "(max (shift-round ?x ?k) 0)"),
        // shift_round(x << a, k) == x << (a - k), for a >= 0 and a >= k: the
        // rounding bit falls on zeros.
        rw!("shift-round-shl";   "(shift-round (<< ?x ?a) ?k)" => "(<< ?x (- ?a ?k))"             if when(["?a", "?k"], |[a, k]| a >= 0 && a >= k)),
    ]
}

/// The requantization rules over the network graph ([`crate::eqsat::net`]).
/// `fusable` names the requants into an unsigned type for whose every shift
/// `k` saturation with [`all`] proved
/// `clamp(shift_round(max(x, 0), k), 0, hi) == clamp(shift_round(x, k), 0, hi)`.
#[rustfmt::skip]
pub fn net(fusable: HashSet<Symbol>) -> Vec<NetRewrite> {
    vec![
        // requant(relu(x)) == requant(x): ReLU becomes the clamp (lo = 0).
        rw!("relu-into-clamp"; "(requant ?q (relu ?r ?x))" => "(requant ?q ?x)" if key_in("?q", fusable)),
    ]
}

/// A condition: `var`'s class is a key in `keys`.
fn key_in(var: &str, keys: HashSet<Symbol>) -> impl Fn(&mut NetGraph, Id, &Subst) -> bool {
    let var: Var = var.parse().expect("a pattern variable");
    move |egraph, _, subst| {
        egraph[subst[var]].nodes.iter().any(|n| matches!(n, Net::Symbol(s) if keys.contains(s)))
    }
}
