//! Shifts: multiplication by a power of two is wiring plus a shifter.
//!
//! Pattern variables: `?x` any expression; `?k`, `?a`, `?b` shift amounts,
//! which every condition requires to be known constants.

use egg::rewrite as rw;

use crate::eqsat::{when, Rewrite};

/// The shift identities.
#[rustfmt::skip]
pub fn all() -> Vec<Rewrite> {
    vec![
        // x * 2^k == x << k  and  2^k * x == x << k, for k >= 0. The constant
        // analysis shows every positive power-of-two literal as `(pow2 k)`.
        rw!("mul-pow2";  "(* ?x (pow2 ?k))"   => "(<< ?x ?k)"        if when(["?k"], |[k]| k >= 0)),
        rw!("pow2-mul";  "(* (pow2 ?k) ?x)"   => "(<< ?x ?k)"        if when(["?k"], |[k]| k >= 0)),
        // (x << a) << b == x << (a + b), for a, b >= 0.
        rw!("shl-shl";   "(<< (<< ?x ?a) ?b)" => "(<< ?x (+ ?a ?b))" if when(["?a", "?b"], |[a, b]| a >= 0 && b >= 0)),
        // x << 0 == x.
        rw!("shl-zero";  "(<< ?x 0)"          => "?x"),
        // x * 1 == x  and  1 * x == x.
        rw!("mul-one";   "(* ?x 1)"           => "?x"),
        rw!("one-mul";   "(* 1 ?x)"           => "?x"),
    ]
}
