//! `insert-fake-quant`: the quantized network. Every value the integer
//! program will hold gets a `fake_quant`: the input, and the end of each
//! layer (a MAC layer or a residual add, through its batch norm and ReLU);
//! MAC layers get weight quantization; global average pooling becomes a sum
//! whose `1/L` moves into the next linear layer's weights.

use crate::ir::op::{FakeQuant, LayerQuant, Op};
use crate::ir::{Graph, NodeId};
use crate::pass::{Pass, PassContext, RewriteError, Semantics};
use crate::quant::QuantConfig;

pub struct InsertFakeQuant;

impl Pass for InsertFakeQuant {
    fn name(&self) -> &'static str {
        "insert-fake-quant"
    }

    fn summary(&self) -> &'static str {
        "quantize the input, every layer's output and every MAC layer's weights (--quant, default w8a8)"
    }

    fn description(&self) -> &'static str {
        "Meaning-changing: the model now computes the quantized network.\n\
         - the input gets a signed, full-range `fake_quant` of --input-bits\n\
           (default: a_bits);\n\
         - conv1d and linear get `w_bits` (narrow signed weights; the op's own\n\
           `w_bits` wins over --quant) and `w_per_channel` with --per-channel;\n\
           --pot-weights gives `w_format = pot` to layers setting neither\n\
           `w_bits` nor `w_format`;\n\
         - after each layer's chain (conv1d/linear/add, then batch_norm, relu)\n\
           a `fake_quant` of the layer's `a_bits` (or --quant's), unsigned\n\
           after relu or for an add of two non-negative values; the returned\n\
           value is not quantized (the logits are the last layer's\n\
           accumulators);\n\
         - global_avg_pool becomes global_sum_pool plus a quantizer of its\n\
           `a_bits`, and the linear layer after it gets `input_divisor = L`.\n\
         Max pooling, flatten and dropout move integers unchanged. A graph\n\
         that already holds a fake_quant is refused.\n\
         \n\
         Before:\n\
         \x20 %c = conv1d(%x) {out_channels = 4, kernel = 3} : f32[4, 14]\n\
         \x20 %r = relu(%c) : f32[4, 14]\n\
         \x20 %g = global_avg_pool(%r) : f32[4]\n\
         \x20 %y = linear(%g) {out_features = 2} : f32[2]\n\
         After (w4a8):\n\
         \x20 %x.q = fake_quant(%x) {bits = 8} : f32[1, 16]\n\
         \x20 %c = conv1d(%x.q) {out_channels = 4, kernel = 3, w_bits = 4} : f32[4, 14]\n\
         \x20 %r = relu(%c) : f32[4, 14]\n\
         \x20 %r.q = fake_quant(%r) {bits = 8, signed = false} : f32[4, 14]\n\
         \x20 %g = global_sum_pool(%r.q) : f32[4]\n\
         \x20 %g.q = fake_quant(%g) {bits = 8, signed = false} : f32[4]\n\
         \x20 %y = linear(%g.q) {out_features = 2, w_bits = 4, input_divisor = 14} : f32[2]"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Changing
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        let cfg =
            cx.quant.clone().unwrap_or_else(|| QuantConfig::parse("w8a8").expect("a valid spec"));
        if let Some((_, refusal)) = written_quantizer(g) {
            return Err(refusal);
        }
        let order = g.order().map_err(|_| RewriteError::Cycle)?;
        for &input in g.inputs().to_vec().iter() {
            quantize_after(g, input, cfg.input_bits(), true)?;
        }
        for id in order {
            layer(g, id, &cfg)?;
        }
        Ok(true)
    }
}

/// Quantizes one op's weights and the value that ends its layer.
fn layer(g: &mut Graph, id: NodeId, cfg: &QuantConfig) -> Result<(), RewriteError> {
    let name = g.node(id).name.clone();
    let a_bits = match &mut g.node_mut(id).op {
        Op::Conv1d(c) => weights(&mut c.quant, cfg, &name)?,
        Op::Linear(l) => weights(&mut l.quant, cfg, &name)?,
        Op::Add(q) => q.a_bits,
        Op::GlobalAvgPool(q) => {
            let bits = q.a_bits.unwrap_or(cfg.a_bits);
            return sum_pool(g, id, bits);
        }
        Op::AvgPool1d(_) => {
            let reason = "avg_pool1d has no integer form; use max_pool1d, or global_avg_pool before a linear layer";
            return Err(RewriteError::Unsupported { node: name, reason: reason.into() });
        }
        _ => return Ok(()),
    };
    let (end, relu) = chain_end(g, id);
    if g.output() == Some(end) {
        return Ok(());
    }
    let unsigned = relu || (end == id && sums_non_negatives(g, id));
    quantize_after(g, end, a_bits.unwrap_or(cfg.a_bits), !unsigned)
}

