//! How each quantized MAC layer's weights fall on their grid, as the weight
//! quantizer sees them: batch norm folded (the inference plan) and divided
//! by the `1/L` of a folded average.

use super::grid::{median, GridUse};
use super::{Kind, QuantizerUse};
use crate::interp::mac;
use crate::interp::plan::{Plan, Step};
use crate::interp::Weights;
use crate::ir::op::Op;
use crate::quant::kernels::{quantize_weights, weight_spec};
use crate::quant::quantizer::pow2;

/// Every quantized conv1d and linear layer of an inference plan.
pub fn weight_use(plan: &Plan, w: &Weights) -> Vec<QuantizerUse> {
    plan.steps.iter().filter_map(|s| layer(s, w)).collect()
}

fn layer(s: &Step, w: &Weights) -> Option<QuantizerUse> {
    let (q, bias, rows, div) = match &s.op {
        Op::Conv1d(c) => (&c.quant, c.bias, c.out_channels, 1),
        Op::Linear(l) => (&l.quant, l.bias, l.out_features, l.input_divisor.unwrap_or(1)),
        _ => return None,
    };
    let bits = q.w_bits?;
    let sl = mac::slots(s, bias, q);
    let (raw, log2t) = (w.get(sl.w)?, w.get(sl.log2t?)?);
    let spec = weight_spec(bits, q.format());
    if rows == 0 || raw.is_empty() || raw.len() % rows != 0 || log2t.is_empty() {
        return None;
    }
    let div = div as f32;
    // The weight quantizer itself gives the levels and exponents.
    let qw = quantize_weights(raw, rows, div, log2t, &spec);
    let per_row = raw.len() / rows;
    let group_of = |r: usize| if qw.exps.len() == 1 { 0 } else { r };
    let top = spec.qmax() as i64;
    // Narrow signed integers and power-of-two codes alike: 2^b - 1 levels.
    let available = (1u64 << bits.min(63)) - 1;
    let mut groups = vec![GridUse::new(-top, top, available); qw.exps.len()];
    let (mut err, mut err_wider) = (0.0, [0.0; super::WIDER_STEPS]);
    for (r, (row, qrow)) in raw.chunks(per_row).zip(qw.values.chunks(per_row)).enumerate() {
        let e = qw.exps[group_of(r)];
        for (&v, &fq) in row.iter().zip(qrow) {
            // fq / 2^e is the integer (or power-of-two code): exact.
            groups[group_of(r)].add((fq / pow2(e)) as i64, !spec.in_range(v / div, e));
        }
        err += spec.squared_error(row, div, e);
        for (k, wider) in err_wider.iter_mut().enumerate() {
            *wider += spec.squared_error(row, div, e + 1 + k as i32);
        }
    }
    let e_max = qw.exps.iter().copied().max().unwrap_or(0);
    Some(QuantizerUse {
        name: s.name.clone(),
        kind: Kind::Weights { per_channel: qw.exps.len() > 1 && rows > 1 },
        bits: bits as u32,
        values: groups.iter().map(|g| g.values).sum(),
        clipped: groups.iter().map(|g| g.clipped).sum(),
        levels_used: median(groups.iter().map(GridUse::used).collect()),
        levels: available,
        group_values: (raw.len() / groups.len()) as u64,
        limit: spec.qmax() as f64 * pow2(e_max) as f64,
        wider_is_better: super::wider_is_better(err, &err_wider),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax;

    #[test]
    fn clipped_weights_and_levels_by_hand() {
        let src = "model m(%x: [1, 8]) {\n  %x.q = fake_quant(%x) {bits = 8}\n  \
                   %c = conv1d(%x.q) {out_channels = 2, kernel = 3, w_bits = 4}\n  return %c\n}\n";
        let plan = Plan::new(&syntax::parse(src).unwrap()).unwrap();
        let mut w: Weights = vec![vec![0.0]; plan.params.len()];
        let set = |w: &mut Weights, name: &str, v: Vec<f32>| w[plan.param_index(name).unwrap()] = v;
        set(&mut w, "c.w_log2t", vec![1.5]); // e = 2 - 3 = -1: levels ±7 * 0.5, up to 3.5
        set(&mut w, "c.w", vec![1.0, 2.0, 3.0, -1.0, 0.0, 5.0]); // 2, 4, 6 | -2, 0, 7 (5 clipped)
        set(&mut w, "c.b", vec![0.0, 0.0]);
        let u = weight_use(&plan, &w);
        assert_eq!(u.len(), 1);
        let u = &u[0];
        assert_eq!((u.name.as_str(), u.values, u.clipped), ("c", 6, 1));
        assert_eq!((u.levels_used, u.levels, u.group_values, u.limit), (6, 15, 6, 3.5));
        // On e = 0 every weight is exact: the wider range has less error.
        assert!(u.wider_is_better);
        assert_eq!(u.kind, Kind::Weights { per_channel: false });
    }
}
