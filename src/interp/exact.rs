//! Exact inference of a fake-quantized model (spec section 6): values in f64,
//! MACs as f64 GEMMs. Inputs and weights of every MAC are integers times
//! powers of two, so products and sums are exact while accumulators fit 32
//! bits (well below f64's 53), and rounding happens only where the integer
//! program rounds. Its logits therefore equal the integer program's.

use super::gemm::{matmul, Mat};
use super::kernels::conv1d::{im2col, ConvGeom};
use super::kernels::elementwise::flatten_forward;
use super::kernels::loss::argmax;
use super::kernels::pool::Window;
use super::mac;
use super::plan::{Plan, Step};
use super::Weights;
use crate::data::batch;
use crate::data::Dataset;
use crate::ir::op::Op;
use crate::quant::quantizer::{pow2, quantize64};
use crate::quant::QuantSpec;

/// Accuracy and outputs of a data set, sample-major `[N, K]`.
pub struct ExactEval {
    pub accuracy: f64,
    pub values: Vec<f64>,
    /// The output as integers on one exponent (the smallest of the output
    /// channels'; others shifted left, exact), when the output is quantized.
    pub ints: Option<(Vec<i64>, i32)>,
}

pub fn evaluate_exact(plan: &Plan, w: &Weights, ds: &Dataset, threads: usize) -> ExactEval {
    let k = plan.output_dims.0;
    let mut values = vec![0.0f64; ds.n * k];
    let mut ints: Option<Vec<i64>> = Some(vec![0; ds.n * k]);
    let mut common = 0;
    let mut correct = 0;
    let all: Vec<usize> = (0..ds.n).collect();
    for chunk in all.chunks(plan.batch_within(64)) {
        let x: Vec<f64> = batch(ds, chunk).into_iter().map(f64::from).collect();
        let (out, exps) = forward(plan, w, x, chunk.len(), threads);
        let b = chunk.len();
        if let Some(e) = &exps {
            common = *e.iter().min().unwrap_or(&0);
        }
        for (bi, &i) in chunk.iter().enumerate() {
            let row: Vec<f64> = (0..k).map(|c| out[c * b + bi]).collect();
            correct += (argmax(&row) == ds.y[i]) as usize;
            values[i * k..][..k].copy_from_slice(&row);
            match (&exps, ints.as_mut()) {
                (Some(e), Some(dst)) => {
                    for c in 0..k {
                        // value / 2^common is an integer: exact in f64.
                        dst[i * k + c] = (row[c] / pow2(common) as f64) as i64;
                        debug_assert!(e[c] >= common);
                    }
                }
                _ => ints = None,
            }
        }
    }
    ExactEval {
        accuracy: correct as f64 / ds.n.max(1) as f64,
        values,
        ints: ints.map(|v| (v, common)),
    }
}

/// The output values and, when the output is on a power-of-two grid, the
/// exponent of each output channel.
fn forward(
    plan: &Plan,
    w: &Weights,
    x: Vec<f64>,
    n: usize,
    threads: usize,
) -> (Vec<f64>, Option<Vec<i32>>) {
    let (mut values, mut exps) = forward_all(plan, w, x, n, threads);
    (std::mem::take(&mut values[plan.output]), exps[plan.output].take())
}

/// Every value (by slot) of the exact evaluation of a batch, for diagnostics.
pub fn exact_values(
    plan: &Plan,
    w: &Weights,
    x: Vec<f64>,
    n: usize,
    threads: usize,
) -> Vec<Vec<f64>> {
    forward_all(plan, w, x, n, threads).0
}

/// Every value and, for values on a power-of-two grid, their exponents.
#[allow(clippy::type_complexity)]
fn forward_all(
    plan: &Plan,
    w: &Weights,
    x: Vec<f64>,
    n: usize,
    threads: usize,
) -> (Vec<Vec<f64>>, Vec<Option<Vec<i32>>>) {
    let mut values = vec![Vec::new(); plan.slots];
    let mut exps: Vec<Option<Vec<i32>>> = vec![None; plan.slots];
    values[plan.input] = x;
    for s in &plan.steps {
        let ex = exps[s.args[0]].as_ref().and_then(|e| (e.len() == 1).then(|| e[0]));
        let (y, e) = step(s, &values, ex, w, n, threads);
        values[s.out] = y;
        exps[s.out] = if s.op.meaning().moves_values { exps[s.args[0]].clone() } else { e };
    }
    (values, exps)
}