/// The first `fake_quant` already in the graph, and why it is refused: this
/// pass places every quantizer, so one written by hand would be quantized
/// again or stand where the integer program has no place for it; the
/// attributes say what a user means instead.
pub fn written_quantizer(g: &Graph) -> Option<(NodeId, RewriteError)> {
    let id = g.node_ids().find(|&n| matches!(g.node(n).op, Op::FakeQuant(_)))?;
    let reason = "a fake_quant in the model text; potc places every quantizer itself: remove it \
                  and set `a_bits` / `w_bits` on the layers (`--input-bits` for the input)";
    Some((id, RewriteError::Unsupported { node: g.node(id).name.clone(), reason: reason.into() }))
}

/// Whether `id` is an `add` of two values that are never negative: then so is
/// the sum, and its quantizer spends the sign bit on range instead.
fn sums_non_negatives(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(id).op, Op::Add(_)) && g.operands(id).iter().all(|&x| non_negative(g, x))
}

/// Sets a MAC layer's weight quantization from `--quant` where the layer does
/// not say; the layer's activation bits.
fn weights(
    q: &mut LayerQuant,
    cfg: &QuantConfig,
    name: &str,
) -> Result<Option<usize>, RewriteError> {
    // A layer that sets its own weight bits or format keeps them: the shift
    // formats take at most 5 or 6 bits, so `w_bits = 8` under --pot-weights
    // means integers.
    let format = cfg.weight_format();
    if format.shifts() && q.w_format.is_none() && q.w_bits.is_none() {
        q.w_format = Some(format.name());
    }
    q.w_bits = q.w_bits.or(Some(cfg.w_bits));
    q.w_per_channel |= cfg.per_channel;
    let (format, max) = (q.format(), q.format().max_bits());
    if q.w_bits.is_some_and(|b| b > max) {
        let reason =
            format!("`{format}` weights take 2..={max} bits, not {}", q.w_bits.unwrap_or(0));
        return Err(RewriteError::Unsupported { node: name.into(), reason });
    }
    Ok(q.a_bits)
}

/// Follows a layer through the batch norm and ReLU that complete it; whether
/// it ends in a ReLU (then its values are unsigned).
fn chain_end(g: &Graph, mut id: NodeId) -> (NodeId, bool) {
    let mut relu = false;
    loop {
        let users = g.users(id);
        match users.as_slice() {
            [u] if g.output() != Some(id) && matches!(g.node(*u).op, Op::BatchNorm(_)) && !relu => {
                id = *u
            }
            [u] if g.output() != Some(id) && g.node(*u).op == Op::Relu => {
                id = *u;
                relu = true;
            }
            _ => return (id, relu),
        }
    }
}

/// Inserts `%<v>.q = fake_quant(%v)` and makes every user of `v` (and the
/// output, if it is `v`) read it.
fn quantize_after(g: &mut Graph, v: NodeId, bits: usize, signed: bool) -> Result<(), RewriteError> {
    let op = Op::FakeQuant(FakeQuant { bits, signed, narrow: false });
    let q = g.add_op(&format!("{}.q", g.node(v).name), op, &[v])?;
    g.replace_all_uses(v, q);
    g.retarget_operand(q, 0, v); // replace_all_uses moved q's own operand too
    Ok(())
}

/// `global_avg_pool` -> `global_sum_pool` + quantizer; `1/L` into the linear after.
fn sum_pool(g: &mut Graph, id: NodeId, bits: usize) -> Result<(), RewriteError> {
    let name = g.node(id).name.clone();
    let x = g.operands(id)[0];
    let (_, length) = g.node(x).ty.sequence().expect("global_avg_pool types a sequence");
    let users = g.users(id);
    let next = match users.as_slice() {
        [u] if matches!(g.node(*u).op, Op::Linear(_)) => *u,
        _ => {
            let reason = format!(
                "global_avg_pool must feed one linear layer, which absorbs its 1/{length} \
                 (run canonicalize first to remove dropout)"
            );
            return Err(RewriteError::Unsupported { node: name, reason });
        }
    };
    g.node_mut(id).op = Op::GlobalSumPool;
    if let Op::Linear(l) = &mut g.node_mut(next).op {
        l.input_divisor = Some(length);
    }
    quantize_after(g, id, bits, !non_negative(g, x))
}

/// Whether a value is never negative: a ReLU or an unsigned quantizer, seen
/// through ops that move values unchanged.
fn non_negative(g: &Graph, mut x: NodeId) -> bool {
    loop {
        match &g.node(x).op {
            op if op.meaning().never_negative => return true,
            Op::FakeQuant(q) => return !q.signed,
            op if op.meaning().moves_values => x = g.operands(x)[0],
            _ => return false,
        }
    }
}
