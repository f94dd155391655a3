//! Batch-norm folding in inference form, and the move of `1/L` across global
//! sum pooling, on the datapath of one output element.
//!
//! Inference batch norm is an affine map per channel, `y = acc * s + t`;
//! folding moves `s` into the MAC's weight and bias and `t` into the bias. On
//! tensors `fold-bn` does this with real `s` and `t` (through
//! `quant::fold::fold_bn`, the function training shares); here the same
//! algebra is stated on integers, where it is exact, so that a datapath with
//! an integer or power-of-two batch norm saturates to one MAC.
//!
//! Pattern variables: `?x`, `?y` inputs; `?w` a weight, `?b` a bias, `?s` a
//! scale, `?t` a shift (any expressions; the identities need no condition).

use egg::rewrite as rw;

use crate::eqsat::Rewrite;

/// The folding identities.
#[rustfmt::skip]
pub fn all() -> Vec<Rewrite> {
    vec![
        // (x * w + b) * s == x * (w * s) + b * s: the batch-norm scale enters
        // the weight and the bias.
        rw!("fold-scale";   "(* (+ (* ?x ?w) ?b) ?s)" => "(+ (* ?x (* ?w ?s)) (* ?b ?s))"),
        // (x * w + b) + t == x * w + (b + t): the batch-norm shift enters the bias.
        rw!("fold-shift";   "(+ (+ (* ?x ?w) ?b) ?t)" => "(+ (* ?x ?w) (+ ?b ?t))"),
        // x * w + y * w == (x + y) * w: multiplying each step then summing over
        // time equals summing first (global sum pooling before a linear
        // layer), which is why the 1/L of an average can live in the weights.
        rw!("sum-pool-mac"; "(+ (* ?x ?w) (* ?y ?w))" => "(* (+ ?x ?y) ?w)"),
    ]
}
