//! The weights a MAC layer (conv1d, linear) computes with: its float
//! parameters, or with `w_bits` their fake-quantized values, the bias on the
//! accumulator grid of the input's exponent, and the `1/L` of a folded
//! average. Shared by the forward and backward passes.

use super::plan::{Fold, Step};
use super::Weights;
use crate::ir::op::LayerQuant;
use crate::quant::fold::fold_bn;
use crate::quant::kernels::{quantize_bias, quantize_weights, weight_backward, weight_spec};

/// The effective parameters of one application.
pub struct MacParams {
    pub w: Vec<f32>,
    pub b: Option<Vec<f32>>,
    /// Weight exponents when quantized (one, or one per output channel).
    pub wexps: Option<Vec<i32>>,
    /// With simulated folding: what the backward pass needs.
    pub fold: Option<Folded>,
}

/// A conv1d's weights folded with its batch norm (`fold_bn`, the function
/// lowering uses), before quantization.
pub struct Folded {
    /// `gamma / sqrt(var + eps)` per output channel.
    pub scale: Vec<f32>,
    /// The folded float weights.
    pub w: Vec<f32>,
    /// Statistics frozen (or inference): the layer is exactly the folded
    /// conv with its bias, and the batch norm after it passes values through.
    /// Otherwise the output is divided by `scale` for the batch norm's
    /// batch statistics.
    pub deployed: bool,
}

/// Where a MAC step's parameters sit in `Step::params`.
pub struct Slots {
    pub w: usize,
    pub b: Option<usize>,
    pub log2t: Option<usize>,
}

pub fn slots(s: &Step, has_bias: bool, q: &LayerQuant) -> Slots {
    let b = has_bias.then(|| s.params[1]);
    let log2t = q.w_bits.map(|_| s.params[1 + usize::from(has_bias)]);
    Slots { w: s.params[0], b, log2t }
}

/// `rows` output channels; `ex` the exponent of the (quantized) input, if any.
pub fn params(
    w: &Weights,
    sl: &Slots,
    q: &LayerQuant,
    rows: usize,
    divisor: usize,
    ex: Option<i32>,
) -> MacParams {
    let div = divisor as f32;
    match (q.w_bits, sl.log2t) {
        (Some(bits), Some(t)) => {
            let qw = quantize_weights(&w[sl.w], rows, div, &w[t], &weight_spec(bits, q.format()));
            let b = sl.b.map(|b| match ex {
                Some(ex) => quantize_bias(&w[b], &qw.exps, ex),
                None => w[b].clone(),
            });
            MacParams { w: qw.values, b, wexps: Some(qw.exps), fold: None }
        }
        _ => {
            let wv = if divisor == 1 {
                w[sl.w].clone()
            } else {
                w[sl.w].iter().map(|v| v / div).collect()
            };
            MacParams { w: wv, b: sl.b.map(|b| w[b].clone()), wexps: None, fold: None }
        }
    }
}

/// Turns the gradient of the effective weights into gradients of the float
/// weights (and thresholds), stored in `pg`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    w: &Weights,
    sl: &Slots,
    q: &LayerQuant,
    rows: usize,
    divisor: usize,
    p: &MacParams,
    dw_eff: Vec<f32>,
    pg: &mut [Vec<f32>],
) {
    match (q.w_bits, sl.log2t, p.wexps.as_deref()) {
        (Some(bits), Some(t), Some(exps)) => {
            let (dw, dt) = weight_backward(
                &w[sl.w],
                &p.w,
                &dw_eff,
                rows,
                divisor as f32,
                exps,
                &weight_spec(bits, q.format()),
            );
            pg[sl.w] = dw;
            pg[t] = dt;
        }
        _ if divisor != 1 => pg[sl.w] = dw_eff.iter().map(|g| g / divisor as f32).collect(),
        _ => pg[sl.w] = dw_eff,
    }
}

/// A quantized conv1d under simulated folding with batch norm `f`.
pub fn folded_params(
    w: &Weights,
    sl: &Slots,
    q: &LayerQuant,
    f: &Fold,
    rows: usize,
    ex: Option<i32>,
    deployed: bool,
) -> MacParams {
    let stats = f.stats(w);
    let (wf, bf) = fold_bn(&w[sl.w], sl.b.map(|b| w[b].as_slice()), &stats);
    let scale: Vec<f32> = (0..rows).map(|c| stats.scale(c) as f32).collect();
    let t = sl.log2t.expect("a folded conv is quantized");
    let qw =
        quantize_weights(&wf, rows, 1.0, &w[t], &weight_spec(q.w_bits.unwrap_or(8), q.format()));
    let b = match (deployed, ex) {
        (true, Some(ex)) => Some(quantize_bias(&bf, &qw.exps, ex)),
        (true, None) => Some(bf.clone()),
        (false, _) => sl.b.map(|b| w[b].clone()),
    };
    let fold = Some(Folded { scale, w: wf, deployed });
    MacParams { w: qw.values, b, wexps: Some(qw.exps), fold }
}

/// Gradients of a folded conv's parameters from those of its effective
/// weights (`dwq`) and bias (`dbias`, the sum of the output gradient).
#[allow(clippy::too_many_arguments)]
pub fn folded_backward(
    w: &Weights,
    sl: &Slots,
    q: &LayerQuant,
    f: &Fold,
    p: &MacParams,
    rows: usize,
    dwq: Vec<f32>,
    dbias: Vec<f32>,
    pg: &mut [Vec<f32>],
) {
    let fd = p.fold.as_ref().expect("folded parameters");
    let exps = p.wexps.as_deref().expect("quantized");
    let spec = weight_spec(q.w_bits.unwrap_or(8), q.format());
    let (dwf, dt) = weight_backward(&fd.w, &p.w, &dwq, rows, 1.0, exps, &spec);
    let per = dwf.len() / rows;
    let dw: Vec<f32> = dwf.iter().enumerate().map(|(i, g)| g * fd.scale[i / per]).collect();
    if fd.deployed {
        // w' = w * g / sd and b' = beta + (b - mean) * g / sd: gradients of
        // gamma, beta and b through the fold.
        let mut dgamma = vec![0.0f32; rows];
        for c in 0..rows {
            let sd = (w[f.var][c] as f64 + f.eps).sqrt() as f32;
            let wsum: f32 = (0..per).map(|k| dwf[c * per + k] * w[sl.w][c * per + k]).sum();
            let b = sl.b.map_or(0.0, |b| w[b][c]);
            dgamma[c] = (wsum + dbias[c] * (b - w[f.mean][c])) / sd;
        }
        if let Some(b) = sl.b {
            pg[b] = dbias.iter().zip(&fd.scale).map(|(d, s)| d * s).collect();
        }
        pg[f.gamma] = dgamma;
        pg[f.beta] = dbias;
    } else if let Some(b) = sl.b {
        pg[b] = dbias;
    }
    pg[sl.w] = dw;
    pg[sl.log2t.expect("quantized")] = dt;
}
