//! The language of a network graph for equality saturation: layers whose
//! parameters are symbolic expressions, so a rule can move a batch norm into
//! a layer by rewriting that layer's parameters instead of computing them.
//!
//! Every layer node names the IR node it stems from with a key leaf (its
//! first child): the key carries the attributes (kernel, quantization, ...)
//! that the rules never change. Parameter expressions (`fold-w`, ...) are
//! evaluated once, after extraction, by the functions training uses
//! (`crate::quant::fold`), so both compute the same floats.

use egg::{define_language, Id, Symbol};

define_language! {
    /// One node of the network's e-graph.
    pub enum Net {
        // (conv key x w b): conv1d with the key's attributes.
        "conv" = Conv([Id; 4]),
        // (linear key x w b).
        "linear" = Linear([Id; 4]),
        // (depthwise key x w b): the 1x1 depthwise conv1d a batch norm becomes
        // when no layer takes it; the key is the batch norm's.
        "depthwise" = Depthwise([Id; 4]),
        // (bn key x): inference batch norm over the channels of a sequence
        // `[C, L]`, with the key's statistics.
        "bn" = Bn([Id; 2]),
        // (bn-features key x): the same over features `[F]`.
        "bn-features" = BnFeatures([Id; 2]),
        // (add key a b).
        "add" = Add([Id; 3]),
        // (gap key x): mean over time.
        "gap" = Gap([Id; 2]),
        // (relu key x), on floats or integers.
        "relu" = Relu([Id; 2]),
        // (requant key x): the rounding shift and clamp of an integer
        // program, with the key's output type and the key's shifts.
        "requant" = Requant([Id; 2]),
        // (op key operands...): any other op, kept as it is.
        "op" = Op(Vec<Id>),
        // (share x): a value with several users, or the model's output. Rules
        // never match through it: folding into a shared layer would change
        // what its other users read.
        "share" = Share(Id),
        // Parameter expressions. A symbol leaf names a parameter (`c1.w`) or
        // a key (`c1`); `zero` is an absent bias, `ones` the unit weight of
        // a depthwise conv.
        "zero" = Zero,
        "ones" = Ones,
        // (fold-w w bn): w[o, ..] * s[o], s = gamma / sqrt(var + eps).
        "fold-w" = FoldW([Id; 2]),
        // (fold-b b bn): beta[o] + (b[o] - mean[o]) * s[o].
        "fold-b" = FoldB([Id; 2]),
        // (scale-b b bn): b[o] * s[o] (the second branch of a folded add).
        "scale-b" = ScaleB([Id; 2]),
        // (in-scale-w w bn): w[o, f] * s[f] (batch norm on a linear's input).
        "in-scale-w" = InScaleW([Id; 2]),
        // (in-shift-b w b bn): b[o] + sum_f w[o, f] * (beta[f] - mean[f] * s[f]).
        "in-shift-b" = InShiftB([Id; 3]),
        Symbol(Symbol),
    }
}

/// The e-graph of [`Net`]; no analysis (every condition reads the nodes).
pub type NetGraph = egg::EGraph<Net, ()>;

/// A rewrite over [`Net`].
pub type NetRewrite = egg::Rewrite<Net, ()>;
