//! Fake quantization in training: activations (`fake_quant` ops), weights
//! and biases of quantized MAC layers, with the straight-through estimator
//! for values and TQT's gradient for the thresholds (`log2 t`). f32 kernels
//! beside the scalar definitions of `quantizer`: the float interpreter trains
//! with them, and `lower-int` quantizes the weights it makes integers from
//! with the same [`quantize_weights`].

use crate::quant::format::WeightFormat;
use crate::quant::quantizer::{pow2, quantize64, quantize_f32, QuantSpec, WeightQuantizer};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

pub fn forward(x: &[f32], e: i32, spec: &QuantSpec) -> Vec<f32> {
    let (s, inv) = (pow2(e), pow2(-e));
    let (lo, hi) = (spec.qmin() as f32, spec.qmax() as f32);
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = quantize_f32(x, inv, lo, hi) * s;
        }
    });
    y
}

/// `(dx, d log2t)` from the input `x` and the forward output `y = fq(x)`:
/// the gradient passes where `x` is inside the range; TQT's threshold
/// gradient is `ln2 * (y - x)` there and `ln2 * y` where clamped.
pub fn backward(x: &[f32], y: &[f32], dy: &[f32], e: i32, spec: &QuantSpec) -> (Vec<f32>, f32) {
    let s = pow2(e);
    let (lo, hi) = (spec.qmin() as f32 * s, spec.qmax() as f32 * s);
    let ln2 = std::f32::consts::LN_2;
    let mut dx = vec![0.0f32; x.len()];
    let parts: Vec<f64> = dx
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)))
        .map(|(dx, ((x, y), dy))| {
            let mut dt = 0.0f32;
            for (((dx, &x), &y), &d) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                let inside = lo <= x && x <= hi;
                *dx = if inside { d } else { 0.0 };
                dt += d * if inside { y - x } else { y };
            }
            dt as f64 * ln2 as f64
        })
        .collect();
    (dx, parts.iter().sum::<f64>() as f32)
}

/// A MAC layer's weights, quantized per output channel (`exps.len() == rows`)
/// or per tensor (one exponent), after dividing by `divisor` (the folded
/// `1/L` of global average pooling).
pub struct QuantWeights {
    pub values: Vec<f32>,
    pub exps: Vec<i32>,
}

pub fn weight_spec(bits: usize, format: WeightFormat) -> WeightQuantizer {
    WeightQuantizer { bits: bits as u32, format }
}

pub fn weight_exps(log2t: &[f32], spec: &WeightQuantizer) -> Vec<i32> {
    log2t.iter().map(|&t| spec.exponent(t)).collect()
}

fn row_exp(exps: &[i32], row: usize) -> i32 {
    if exps.len() == 1 {
        exps[0]
    } else {
        exps[row]
    }
}

pub fn quantize_weights(
    w: &[f32],
    rows: usize,
    divisor: f32,
    log2t: &[f32],
    spec: &WeightQuantizer,
) -> QuantWeights {
    let exps = weight_exps(log2t, spec);
    let per_row = w.len() / rows;
    let mut values = vec![0.0f32; w.len()];
    values.par_chunks_mut(per_row).zip(w.par_chunks(per_row)).enumerate().for_each(
        |(r, (q, row))| {
            let e = row_exp(&exps, r);
            for (q, &v) in q.iter_mut().zip(row) {
                *q = spec.fq(v / divisor, e);
            }
        },
    );
    QuantWeights { values, exps }
}

/// Gradients of the float weights and thresholds from the gradient of the
/// quantized weights `wq` (the forward's values): straight-through inside the
/// range, and TQT's `ln2 * (wq - w)` (inside) or `ln2 * wq` (clamped).
pub fn weight_backward(
    w: &[f32],
    wq: &[f32],
    dwq: &[f32],
    rows: usize,
    divisor: f32,
    exps: &[i32],
    spec: &WeightQuantizer,
) -> (Vec<f32>, Vec<f32>) {
    let per_row = w.len() / rows;
    let mut dw = vec![0.0f32; w.len()];
    let row_dt: Vec<f64> = dw
        .par_chunks_mut(per_row)
        .enumerate()
        .map(|(r, dw)| {
            let e = row_exp(exps, r);
            let limit = spec.qmax() * pow2(e);
            let range = r * per_row..(r + 1) * per_row;
            let mut dt = 0.0f64;
            for ((dw, (&wv, &q)), &d) in
                dw.iter_mut().zip(w[range.clone()].iter().zip(&wq[range.clone()])).zip(&dwq[range])
            {
                let v = wv / divisor;
                let inside = v.abs() <= limit;
                dt += (d * if inside { q - v } else { q }) as f64;
                *dw = if inside { d / divisor } else { 0.0 };
            }
            dt * std::f64::consts::LN_2
        })
        .collect();
    let mut dlog2t = vec![0.0f32; exps.len()];
    for (r, dt) in row_dt.into_iter().enumerate() {
        dlog2t[if exps.len() == 1 { 0 } else { r }] += dt as f32;
    }
    (dw, dlog2t)
}

