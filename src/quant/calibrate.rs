//! Calibration: thresholds from the largest magnitudes, before QAT trains
//! them (or keeps them, with `--scales max`). Activations are observed on
//! the float network (quantizers and weight quantization off) and covered by
//! their maximum; weights (per tensor or per output channel, after the folded
//! `1/L`) take the exponent, among the maximum's and the three below it, with
//! the least squared error: at 2 to 4 bits clipping a few large weights beats
//! coarse steps for all of them.

use crate::data::Dataset;
use crate::interp::kernels::quant::weight_spec;
use crate::interp::plan::Plan;
use crate::interp::{forward, Mode, Weights};
use crate::ir::op::Op;
use crate::quant::fold::{fold_bn, BnStats};
use crate::quant::quantizer::WeightQuantizer;
use crate::quant::QuantSpec;
use crate::train::fit::batch;

/// Sets every `log2t` of `plan` from `ds` (activations) and the weights.
pub fn calibrate(plan: &Plan, w: &mut Weights, ds: &Dataset, threads: usize) {
    let mut maxima = vec![0.0f32; plan.params.len()];
    let all: Vec<usize> = (0..ds.n).collect();
    for chunk in all.chunks(64) {
        let mut wc = w.clone();
        forward(
            plan,
            &mut wc,
            batch(ds, chunk),
            chunk.len(),
            Mode::Calibrate(&mut maxima),
            threads,
        );
    }
    for s in &plan.steps {
        match &s.op {
            Op::FakeQuant(_) => w[s.params[0]] = vec![QuantSpec::calibrate(maxima[s.params[0]])],
            Op::Conv1d(c) if c.quant.w_bits.is_some() => {
                let t = *s.params.last().expect("w_log2t is the last parameter");
                let spec = weight_spec(c.quant.w_bits.unwrap_or(8), c.quant.pot());
                // Under simulated folding the quantizer sees the folded weights.
                let weights = match s.fold {
                    Some(f) => {
                        let stats = BnStats {
                            gamma: &w[f.gamma],
                            beta: &w[f.beta],
                            mean: &w[f.mean],
                            var: &w[f.var],
                            eps: f.eps,
                        };
                        let b = c.bias.then(|| w[s.params[1]].as_slice());
                        fold_bn(&w[s.params[0]], b, &stats).0
                    }
                    None => w[s.params[0]].clone(),
                };
                w[t] = weight_thresholds(&weights, c.out_channels, w[t].len(), 1.0, &spec);
            }
            Op::Linear(l) if l.quant.w_bits.is_some() => {
                let t = *s.params.last().expect("w_log2t is the last parameter");
                let div = l.input_divisor.unwrap_or(1) as f32;
                let spec = weight_spec(l.quant.w_bits.unwrap_or(8), l.quant.pot());
                w[t] = weight_thresholds(&w[s.params[0]], l.out_features, w[t].len(), div, &spec);
            }
            _ => {}
        }
    }
}

/// Thresholds per output channel (`n == rows`) or for the tensor.
fn weight_thresholds(
    w: &[f32],
    rows: usize,
    n: usize,
    div: f32,
    spec: &WeightQuantizer,
) -> Vec<f32> {
    if n == rows {
        w.chunks(w.len() / rows).map(|r| least_squares_threshold(r, div, spec)).collect()
    } else {
        vec![least_squares_threshold(w, div, spec)]
    }
}

/// The `log2 t` (mid-way between integers, so `ceil` is unambiguous) of the
/// exponent with the least squared quantization error of `w / div`.
fn least_squares_threshold(w: &[f32], div: f32, spec: &WeightQuantizer) -> f32 {
    let max = w.iter().fold(0.0f32, |m, x| m.max((x / div).abs()));
    let top = spec.exponent(QuantSpec::calibrate(max));
    let error = |e: i32| -> f64 {
        w.iter().map(|&x| (x / div - spec.fq(x / div, e)) as f64).map(|d| d * d).sum()
    };
    let best = (top - 3..=top).rev().min_by(|&a, &b| error(a).total_cmp(&error(b))).unwrap_or(top);
    spec.log2t_for(best)
}
