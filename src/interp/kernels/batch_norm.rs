//! Batch normalisation over channels, PyTorch's conventions: training uses
//! the batch mean and biased variance over (N, L) and updates the running
//! statistics with the unbiased variance; inference uses the running ones.
//! Sums run in f64 per channel, so results do not depend on the thread count.

use rayon::prelude::*;

/// What the backward pass needs from a training-mode forward pass.
pub struct Saved {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
}

/// Per-channel parameters and statistics, each of length C.
pub struct BnParams<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f64,
    /// A relu fused into the output (and its mask into the backward pass).
    pub relu: bool,
}

/// Training mode on `x[c][m]` (m = N*L). Updates `running_mean/var` with
/// `momentum` and returns `(y, saved)`.
pub fn forward_train(
    x: &[f32],
    m: usize,
    p: &BnParams<'_>,
    momentum: f64,
    running_mean: &mut [f32],
    running_var: &mut [f32],
) -> (Vec<f32>, Saved) {
    let stats = channel_stats(x, m);
    let unbias = if m > 1 { m as f64 / (m - 1) as f64 } else { 1.0 };
    let mut mean = Vec::with_capacity(stats.len());
    let mut invstd = Vec::with_capacity(stats.len());
    for (c, &(mu, var)) in stats.iter().enumerate() {
        running_mean[c] = ((1.0 - momentum) * running_mean[c] as f64 + momentum * mu) as f32;
        running_var[c] =
            ((1.0 - momentum) * running_var[c] as f64 + momentum * var * unbias) as f32;
        mean.push(mu as f32);
        invstd.push((1.0 / (var + p.eps).sqrt()) as f32);
    }
    let y = apply(x, m, p, &mean, &invstd);
    (y, Saved { mean, invstd })
}

/// Training mode behind a conv whose quantized weights are folded with this
/// batch norm (`--bn fold-sim`): the input `y` is the conv's output with
/// weights `fq(w * s)`, `s = gamma / sqrt(running_var + eps)`, standing for
/// `z = y / s + b`. Normalising `z` with batch statistics equals normalising
/// `y` with `eps * s^2` and `|gamma|`, so no pass divides by `s`; the running
/// statistics are those of `z`. Returns `(out, saved, gamma')` for
/// [`backward`] (whose `dgamma` then needs the sign of `gamma`).
pub fn forward_train_folded(
    y: &[f32],
    m: usize,
    p: &BnParams<'_>,
    momentum: f64,
    conv_bias: Option<&[f32]>,
    running_mean: &mut [f32],
    running_var: &mut [f32],
) -> (Vec<f32>, Saved, Vec<f32>) {
    let stats = channel_stats(y, m);
    let unbias = if m > 1 { m as f64 / (m - 1) as f64 } else { 1.0 };
    let (mut mean, mut invstd, mut gamma) = (vec![], vec![], vec![]);
    for (c, &(mu, var)) in stats.iter().enumerate() {
        let s = p.gamma[c] as f64 / (running_var[c] as f64 + p.eps).sqrt();
        let b = conv_bias.map_or(0.0, |b| b[c] as f64);
        running_mean[c] =
            ((1.0 - momentum) * running_mean[c] as f64 + momentum * (mu / s + b)) as f32;
        running_var[c] =
            ((1.0 - momentum) * running_var[c] as f64 + momentum * var / (s * s) * unbias) as f32;
        mean.push(mu as f32);
        invstd.push((1.0 / (var + p.eps * s * s).sqrt()) as f32);
        gamma.push(p.gamma[c].abs());
    }
    let q = BnParams { gamma: &gamma, beta: p.beta, eps: p.eps, relu: p.relu };
    let out = apply(y, m, &q, &mean, &invstd);
    (out, Saved { mean, invstd }, gamma)
}

/// Per-channel mean and biased variance of `x[c][m]`, in one f64 pass.
fn channel_stats(x: &[f32], m: usize) -> Vec<(f64, f64)> {
    x.par_chunks(m)
        .map(|row| {
            let (s, s2) = row
                .iter()
                .fold((0.0f64, 0.0f64), |(s, s2), &v| (s + v as f64, s2 + (v as f64) * (v as f64)));
            let mean = s / m as f64;
            (mean, (s2 / m as f64 - mean * mean).max(0.0))
        })
        .collect()
}

/// Inference mode with the running statistics.
pub fn forward_eval(x: &[f32], m: usize, p: &BnParams<'_>, mean: &[f32], var: &[f32]) -> Vec<f32> {
    let invstd: Vec<f32> = var.iter().map(|&v| (1.0 / (v as f64 + p.eps).sqrt()) as f32).collect();
    apply(x, m, p, mean, &invstd)
}

fn apply(x: &[f32], m: usize, p: &BnParams<'_>, mean: &[f32], invstd: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(m).zip(x.par_chunks(m)).enumerate().for_each(|(c, (yr, xr))| {
        let scale = p.gamma[c] * invstd[c];
        let shift = p.beta[c] - mean[c] * scale;
        let floor = if p.relu { 0.0 } else { f32::NEG_INFINITY };
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v * scale + shift).max(floor);
        }
    });
    y
}

/// `(dx, dgamma, dbeta)` of the training-mode forward pass.
/// With `relu_out` (the fused relu's output) the gradient is masked where
/// that output is not positive, inside the same loops.
pub fn backward(
    x: &[f32],
    dy: &[f32],
    m: usize,
    gamma: &[f32],
    s: &Saved,
    relu_out: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // Pass 1: the (masked) output gradient into `dx` as scratch, and the
    // per-channel sums; pass 2: `dx` in place.
    let mut dx = vec![0.0f32; x.len()];
    let sums: Vec<(f64, f64)> = dx
        .par_chunks_mut(m)
        .zip(x.par_chunks(m).zip(dy.par_chunks(m)))
        .enumerate()
        .map(|(c, (scratch, (xr, dr)))| {
            let (mu, is) = (s.mean[c] as f64, s.invstd[c] as f64);
            let mask = relu_out.map(|y| &y[c * m..(c + 1) * m]);
            let (mut dgamma, mut dbeta) = (0.0f64, 0.0f64);
            for (i, ((o, &xv), &d)) in scratch.iter_mut().zip(xr).zip(dr).enumerate() {
                let d = if mask.is_some_and(|y| y[i] <= 0.0) { 0.0 } else { d };
                *o = d;
                dbeta += d as f64;
                dgamma += d as f64 * (xv as f64 - mu) * is;
            }
            (dgamma, dbeta)
        })
        .collect();
    dx.par_chunks_mut(m).zip(x.par_chunks(m)).enumerate().for_each(|(c, (dxr, xr))| {
        let (dgamma, dbeta) = sums[c];
        let (mu, is) = (s.mean[c] as f64, s.invstd[c] as f64);
        let k = gamma[c] as f64 * is / m as f64;
        for (o, &xv) in dxr.iter_mut().zip(xr) {
            let xhat = (xv as f64 - mu) * is;
            *o = (k * (m as f64 * *o as f64 - dbeta - xhat * dgamma)) as f32;
        }
    });
    let dgamma = sums.iter().map(|s| s.0 as f32).collect();
    let dbeta = sums.iter().map(|s| s.1 as f32).collect();
    (dx, dgamma, dbeta)
}
