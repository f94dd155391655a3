//! `fold-bn`: batch norm at inference is a per-channel affine map, so it
//! folds into the convolution before it; a batch norm after anything else
//! becomes a depthwise 1x1 convolution with the folded values.

use crate::ir::op::{Conv1d, LayerQuant, Op, Padding};
use crate::ir::{Graph, Node, NodeId};
use crate::pass::{ParamStore, Pass, PassContext, RewriteError, Semantics};
use crate::quant::fold::{fold_bn, BnStats};

pub struct FoldBn;

impl Pass for FoldBn {
    fn name(&self) -> &'static str {
        "fold-bn"
    }

    fn summary(&self) -> &'static str {
        "fold inference batch norm into the preceding conv1d (weights too, when given)"
    }

    fn description(&self) -> &'static str {
        "A conv1d whose only user is a batch_norm becomes one conv1d with a\n\
         bias, named after the batch_norm whose value it now computes:\n\
         w' = w*g/sqrt(var+eps), b' = beta + (b-mean)*g/sqrt(var+eps)\n\
         (src/quant/fold.rs, shared with training). A batch_norm after\n\
         anything else becomes a depthwise 1x1 conv1d (groups = channels).\n\
         With a checkpoint the folded parameters replace the old ones (a\n\
         trained weight threshold `w_log2t` moves along); batch norm on\n\
         [features] stays.\n\
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
        fold_all(g, cx, true)
    }
}

/// `fold-lone-bn`: only the batch norms that follow no single-use conv1d.
/// Simulated folding (`--bn fold-sim`) trains with this, keeping each
/// conv/batch-norm pair for the quantizer to see folded weights.
pub struct FoldLoneBn;

impl Pass for FoldLoneBn {
    fn name(&self) -> &'static str {
        "fold-lone-bn"
    }

    fn summary(&self) -> &'static str {
        "turn batch norms that follow no single-use conv1d into depthwise 1x1 conv1d"
    }

    fn description(&self) -> &'static str {
        "As fold-bn, for the batch norms fold-bn cannot merge into a conv1d\n\
         (after a relu, an add, or a conv1d with other users); conv1d/batch_norm\n\
         pairs stay, as simulated folding trains them.\n\
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
        fold_all(g, cx, false)
    }
}

fn fold_all(g: &mut Graph, cx: &mut PassContext<'_>, pairs: bool) -> Result<bool, RewriteError> {
    let bns: Vec<NodeId> =
        g.node_ids().filter(|&n| matches!(g.node(n).op, Op::BatchNorm(_))).collect();
    let mut changed = false;
    for bn in bns {
        changed |= fold_one(g, bn, cx.weights.as_deref_mut(), pairs)?;
    }
    Ok(changed)
}

fn fold_one(
    g: &mut Graph,
    bn: NodeId,
    weights: Option<&mut ParamStore>,
    pairs: bool,
) -> Result<bool, RewriteError> {
    let Op::BatchNorm(bn_op) = g.node(bn).op.clone() else { return Ok(false) };
    let x = g.operands(bn)[0];
    let Some((channels, _)) = g.node(x).ty.sequence() else { return Ok(false) };
    let bn_name = g.node(bn).name.clone();
    let foldable =
        matches!(g.node(x).op, Op::Conv1d(_)) && g.users(x) == [bn] && g.output() != Some(x);
    if foldable && !pairs {
        return Ok(false);
    }
    let (conv, input, old) = if foldable {
        let Op::Conv1d(c) = g.node(x).op.clone() else { unreachable!() };
        (Conv1d { bias: true, ..c }, g.operands(x)[0], Some(x))
    } else {
        let depthwise = Conv1d {
            out_channels: channels,
            kernel: 1,
            stride: 1,
            padding: Padding::Explicit { left: 0, right: 0 },
            dilation: 1,
            groups: channels,
            bias: true,
            quant: LayerQuant::default(),
        };
        (depthwise, x, None)
    };
    if let Some(store) = weights {
        let conv_name = old.map(|o| g.node(o).name.clone());
        fold_weights(store, conv_name, &bn_name, channels, bn_op.eps.0)?;
    }
    // The folded conv computes the batch norm's value, under its name.
    let ty = g.node(bn).ty.clone();
    let temp = g.fresh_name(&format!("{bn_name}.folding"));
    let folded = g.add_node(Node { name: temp, op: Op::Conv1d(conv), ty }, &[input]);
    g.replace_all_uses(bn, folded);
    g.remove_node(bn);
    if let Some(o) = old {
        g.remove_node(o);
    }
    g.rename(folded, bn_name);
    Ok(true)
}

/// Replaces the conv's and the batch norm's parameters by the folded ones.
fn fold_weights(
    store: &mut ParamStore,
    conv: Option<String>,
    bn: &str,
    channels: usize,
    eps: f64,
) -> Result<(), RewriteError> {
    let folded = bn;
    let mut take = |n: String| store.remove(&n).ok_or(RewriteError::MissingParameter(n));
    let (gamma, beta, mean, var) = (
        take(format!("{bn}.gamma"))?,
        take(format!("{bn}.beta"))?,
        take(format!("{bn}.mean"))?,
        take(format!("{bn}.var"))?,
    );
    let ((wshape, w), b) = match &conv {
        Some(c) => (take(format!("{c}.w"))?, store.remove(&format!("{c}.b")).map(|b| b.1)),
        None => ((vec![channels, 1, 1], vec![1.0; channels]), None),
    };
    if let Some(t) = conv.as_ref().and_then(|c| store.remove(&format!("{c}.w_log2t"))) {
        store.insert(format!("{folded}.w_log2t"), t);
    }
    let stats = BnStats { gamma: &gamma.1, beta: &beta.1, mean: &mean.1, var: &var.1, eps };
    let (wf, bf) = fold_bn(&w, b.as_deref(), &stats);
    store.insert(format!("{folded}.w"), (wshape, wf));
    store.insert(format!("{folded}.b"), (vec![channels], bf));
    Ok(())
}
