//! Calibration: thresholds before QAT trains them (or keeps them, with
//! `--scales max`). With power-of-two scales a tensor has only a handful of
//! sensible exponents, so each quantizer tries the one that covers its
//! largest magnitude and the three below it, and keeps the one with the
//! least squared quantization error (a tie: the larger). A single outlier
//! (a huge weight, a rare activation spike) then costs one clipped value
//! instead of coarse steps for all the others; at 8 bits the error usually
//! picks the maximum's exponent anyway. Activations are observed on the
//! float network (quantizers and weight quantization off); weights are seen
//! per tensor or per output channel, after the folded `1/L`.

use crate::data::batch;
use crate::data::Dataset;
use crate::interp::plan::Plan;
use crate::interp::{forward, Mode, Observed, Weights};
use crate::ir::op::Op;
use crate::quant::fold::fold_bn;
use crate::quant::kernels::weight_spec;
use crate::quant::quantizer::{fake_quant, WeightQuantizer};
use crate::quant::QuantSpec;

/// Exponents tried below the one that covers the largest magnitude.
const CANDIDATES_BELOW: i32 = 3;

/// Sets every `log2t` of `plan` from `ds` (activations) and the weights.
/// Activations take the exponent of least squared error over the observed
/// values, or with `percentile` cover that percentile of the magnitudes;
/// the network input covers its maximum.
pub fn calibrate(
    plan: &Plan,
    w: &mut Weights,
    ds: &Dataset,
    percentile: Option<f64>,
    threads: usize,
) {
    let n = plan.params.len();
    let mut seen = Observed { max: vec![0.0; n], samples: Some(vec![Vec::new(); n]) };
    let all: Vec<usize> = (0..ds.n).collect();
    for chunk in all.chunks(plan.batch_within(64)) {
        let mut wc = w.clone();
        let x = batch(ds, chunk);
        forward(plan, &mut wc, x, chunk.len(), Mode::Calibrate(&mut seen), threads);
    }
    for s in &plan.steps {
        match &s.op {
            Op::FakeQuant(fq) => {
                let p = s.params[0];
                let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
                let values = seen.samples.as_mut().map(|v| &mut v[p][..]).unwrap_or_default();
                w[p] = if s.args[0] == plan.input {
                    // The network input covers its maximum: data the network
                    // has not seen may reach further, and the input's
                    // clipping was measured to be the first to bite there.
                    vec![QuantSpec::calibrate(seen.max[p])]
                } else {
                    vec![activation_threshold(values, seen.max[p], &spec, percentile)]
                };
            }
            Op::Conv1d(c) if c.quant.w_bits.is_some() => {
                let t = *s.params.last().expect("w_log2t is the last parameter");
                let spec = weight_spec(c.quant.w_bits.unwrap_or(8), c.quant.format());
                // Under simulated folding the quantizer sees the folded weights.
                let weights = match s.fold {
                    Some(f) => {
                        let stats = f.stats(w);
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
                let spec = weight_spec(l.quant.w_bits.unwrap_or(8), l.quant.format());
                w[t] = weight_thresholds(&w[s.params[0]], l.out_features, w[t].len(), div, &spec);
            }
            _ => {}
        }
    }
}

/// An activation quantizer's `log2 t`: covering the `percentile` of the
/// magnitudes if asked, else the exponent of least squared error over the
/// observed values (mid-way between integers, so `ceil` is unambiguous).
fn activation_threshold(
    values: &mut [f32],
    max: f32,
    spec: &QuantSpec,
    percentile: Option<f64>,
) -> f32 {
    if let Some(pc) = percentile {
        let mut magnitudes: Vec<f32> = values.iter().map(|v| v.abs()).collect();
        return QuantSpec::calibrate(percentile_of(&mut magnitudes, pc));
    }
    let top = spec.exponent(QuantSpec::calibrate(max));
    let e = least_squares_exponent(top, |e| {
        values.iter().map(|&x| (x - fake_quant(x, e, spec)) as f64).map(|d| d * d).sum()
    });
    spec.log2t_for(e)
}

/// Of `top` and the exponents just below it, the one with the least
/// `error` (a tie: the larger).
fn least_squares_exponent(top: i32, error: impl Fn(i32) -> f64) -> i32 {
    let errors: Vec<(i32, f64)> =
        (top - CANDIDATES_BELOW..=top).rev().map(|e| (e, error(e))).collect();
    errors.iter().fold(errors[0], |best, &c| if c.1 < best.1 { c } else { best }).0
}

/// The `pc`-th percentile (0..=100) of `v`, reordering it.
fn percentile_of(v: &mut [f32], pc: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((pc / 100.0) * (v.len() - 1) as f64).round() as usize;
    let k = k.min(v.len() - 1);
    *v.select_nth_unstable_by(k, f32::total_cmp).1
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
    let best = least_squares_exponent(top, |e| spec.squared_error(w, div, e));
    spec.log2t_for(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_value() {
        let mut v: Vec<f32> = (0..=100).rev().map(|i| i as f32).collect();
        assert_eq!(percentile_of(&mut v, 100.0), 100.0);
        assert_eq!(percentile_of(&mut v, 50.0), 50.0);
        assert_eq!(percentile_of(&mut v, 99.0), 99.0);
        assert_eq!(percentile_of(&mut [], 99.0), 0.0);
    }

    #[test]
    fn least_squares_prefers_clipping_an_outlier_at_low_bits() {
        // 3-bit weights (levels ±3): one outlier at 8 among many near 1.
        let mut w = vec![1.0f32; 200];
        w.push(8.0);
        let spec = WeightQuantizer { bits: 3, format: crate::quant::WeightFormat::Int };
        let by_max = spec.exponent(QuantSpec::calibrate(8.0));
        let chosen = spec.exponent(least_squares_threshold(&w, 1.0, &spec));
        assert!(chosen < by_max, "{chosen} vs {by_max}");
    }
}
