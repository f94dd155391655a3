//! Batch-norm folding on the network graph ([`crate::eqsat::net`]).
//!
//! Inference batch norm is `y = x * s + t` per channel, `s = gamma /
//! sqrt(var + eps)`, `t = beta - mean * s`. Each rule moves `s` and `t` into
//! a layer's symbolic parameters (`fold-w`, `fold-b`, ... evaluated after
//! extraction by `crate::quant::fold`), so extraction can pick the form with
//! no batch norm left.
//!
//! Pattern variables: `?k` a batch norm's key, `?c`, `?l`, `?a`, `?g` the keys
//! of a conv, linear, add and pooling; `?x`, `?y`, `?f` values; `?w`, `?b`
//! parameter expressions.

use egg::{rewrite as rw, Id, Subst, Var};

use crate::eqsat::net::{Net, NetGraph, NetRewrite};

/// Which batch norms the rules fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Every batch norm that some rule can remove (inference, lowering).
    All,
    /// All but those right after a conv1d (a "pair"), which simulated
    /// folding trains with their statistics live.
    KeepPairs,
}

/// The folding rules for `fold`.
#[rustfmt::skip]
pub fn all(fold: Fold) -> Vec<NetRewrite> {
    let lone = move |x: &str| reads_no_conv(x, fold == Fold::KeepPairs);
    let mut rules = vec![
        // bn(linear(x)) == linear(x) with w*s and (b - mean)*s + beta.
        rw!("fold-into-linear"; "(bn-features ?k (linear ?l ?x ?w ?b))"
            => "(linear ?l ?x (fold-w ?w ?k) (fold-b ?b ?k))"),
        // bn(conv1(x) + conv2(y)) == conv1(x)*s + t + conv2(y)*s: the first
        // branch takes scale and shift, the second the scale only.
        rw!("fold-into-both-branches"; "(bn ?k (add ?a (conv ?c1 ?x ?w1 ?b1) (conv ?c2 ?y ?w2 ?b2)))"
            => "(add ?a (conv ?c1 ?x (fold-w ?w1 ?k) (fold-b ?b1 ?k)) (conv ?c2 ?y (fold-w ?w2 ?k) (scale-b ?b2 ?k)))"),
        // mean_t(x*s + t) == mean_t(x)*s + t: a per-channel affine map
        // commutes with the mean over time.
        rw!("bn-through-gap"; "(gap ?g (bn ?k ?x))" => "(bn-features ?k (gap ?g ?x))" if lone("?x")),
        // linear(x*s + t) == linear(x) with w[o, f]*s[f] and b + w t.
        rw!("fold-into-next-linear"; "(linear ?l (bn-features ?k ?f) ?w ?b)"
            => "(linear ?l ?f (in-scale-w ?w ?k) (in-shift-b ?w ?b ?k))"),
        // bn(x) == depthwise 1x1 conv1d(x) with weight s and bias t.
        rw!("bn-to-depthwise"; "(bn ?k ?x)" => "(depthwise ?k ?x (fold-w ones ?k) (fold-b zero ?k))" if lone("?x")),
    ];
    if fold == Fold::All {
        // bn(conv(x)) == conv(x) with w*s and (b - mean)*s + beta.
        rules.push(rw!("fold-into-conv"; "(bn ?k (conv ?c ?x ?w ?b))"
            => "(conv ?c ?x (fold-w ?w ?k) (fold-b ?b ?k))"));
    }
    rules
}

/// A condition: `var`'s class holds no conv1d node, when `required`.
fn reads_no_conv(var: &str, required: bool) -> impl Fn(&mut NetGraph, Id, &Subst) -> bool {
    let var: Var = var.parse().expect("a pattern variable");
    move |egraph, _, subst| {
        !required || !egraph[subst[var]].nodes.iter().any(|n| matches!(n, Net::Conv(_)))
    }
}
