//! The accumulator analysis of a fake-quant model (spec section 7): each
//! quantized MAC layer's weights and bias as the integers lowering would
//! make, bounded by `quant::accum`, for `potc eval --mode fake-quant`
//! (`accumulator_bits`).

use crate::interp::mac;
use crate::interp::plan::{Plan, Step};
use crate::interp::Weights;
use crate::ir::op::Op;
use crate::quant::accum::{int_channel_bounds, signed_bits};
use crate::quant::quantizer::pow2;
use crate::quant::QuantSpec;

/// The bound of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBound {
    pub layer: String,
    /// Per output channel: the largest `|acc|` any input can produce.
    pub max_abs: Vec<u64>,
    /// Signed bits for the largest channel.
    pub bits: u32,
}

/// Every quantized MAC layer whose input is quantized, in program order.
pub fn analyse(plan: &Plan, w: &Weights) -> Vec<LayerBound> {
    plan.steps.iter().filter_map(|s| layer(plan, w, s)).collect()
}

fn layer(plan: &Plan, w: &Weights, s: &Step) -> Option<LayerBound> {
    let (q, bias, rows, div) = match &s.op {
        Op::Conv1d(c) => (&c.quant, c.bias, c.out_channels, 1),
        Op::Linear(l) => (&l.quant, l.bias, l.out_features, l.input_divisor.unwrap_or(1)),
        _ => return None,
    };
    q.w_bits?;
    let (spec, ex) = input_quantizer(plan, w, s.args[0])?;
    let p = mac::params(w, &mac::slots(s, bias, q), q, rows, div, Some(ex));
    let exps = p.wexps.as_ref()?;
    let x_max = spec.qmin().unsigned_abs().max(spec.qmax().unsigned_abs()) as u128;
    let per = p.w.len() / rows;
    let ew = |r: usize| if exps.len() == 1 { exps[0] } else { exps[r] };
    // Weights and bias are integers times 2^ew and 2^(ew+ex): exact in f64.
    let wint: Vec<i32> =
        p.w.iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 / pow2(ew(i / per)) as f64) as i32)
            .collect();
    let bint: Option<Vec<i32>> = p.b.as_ref().map(|b| {
        b.iter().enumerate().map(|(r, &v)| (v as f64 / pow2(ew(r) + ex) as f64) as i32).collect()
    });
    let max_abs: Vec<u64> = int_channel_bounds(&wint, bint.as_deref(), rows, x_max)
        .into_iter()
        .map(|b| u64::try_from(b).unwrap_or(u64::MAX))
        .collect();
    let worst = max_abs.iter().copied().max().unwrap_or(0);
    Some(LayerBound { layer: s.name.clone(), bits: signed_bits(worst), max_abs })
}

/// The quantizer (and its exponent) behind a slot, through ops that move
/// integers unchanged.
fn input_quantizer(plan: &Plan, w: &Weights, mut slot: usize) -> Option<(QuantSpec, i32)> {
    loop {
        let s = plan.steps.iter().find(|s| s.out == slot)?;
        match &s.op {
            Op::FakeQuant(fq) => {
                let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
                return Some((spec, spec.exponent(w[s.params[0]][0])));
            }
            op if op.meaning().moves_values => slot = s.args[0],
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax;

    #[test]
    fn bounds_follow_weights_inputs_and_bias() {
        let src = "model m(%x: [1, 8]) {\n  %x.q = fake_quant(%x) {bits = 8}\n  \
                   %c = conv1d(%x.q) {out_channels = 2, kernel = 3, w_bits = 4}\n  return %c\n}\n";
        let plan = Plan::new(&syntax::parse(src).unwrap()).unwrap();
        let mut w: Weights = vec![vec![]; plan.params.len()];
        let set = |w: &mut Weights, name: &str, v: Vec<f32>| w[plan.param_index(name).unwrap()] = v;
        set(&mut w, "x.q.log2t", vec![0.0]); // e_x = -7, |q(x)| <= 128
        set(&mut w, "c.w_log2t", vec![1.5]); // e_w = 2 - 3 = -1
        set(&mut w, "c.w", vec![1.0, 2.0, 3.0, -1.0, 0.0, 0.5]); // q(w) = 2, 4, 6 | -2, 0, 1
        set(&mut w, "c.b", vec![0.5, -0.25]); // on 2^-8: 128, -64
        let b = analyse(&plan, &w);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].max_abs, vec![12 * 128 + 128, 3 * 128 + 64]);
        assert_eq!(b[0].bits, 12); // 1664 < 2^11
    }
}
