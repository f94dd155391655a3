//! The autodiff interpreter: a forward pass that records a tape (every
//! value and what each op's backward rule needs), and a backward pass that
//! walks it in reverse. The rules themselves live in `kernels/`, forward and
//! backward side by side.

use super::kernels::{batch_norm as bn, conv1d, elementwise as ew, linear, pool};
use super::mac;
use super::plan::{Plan, Step};
use crate::ir::op::Op;
use crate::quant::kernels as quant;
use crate::quant::QuantSpec;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Parameter values, indexed like `Plan::params`.
pub type Weights = Vec<Vec<f32>>;

/// Training mode draws dropout masks from `rng` and uses batch statistics.
/// Calibration runs inference with quantizers and weight quantization off,
/// recording the largest magnitude each `fake_quant` sees (indexed like the
/// parameters, at the quantizer's `log2t`).
pub enum Mode<'a> {
    /// Batch statistics (until `bn_frozen`: then a conv folded with its batch
    /// norm runs as deployed), dropout masks from `rng`.
    Train {
        rng: &'a mut ChaCha8Rng,
        bn_frozen: bool,
        /// Overrides every batch norm's `momentum` (to average statistics
        /// over a data set, see `train::fit::precise_bn`).
        bn_momentum: Option<f64>,
    },
    Eval,
    Calibrate(&'a mut Observed),
}

/// What calibration observes at each `fake_quant`, indexed like the
/// parameters (at the quantizer's `log2t`).
#[derive(Debug, Default)]
pub struct Observed {
    pub max: Vec<f32>,
    /// Observed values for least-squares or percentile calibration (about
    /// 2^16 per batch and quantizer, evenly strided), when asked for.
    pub samples: Option<Vec<Vec<f32>>>,
}

impl Mode<'_> {
    /// Whether folded conv/batch-norm pairs compute the deployed arithmetic.
    fn deployed(&self) -> bool {
        !matches!(self, Mode::Train { bn_frozen: false, .. })
    }
}

enum Saved {
    Nothing,
    /// im2col columns, and the effective weights with their exponents.
    Conv(Vec<f32>, mac::MacParams),
    Linear(mac::MacParams),
    Bn(bn::Saved),
    /// A batch norm in simulated folding: its statistics and `|gamma|`.
    BnFolded(bn::Saved, Vec<f32>),
    MaxPool(Vec<u32>),
    Dropout(Vec<bool>),
    /// The exponent a `fake_quant` used.
    Quant(i32),
}

/// Every value of a forward pass and what its backward pass needs.
pub struct Tape {
    pub values: Vec<Vec<f32>>,
    /// Per slot, the exponent of a fake-quantized value (kept through ops
    /// that move integers unchanged: max pooling, flatten, dropout at inference).
    pub exps: Vec<Option<i32>>,
    saved: Vec<Saved>,
    n: usize,
}

impl Tape {
    pub fn output<'a>(&'a self, plan: &Plan) -> &'a [f32] {
        &self.values[plan.output]
    }
}

/// Runs the model on a batch `x[c][n][l]` of `n` samples.
pub fn forward(
    plan: &Plan,
    w: &mut Weights,
    x: Vec<f32>,
    n: usize,
    mut mode: Mode<'_>,
    threads: usize,
) -> Tape {
    let mut values = vec![Vec::new(); plan.slots];
    let mut exps = vec![None; plan.slots];
    values[plan.input] = x;
    let mut saved = Vec::with_capacity(plan.steps.len());
    let training = matches!(mode, Mode::Train { .. });
    for (i, s) in plan.steps.iter().enumerate() {
        let ex = exps[s.args[0]];
        let (y, keep) = forward_step(s, &values, ex, w, n, &mut mode, threads);
        values[s.out] = y;
        exps[s.out] = match (&s.op, &keep) {
            (_, Saved::Quant(e)) => Some(*e),
            (op, _) if op.meaning().moves_values => ex,
            _ => None,
        };
        if training {
            saved.push(keep);
        } else {
            // Inference keeps no tape: free what no later step reads.
            for &a in s.args.iter().filter(|&&a| plan.last_use[a] == i && a != plan.output) {
                values[a] = Vec::new();
            }
        }
    }
    Tape { values, exps, saved, n }
}

