//! Optimizers with PyTorch's update rules, so hyper-parameters carry over:
//! Adam (L2 weight decay added to the gradient, as `torch.optim.Adam`) and SGD
//! with momentum. Statistics (batch-norm running values) are never stepped.

use crate::interp::plan::ParamInfo;
use crate::interp::Weights;
use crate::ir::params::Init;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    Adam { beta1: f32, beta2: f32, eps: f32 },
    Sgd { momentum: f32 },
}

impl Optimizer {
    pub fn adam() -> Self {
        Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Moment buffers and the step count; saved in checkpoints for `--resume`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptState {
    pub step: u64,
    /// Adam's first moment, or SGD's momentum buffer.
    pub m: Weights,
    /// Adam's second moment (empty for SGD).
    pub v: Weights,
}

impl OptState {
    pub fn new(params: &[ParamInfo], opt: Optimizer) -> Self {
        let zeros = |on: bool| {
            params
                .iter()
                .map(|p| if p.trainable && on { vec![0.0; p.len()] } else { vec![] })
                .collect()
        };
        OptState { step: 0, m: zeros(true), v: zeros(matches!(opt, Optimizer::Adam { .. })) }
    }
}

/// The step sizes of one update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub lr: f32,
    /// Of the quantizer thresholds (`log2t`, TQT): their own rate, and no
    /// weight decay, which would pull every threshold towards `t = 1`.
    pub threshold_lr: f32,
    pub weight_decay: f32,
}

/// One update of every trainable parameter from its gradient.
pub fn step(
    opt: Optimizer,
    state: &mut OptState,
    params: &[ParamInfo],
    w: &mut Weights,
    grads: &[Vec<f32>],
    rates: Rates,
) {
    state.step += 1;
    let t = state.step as i32;
    for (i, p) in params.iter().enumerate() {
        if !p.trainable || grads[i].is_empty() {
            continue;
        }
        let (lr, weight_decay) = if p.init == Init::Calibrate {
            (rates.threshold_lr, 0.0)
        } else {
            (rates.lr, rates.weight_decay)
        };
        let (w, g, m) = (&mut w[i], &grads[i], &mut state.m[i]);
        match opt {
            Optimizer::Adam { beta1, beta2, eps } => {
                let v = &mut state.v[i];
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                let step_size = lr / bc1;
                let bc2_sqrt = bc2.sqrt();
                w.par_iter_mut()
                    .zip(g.par_iter())
                    .zip(m.par_iter_mut().zip(v.par_iter_mut()))
                    .for_each(|((w, &g), (m, v))| {
                        let g = g + weight_decay * *w;
                        *m = beta1 * *m + (1.0 - beta1) * g;
                        *v = beta2 * *v + (1.0 - beta2) * g * g;
                        *w -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
                    });
            }
            Optimizer::Sgd { momentum } => {
                let first = t == 1;
                w.par_iter_mut().zip(g.par_iter()).zip(m.par_iter_mut()).for_each(
                    |((w, &g), m)| {
                        let g = g + weight_decay * *w;
                        *m = if first { g } else { momentum * *m + g };
                        *w -= lr * *m;
                    },
                );
            }
        }
    }
}