/// The bias on the accumulator's grid: `round_half_up(b * 2^-(ew+ex))` in 32
/// bits, times `2^(ew+ex)` (spec section 4).
pub fn quantize_bias(b: &[f32], wexps: &[i32], ex: i32) -> Vec<f32> {
    // In f64: a bias can be far beyond 2^22 grid steps, where the f32 rounding
    // of activations is no longer exact.
    b.iter()
        .enumerate()
        .map(|(r, &v)| {
            let e = row_exp(wexps, r) + ex;
            (quantize64(f64::from(v), e, &QuantSpec::BIAS) * 2f64.powi(e)) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The kernels against the scalar definitions in `quant::quantizer`,
    //! which its own tests pin to hand-computed values.
    use super::*;
    use crate::quant::format::WeightFormat;
    use crate::quant::quantizer::{fake_quant, grad_log2t, in_range};

    fn values() -> Vec<f32> {
        // Ties, range edges, beyond the range, both signs.
        let mut v: Vec<f32> = (-80..=80).map(|i| i as f32 * 0.0625).collect();
        v.extend([1e6, -1e6, 7.96875, -8.0, 0.03125, -0.03125, 2.75]); // 168 values: 2 rows
        v
    }

    #[test]
    fn activation_kernels_follow_the_definitions() {
        let x = values();
        for spec in [
            QuantSpec { bits: 8, signed: true, narrow: false },
            QuantSpec { bits: 4, signed: false, narrow: false },
            QuantSpec { bits: 3, signed: true, narrow: true },
        ] {
            let e = -2;
            let y = forward(&x, e, &spec);
            let dy: Vec<f32> = (0..x.len()).map(|i| 1.0 + (i % 7) as f32).collect();
            let (dx, dt) = backward(&x, &y, &dy, e, &spec);
            let mut want_dt = 0.0f64;
            for i in 0..x.len() {
                assert_eq!(y[i], fake_quant(x[i], e, &spec), "{spec:?} {}", x[i]);
                let want = if in_range(x[i], e, &spec) { dy[i] } else { 0.0 };
                assert_eq!(dx[i], want, "{spec:?} {}", x[i]);
                want_dt += (dy[i] * grad_log2t(x[i], e, &spec)) as f64;
            }
            assert!(
                (dt as f64 - want_dt).abs() < 1e-3 * want_dt.abs().max(1.0),
                "{dt} vs {want_dt}"
            );
        }
    }

    #[test]
    fn weight_kernels_follow_the_definitions() {
        let w = values();
        let rows = 2;
        for spec in [
            WeightQuantizer { bits: 4, format: WeightFormat::Int },
            WeightQuantizer { bits: 3, format: WeightFormat::Pot },
            WeightQuantizer { bits: 4, format: WeightFormat::Apot },
        ] {
            let log2t = [1.0f32, 2.5];
            let qw = quantize_weights(&w, rows, 2.0, &log2t, &spec);
            let dwq: Vec<f32> = (0..w.len()).map(|i| (i % 5) as f32 - 2.0).collect();
            let (dw, dt) = weight_backward(&w, &qw.values, &dwq, rows, 2.0, &qw.exps, &spec);
            let per = w.len() / rows;
            for r in 0..rows {
                let e = qw.exps[r];
                assert_eq!(e, spec.exponent(log2t[r]));
                let mut want_dt = 0.0f64;
                for i in r * per..(r + 1) * per {
                    let v = w[i] / 2.0;
                    assert_eq!(qw.values[i], spec.fq(v, e));
                    assert_eq!(dw[i], if spec.in_range(v, e) { dwq[i] / 2.0 } else { 0.0 });
                    want_dt += (dwq[i] * spec.grad_log2t(v, e)) as f64;
                }
                assert!((dt[r] as f64 - want_dt).abs() < 1e-3 * want_dt.abs().max(1.0), "{spec:?}");
            }
        }
    }
}