/// Every value (by slot) of the float network on a batch: the plan with
/// every quantizer and weight quantization off, as calibration runs it,
/// keeping what inference would free.
pub fn float_values(
    plan: &Plan,
    w: &Weights,
    x: Vec<f32>,
    n: usize,
    threads: usize,
) -> Vec<Vec<f32>> {
    let mut keep = plan.clone();
    keep.last_use.fill(usize::MAX);
    let mut seen = Observed { max: vec![0.0; plan.params.len()], samples: None };
    forward(&keep, &mut w.clone(), x, n, Mode::Calibrate(&mut seen), threads).values
}

#[allow(clippy::too_many_arguments)]
fn forward_step(
    s: &Step,
    v: &[Vec<f32>],
    ex: Option<i32>,
    w: &mut Weights,
    n: usize,
    mode: &mut Mode<'_>,
    threads: usize,
) -> (Vec<f32>, Saved) {
    let x = &v[s.args[0]];
    let ((c, l), (co, lo)) = (s.arg_dims[0], s.out_dims);
    match &s.op {
        Op::Conv1d(op) => {
            let g = conv1d::ConvGeom::new(op, c, n, l, lo);
            let sl = mac::slots(s, op.bias, &op.quant);
            let calibrating = matches!(mode, Mode::Calibrate(_));
            let p = match (s.fold, op.quant.w_bits) {
                (Some(f), Some(_)) if !calibrating => {
                    mac::folded_params(w, &sl, &op.quant, &f, co, ex, mode.deployed())
                }
                _ => {
                    let q = if calibrating { Default::default() } else { op.quant.clone() };
                    mac::params(w, &sl, &q, co, 1, ex)
                }
            };
            // While statistics update, a folded conv outputs `conv(x, fq(w*s))`
            // without bias; its batch norm accounts for the scale and bias.
            let training_fold = p.fold.as_ref().is_some_and(|f| !f.deployed);
            let bias = if training_fold { None } else { p.b.as_deref() };
            let (y, cols) = conv1d::forward(&g, x, &p.w, bias, threads);
            (y, Saved::Conv(cols, p))
        }
        Op::BatchNorm(_) if s.folded && mode.deployed() && !matches!(mode, Mode::Calibrate(_)) => {
            (x.clone(), Saved::Nothing)
        }
        Op::BatchNorm(op) => {
            let [gi, bi, mi, vi] = s.params[..] else {
                unreachable!("batch_norm owns four tensors")
            };
            let (gamma, beta) = (w[gi].clone(), w[bi].clone());
            let p = bn::BnParams { gamma: &gamma, beta: &beta, eps: op.eps.0, relu: s.relu };
            let momentum = match mode {
                Mode::Train { bn_momentum: Some(m), .. } => *m,
                _ => op.momentum.0,
            };
            match mode {
                Mode::Train { .. } if s.folded => {
                    let (mut rm, mut rv) = (std::mem::take(&mut w[mi]), std::mem::take(&mut w[vi]));
                    let bias = s.fold_bias.map(|b| w[b].clone());
                    let (y, sv, g) = bn::forward_train_folded(
                        x,
                        n * l,
                        &p,
                        momentum,
                        bias.as_deref(),
                        &mut rm,
                        &mut rv,
                    );
                    (w[mi], w[vi]) = (rm, rv);
                    (y, Saved::BnFolded(sv, g))
                }
                Mode::Train { .. } => {
                    let (mut rm, mut rv) = (std::mem::take(&mut w[mi]), std::mem::take(&mut w[vi]));
                    let (y, sv) = bn::forward_train(x, n * l, &p, momentum, &mut rm, &mut rv);
                    (w[mi], w[vi]) = (rm, rv);
                    (y, Saved::Bn(sv))
                }
                Mode::Eval | Mode::Calibrate(_) => {
                    (bn::forward_eval(x, n * l, &p, &w[mi], &w[vi]), Saved::Nothing)
                }
            }
        }
        Op::Relu => (ew::relu_forward(x), Saved::Nothing),
        Op::Add(_) => (ew::add(x, &v[s.args[1]]), Saved::Nothing),
        Op::MaxPool1d(p) => {
            let (y, arg) = pool::max_forward(&pool::Window::new(p, l, lo), x);
            (y, Saved::MaxPool(arg))
        }
        Op::AvgPool1d(p) => (pool::avg_forward(&pool::Window::new(p, l, lo), x), Saved::Nothing),
        Op::GlobalAvgPool(_) => (pool::global_avg_forward(x, l), Saved::Nothing),
        // [C, L] -> [C*L]; for a [F] value (l = 1) the permutation is the identity.
        Op::Flatten => (ew::flatten_forward(x, c, n, l), Saved::Nothing),
        Op::Linear(op) => {
            let div = op.input_divisor.unwrap_or(1);
            let q = if matches!(mode, Mode::Calibrate(_)) {
                Default::default()
            } else {
                op.quant.clone()
            };
            let p = mac::params(w, &mac::slots(s, op.bias, &op.quant), &q, co, div, ex);
            (linear::forward(x, &p.w, p.b.as_deref(), c, co, n, threads), Saved::Linear(p))
        }
        Op::FakeQuant(fq) => {
            if let Mode::Calibrate(seen) = mode {
                // The plan fuses a relu into the unsigned quantizer that
                // reads it (its clamp at 0): with the quantizer off, the
                // float network still needs that relu.
                let y = if fq.signed { x.clone() } else { ew::relu_forward(x) };
                let m = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                seen.max[s.params[0]] = seen.max[s.params[0]].max(m);
                if let Some(samples) = seen.samples.as_mut() {
                    let stride = (y.len() >> 16).max(1);
                    samples[s.params[0]].extend(y.iter().step_by(stride));
                }
                return (y, Saved::Nothing);
            }
            let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
            let e = spec.exponent(w[s.params[0]][0]);
            (quant::forward(x, e, &spec), Saved::Quant(e))
        }
        Op::GlobalSumPool => (pool::global_sum_forward(x, l), Saved::Nothing),
        Op::Dropout(d) => match mode {
            Mode::Train { rng, .. } => {
                let keep: Vec<bool> = (0..x.len()).map(|_| rng.random::<f64>() >= d.p.0).collect();
                (ew::dropout_forward(x, &keep, d.p.0 as f32), Saved::Dropout(keep))
            }
            Mode::Eval | Mode::Calibrate(_) => (x.clone(), Saved::Nothing),
        },
        Op::Input => unreachable!("inputs are not steps"),
        Op::IntConv1d(_) | Op::IntLinear(_) | Op::Requant(_) | Op::Shl => {
            unreachable!("Plan::new refuses integer programs")
        }
    }
}

