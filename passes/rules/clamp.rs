//! Clamps: ReLU and stacked range limits fold into one requantization clamp.
//!
//! Pattern variables: `?x` any expression; `?lo`, `?hi`, `?lo1`, ... bounds,
//! which every condition requires to be known constants.

use egg::rewrite as rw;

use crate::eqsat::{when, Rewrite};

/// The clamp identities.
#[rustfmt::skip]
pub fn all() -> Vec<Rewrite> {
    vec![
        // max(clamp(x, lo, hi), 0) == clamp(x, max(lo, 0), hi), for lo <= hi
        // and hi >= 0: ReLU is the requantization clamp with qmin = 0.
        rw!("relu-into-clamp";   "(max (clamp ?x ?lo ?hi) 0)" => "(clamp ?x (max ?lo 0) ?hi)" if when(["?lo", "?hi"], |[lo, hi]| lo <= hi && hi >= 0)),
        rw!("relu-into-clamp-l"; "(max 0 (clamp ?x ?lo ?hi))" => "(clamp ?x (max ?lo 0) ?hi)" if when(["?lo", "?hi"], |[lo, hi]| lo <= hi && hi >= 0)),
        // clamp(max(x, 0), lo, hi) == clamp(x, max(lo, 0), hi): a ReLU before
        // the clamp raises its lower bound (min(max(max(x, 0), lo), hi)).
        rw!("clamp-of-relu";     "(clamp (max ?x 0) ?lo ?hi)" => "(clamp ?x (max ?lo 0) ?hi)"),
        // clamp(clamp(x, lo1, hi1), lo2, hi2) == clamp(x, max(lo1, lo2), min(hi1, hi2)),
        // for lo1 <= hi1, lo2 <= hi2 and overlapping ranges.
        rw!("clamp-clamp";
            "(clamp (clamp ?x ?lo1 ?hi1) ?lo2 ?hi2)" => "(clamp ?x (max ?lo1 ?lo2) (min ?hi1 ?hi2))"
            if when(["?lo1", "?hi1", "?lo2", "?hi2"], |[lo1, hi1, lo2, hi2]| {
                lo1 <= hi1 && lo2 <= hi2 && lo1.max(lo2) <= hi1.min(hi2)
            })),
    ]
}