fn step(
    s: &Step,
    v: &[Vec<f64>],
    ex: Option<i32>,
    w: &Weights,
    n: usize,
    threads: usize,
) -> (Vec<f64>, Option<Vec<i32>>) {
    let x = &v[s.args[0]];
    let ((c, l), (co, lo)) = (s.arg_dims[0], s.out_dims);
    match &s.op {
        Op::Conv1d(op) => {
            let g = ConvGeom::new(op, c, n, l, lo);
            let sl = mac::slots(s, op.bias, &op.quant);
            let p = mac::params(w, &sl, &op.quant, co, 1, ex);
            // Quantized inputs are f32-exact; the columns are copies of them.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let cols: Vec<f64> = im2col(&g, &x32).into_iter().map(f64::from).collect();
            let (rows, ncol, cog) = (c / op.groups * op.kernel, n * lo, co / op.groups);
            let wv: Vec<f64> = p.w.iter().map(|&v| v as f64).collect();
            let mut y = bias_rows(w, &sl, &p, ex, co, ncol);
            for grp in 0..op.groups {
                let wg = Mat::rows(&wv[grp * cog * rows..][..cog * rows], cog, rows);
                let cg = Mat::rows(&cols[grp * rows * ncol..][..rows * ncol], rows, ncol);
                matmul(&mut y[grp * cog * ncol..][..cog * ncol], wg, cg, true, threads);
            }
            (y, mac_exps(&p, ex, co))
        }
        Op::Linear(op) => {
            let sl = mac::slots(s, op.bias, &op.quant);
            let p = mac::params(w, &sl, &op.quant, co, op.input_divisor.unwrap_or(1), ex);
            let wv: Vec<f64> = p.w.iter().map(|&v| v as f64).collect();
            let mut y = bias_rows(w, &sl, &p, ex, co, n);
            matmul(&mut y, Mat::rows(&wv, co, c), Mat::rows(x, c, n), true, threads);
            (y, mac_exps(&p, ex, co))
        }
        Op::FakeQuant(fq) => {
            let spec = QuantSpec { bits: fq.bits as u32, signed: fq.signed, narrow: fq.narrow };
            let e = spec.exponent(w[s.params[0]][0]);
            (x.iter().map(|&v| fake_quant64(v, e, &spec)).collect(), Some(vec![e]))
        }
        Op::GlobalSumPool => (x.chunks(l).map(|r| r.iter().sum()).collect(), None),
        Op::GlobalAvgPool(_) => {
            (x.chunks(l).map(|r| r.iter().sum::<f64>() / l as f64).collect(), None)
        }
        Op::Relu => (x.iter().map(|&v| v.max(0.0)).collect(), None),
        Op::Add(_) => (x.iter().zip(&v[s.args[1]]).map(|(a, b)| a + b).collect(), None),
        Op::Flatten => (flatten_forward(x, c, n, l), None),
        Op::Dropout(_) => (x.clone(), None),
        Op::MaxPool1d(p) | Op::AvgPool1d(p) => {
            let win = Window::new(p, l, lo);
            let avg = matches!(s.op, Op::AvgPool1d(_));
            (pool64(&win, x, avg), None)
        }
        Op::BatchNorm(op) => {
            let [gi, bi, mi, vi] = s.params[..] else {
                unreachable!("batch_norm owns four tensors")
            };
            let m = n * l;
            let mut y = x.clone();
            for (ch, row) in y.chunks_mut(m).enumerate() {
                let scale = w[gi][ch] as f64 / (w[vi][ch] as f64 + op.eps.0).sqrt();
                let shift = w[bi][ch] as f64 - w[mi][ch] as f64 * scale;
                row.iter_mut().for_each(|v| *v = *v * scale + shift);
            }
            (y, None)
        }
        Op::Input => unreachable!("inputs are not steps"),
        Op::IntConv1d(_) | Op::IntLinear(_) | Op::Requant(_) | Op::Shl => {
            unreachable!("Plan::new refuses integer programs")
        }
    }
}

/// The output rows filled with the bias: on the accumulator grid, exactly,
/// when the layer is quantized.
fn bias_rows(
    w: &Weights,
    sl: &mac::Slots,
    p: &mac::MacParams,
    ex: Option<i32>,
    co: usize,
    m: usize,
) -> Vec<f64> {
    let mut y = vec![0.0f64; co * m];
    let Some(b) = sl.b else { return y };
    for (r, row) in y.chunks_mut(m).enumerate() {
        let v = match (&p.wexps, ex) {
            (Some(we), Some(ex)) => {
                let e = if we.len() == 1 { we[0] } else { we[r] } + ex;
                fake_quant64(w[b][r] as f64, e, &QuantSpec::BIAS)
            }
            _ => p.b.as_ref().map_or(0.0, |b| b[r] as f64),
        };
        row.fill(v);
    }
    y
}

fn mac_exps(p: &mac::MacParams, ex: Option<i32>, co: usize) -> Option<Vec<i32>> {
    let (we, ex) = (p.wexps.as_ref()?, ex?);
    Some((0..co).map(|r| if we.len() == 1 { we[0] } else { we[r] } + ex).collect())
}

/// `q(x) * 2^e` in f64 (the f32 version's rule: half up, then clamp).
pub fn fake_quant64(x: f64, e: i32, spec: &QuantSpec) -> f64 {
    quantize64(x, e, spec) * 2f64.powi(e)
}

fn pool64(win: &Window, x: &[f64], avg: bool) -> Vec<f64> {
    let rows = x.len() / win.lin;
    let mut y = Vec::with_capacity(rows * win.lout);
    for r in 0..rows {
        let xr = &x[r * win.lin..][..win.lin];
        for o in 0..win.lout {
            let taps = (0..win.kernel)
                .filter_map(|k| (o * win.stride + k).checked_sub(win.pad).filter(|&p| p < win.lin));
            y.push(if avg {
                taps.map(|p| xr[p]).sum::<f64>() / win.kernel as f64
            } else {
                taps.map(|p| xr[p]).fold(f64::NEG_INFINITY, f64::max)
            });
        }
    }
    y
}