/// Gradients of every parameter (empty for statistics) given `dout`, the
/// gradient of the loss with respect to the output.
pub fn backward(
    plan: &Plan,
    w: &Weights,
    tape: &Tape,
    dout: Vec<f32>,
    threads: usize,
) -> Vec<Vec<f32>> {
    let mut grads: Vec<Option<Vec<f32>>> = vec![None; plan.slots];
    grads[plan.output] = Some(dout);
    let mut pgrads: Vec<Vec<f32>> = vec![Vec::new(); plan.params.len()];
    for (s, saved) in plan.steps.iter().zip(&tape.saved).rev() {
        let Some(dy) = grads[s.out].take() else { continue };
        let dxs = backward_step(s, saved, w, tape, &dy, &mut pgrads, plan.input, threads);
        for (&arg, dx) in s.args.iter().zip(dxs) {
            let Some(dx) = dx else { continue };
            grads[arg] = Some(match grads[arg].take() {
                Some(acc) => ew::add(&acc, &dx),
                None => dx,
            });
        }
    }
    pgrads
}

/// The gradients of the step's operands (None where not needed); parameter
/// gradients go into `pg`.
#[allow(clippy::too_many_arguments)]
fn backward_step(
    s: &Step,
    saved: &Saved,
    w: &Weights,
    tape: &Tape,
    dy: &[f32],
    pg: &mut [Vec<f32>],
    input: usize,
    threads: usize,
) -> Vec<Option<Vec<f32>>> {
    let n = tape.n;
    let x = &tape.values[s.args[0]];
    let want_dx = s.args[0] != input;
    let ((c, l), (co, lo)) = (s.arg_dims[0], s.out_dims);
    let dx = match (&s.op, saved) {
        (Op::Conv1d(op), Saved::Conv(cols, p)) => {
            let g = conv1d::ConvGeom::new(op, c, n, l, lo);
            let sl = mac::slots(s, op.bias, &op.quant);
            if let (Some(f), Some(fd), Some(_)) = (s.fold, &p.fold, op.quant.w_bits) {
                // Deployed: the bias is the folded conv's; while statistics
                // update the bias cancels in the batch norm (no gradient).
                let dbias: Vec<f32> = if fd.deployed {
                    dy.par_chunks(n * lo).map(conv1d::sum).collect()
                } else {
                    vec![0.0; co]
                };
                let (dx, dwq, _) = conv1d::backward(&g, cols, &p.w, dy, false, want_dx, threads);
                mac::folded_backward(w, &sl, &op.quant, &f, p, co, dwq, dbias, pg);
                dx
            } else {
                let (dx, dw, db) = conv1d::backward(&g, cols, &p.w, dy, op.bias, want_dx, threads);
                mac::backward(w, &sl, &op.quant, co, 1, p, dw, pg);
                if let (Some(db), Some(b)) = (db, sl.b) {
                    pg[b] = db;
                }
                dx
            }
        }
        (Op::BatchNorm(_), Saved::Nothing) if s.folded => Some(dy.to_vec()),
        (Op::BatchNorm(_), Saved::BnFolded(sv, g)) => {
            let relu_out = s.relu.then(|| tape.values[s.out].as_slice());
            let (dx, dg, dbeta) = bn::backward(x, dy, n * l, g, sv, relu_out);
            let gamma = &w[s.params[0]];
            pg[s.params[0]] = dg.iter().zip(gamma).map(|(d, g)| d * g.signum()).collect();
            pg[s.params[1]] = dbeta;
            Some(dx)
        }
        (Op::BatchNorm(_), Saved::Bn(sv)) => {
            let relu_out = s.relu.then(|| tape.values[s.out].as_slice());
            let (dx, dgamma, dbeta) = bn::backward(x, dy, n * l, &w[s.params[0]], sv, relu_out);
            (pg[s.params[0]], pg[s.params[1]]) = (dgamma, dbeta);
            Some(dx)
        }
        (Op::Relu, _) => Some(ew::relu_backward(&tape.values[s.out], dy)),
        (Op::Add(_), _) => return vec![Some(dy.to_vec()), Some(dy.to_vec())],
        (Op::MaxPool1d(p), Saved::MaxPool(arg)) => {
            Some(pool::max_backward(&pool::Window::new(p, l, lo), arg, dy))
        }
        (Op::AvgPool1d(p), _) => Some(pool::avg_backward(&pool::Window::new(p, l, lo), dy)),
        (Op::GlobalAvgPool(_), _) => Some(pool::global_avg_backward(dy, l)),
        (Op::Flatten, _) => Some(ew::flatten_backward(dy, c, n, l)),
        (Op::Linear(op), Saved::Linear(p)) => {
            let (dx, dw, db) = linear::backward(x, &p.w, dy, (c, co, n), op.bias, want_dx, threads);
            let sl = mac::slots(s, op.bias, &op.quant);
            mac::backward(w, &sl, &op.quant, co, op.input_divisor.unwrap_or(1), p, dw, pg);
            if let (Some(db), Some(b)) = (db, sl.b) {
                pg[b] = db;
            }
            dx
        }
        (Op::FakeQuant(fq), Saved::Quant(e)) => {
            let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
            let (dx, dt) = quant::backward(x, &tape.values[s.out], dy, *e, &spec);
            pg[s.params[0]] = vec![dt];
            Some(dx)
        }
        (Op::GlobalSumPool, _) => {
            let mut dx = pool::global_avg_backward(dy, l);
            dx.iter_mut().for_each(|v| *v *= l as f32);
            Some(dx)
        }
        (Op::Dropout(d), Saved::Dropout(keep)) => {
            Some(ew::dropout_backward(dy, keep, d.p.0 as f32))
        }
        (op, _) => unreachable!("{} has no training-mode tape entry", op.name()),
    };
    vec![dx.filter(|_| want_dx)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_applies_the_relu_fused_into_an_unsigned_quantizer() {
        let src = "model m(%x: [1, 4]) {\n  %r = relu(%x)\n  \
                   %r.q = fake_quant(%r) {bits = 8, signed = false}\n  return %r.q\n}\n";
        let plan = Plan::new(&crate::syntax::parse(src).unwrap()).unwrap();
        assert_eq!(plan.steps.len(), 1, "the relu is fused into the quantizer");
        let mut w: Weights = vec![vec![0.0]];
        let mut seen = Observed { max: vec![0.0], samples: Some(vec![vec![]]) };
        let x = vec![-3.0, 1.0, -0.5, 2.0];
        let tape = forward(&plan, &mut w, x, 1, Mode::Calibrate(&mut seen), 1);
        assert_eq!(tape.output(&plan), [0.0, 1.0, 0.0, 2.0]);
        assert_eq!(seen.max, [2.0]);
        assert_eq!(seen.samples.unwrap()[0], [0.0, 1.0, 0.0, 2.0]);
    }
}
