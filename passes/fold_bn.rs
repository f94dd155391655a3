//! `fold-bn` and `fold-lone-bn`: batch norm at inference is a per-channel
//! affine map, folded into the layers around it by equality saturation over
//! the network graph ([`crate::eqsat::net`], rules in
//! `passes/rules/batch_norm.rs`). Extraction picks the form with no batch
//! norm left where one exists, and the fewest, cheapest layers.

use crate::eqsat::net::{rewrite, NetLimits};
use crate::ir::Graph;
use crate::pass::{Pass, PassContext, RewriteError, Semantics};
use crate::passes::rules::batch_norm::{self, Fold};

pub struct FoldBn;

impl Pass for FoldBn {
    fn name(&self) -> &'static str {
        "fold-bn"
    }

    fn summary(&self) -> &'static str {
        "fold inference batch norm into the layers around it, by equality saturation"
    }

    fn description(&self) -> &'static str {
        "Saturates the graph with the batch-norm rules and extracts the form\n\
         with no batch_norm left where one exists (cost: batch norm 1000, conv1d\n\
         or linear 10, depthwise 1x1 conv1d 4, other ops 1):\n\
         - into the conv1d or linear before it (its only user):\n\
           w' = w*s, b' = beta + (b-mean)*s, s = g/sqrt(var+eps);\n\
         - after an add of two single-use conv1d, into both: the first takes\n\
           scale and shift, the second the scale (b' = b*s);\n\
         - through a global average pool, into the linear after it:\n\
           w'[o,f] = w[o,f]*s[f], b' = b + w (beta - mean*s);\n\
         - else, on a sequence, a depthwise 1x1 conv1d (groups = channels).\n\
         Folded parameters are computed once, after extraction, by the\n\
         functions training uses (src/quant/fold.rs); a trained weight\n\
         threshold `w_log2t` moves along. The notes give the e-graph's size,\n\
         the iterations, why it stopped and each layer it made.\n\
         \n\
         Before:\n\
         \x20 %c1 = conv1d(%x) {out_channels = 8, kernel = 3, bias = false} : f32[8, 30]\n\
         \x20 %b1 = batch_norm(%c1) : f32[8, 30]\n\
         \x20 return %b1\n\
         After:\n\
         \x20 %b1 = conv1d(%x) {out_channels = 8, kernel = 3} : f32[8, 30]\n\
         \x20 return %b1"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Preserving
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        fold_all(g, cx, Fold::All)
    }
}

/// `fold-lone-bn`: as `fold-bn`, except for the batch norms right after a
/// single-use conv1d. Simulated folding (`--bn fold-sim`) trains with this,
/// keeping each conv/batch-norm pair for the quantizer to see folded weights.
pub struct FoldLoneBn;

impl Pass for FoldLoneBn {
    fn name(&self) -> &'static str {
        "fold-lone-bn"
    }

    fn summary(&self) -> &'static str {
        "fold-bn, keeping each batch norm that follows a single-use conv1d"
    }

    fn description(&self) -> &'static str {
        "The rules of fold-bn without folding into the conv1d before a batch\n\
         norm: those conv1d/batch_norm pairs stay, as simulated folding\n\
         trains them; every other batch norm folds as in fold-bn.\n\
         \n\
         Before:\n\
         \x20 %r = relu(%x) : f32[3, 8]\n\
         \x20 %b = batch_norm(%r) : f32[3, 8]\n\
         After:\n\
         \x20 %r = relu(%x) : f32[3, 8]\n\
         \x20 %b = conv1d(%r) {out_channels = 3, kernel = 1, groups = 3} : f32[3, 8]"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Preserving
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        fold_all(g, cx, Fold::KeepPairs)
    }
}

fn fold_all(g: &mut Graph, cx: &mut PassContext<'_>, fold: Fold) -> Result<bool, RewriteError> {
    let report =
        rewrite(g, cx.weights.as_deref_mut(), &batch_norm::all(fold), NetLimits::default())?;
    cx.notes.extend(report.lines());
    Ok(report.changed)
}
