//! The weights a MAC layer (conv1d, linear) computes with: its float
//! parameters, or with `w_bits` their fake-quantized values, the bias on the
//! accumulator grid of the input's exponent, and the `1/L` of a folded
//! average. Shared by the forward and backward passes.

use super::kernels::quant::{quantize_bias, quantize_weights, weight_backward, weight_spec};
use super::plan::Step;
use super::Weights;
use crate::ir::op::LayerQuant;

/// The effective parameters of one application.
pub struct MacParams {
    pub w: Vec<f32>,
    pub b: Option<Vec<f32>>,
    /// Weight exponents when quantized (one, or one per output channel).
    pub wexps: Option<Vec<i32>>,
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
            let qw = quantize_weights(&w[sl.w], rows, div, &w[t], &weight_spec(bits));
            let b = sl.b.map(|b| match ex {
                Some(ex) => quantize_bias(&w[b], &qw.exps, ex),
                None => w[b].clone(),
            });
            MacParams { w: qw.values, b, wexps: Some(qw.exps) }
        }
        _ => {
            let wv = if divisor == 1 {
                w[sl.w].clone()
            } else {
                w[sl.w].iter().map(|v| v / div).collect()
            };
            MacParams { w: wv, b: sl.b.map(|b| w[b].clone()), wexps: None }
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
    wexps: Option<&[i32]>,
    dw_eff: Vec<f32>,
    pg: &mut [Vec<f32>],
) {
    match (q.w_bits, sl.log2t, wexps) {
        (Some(bits), Some(t), Some(exps)) => {
            let (dw, dt) =
                weight_backward(&w[sl.w], &dw_eff, rows, divisor as f32, exps, &weight_spec(bits));
            pg[sl.w] = dw;
            pg[t] = dt;
        }
        _ if divisor != 1 => pg[sl.w] = dw_eff.iter().map(|g| g / divisor as f32).collect(),
        _ => pg[sl.w] = dw_eff,
    }
}
