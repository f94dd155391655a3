//! The integer reference interpreter: runs a lowered program (`lower-int`)
//! with integers only, op by op, as the variant docs of [`Op`] define them.
//! It is the reference the JIT and the exports are compared with, so it is
//! written for obviousness: `i64` values, saturation to each value's type
//! after every op, one sample at a time (samples run in parallel).

use rayon::prelude::*;

use crate::ir::op::{Conv1d, Linear, Op};
use crate::ir::{Elem, Graph, NodeId, Type};
use crate::pass::IntStore;

/// One op of the program with its operands and tensors resolved.
struct Step {
    op: Op,
    args: Vec<usize>,
    out: usize,
    /// The operand's `[channels, length]` (length 1 for vectors).
    arg_dims: (usize, usize),
    out_ty: Type,
    /// The op's tensors, in `Op::params` order.
    params: Vec<Vec<i64>>,
}

/// One value of the program: the input or an op's output. Its index in
/// [`IntInterpreter::values`] is its slot (program order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    /// The IR value name (without `%`).
    pub name: String,
    /// The IR op name (`"input"` for the input).
    pub op: &'static str,
    /// The operands' indices into [`IntInterpreter::values`], in position order.
    pub operands: Vec<usize>,
    pub ty: Type,
    /// The op's parameter tensors (`<name>.<slot>`), in `Op::params` order.
    pub params: Vec<String>,
}

/// A program ready to run: its steps in order, over value slots.
pub struct IntInterpreter {
    steps: Vec<Step>,
    /// Every value in program order (slot order).
    values: Vec<ValueInfo>,
    /// The step computing each slot (`None` for the input).
    step_of: Vec<Option<usize>>,
    input: usize,
    output: usize,
    /// Elements of one input sample and of one output sample.
    pub input_len: usize,
    pub output_len: usize,
}

impl IntInterpreter {
    /// The interpreter of a checked program (the form the drivers use).
    pub fn from_checked(p: &crate::program::CheckedProgram) -> Result<IntInterpreter, String> {
        IntInterpreter::new(&p.graph, &p.tensors)
    }

    /// Resolves `g`'s ops and tensors; `tensors` must hold every parameter
    /// (checked by the program loader, see `crate::program`).
    pub fn new(g: &Graph, tensors: &IntStore) -> Result<IntInterpreter, String> {
        let [input] = g.inputs() else {
            return Err("an integer program has one input".into());
        };
        let order = g.order().map_err(|_| "the graph has a cycle".to_string())?;
        let slots: std::collections::HashMap<NodeId, usize> =
            order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let slot = |id: NodeId| slots[&id];
        let mut steps = vec![];
        let mut values = Vec::with_capacity(order.len());
        let mut step_of = Vec::with_capacity(order.len());
        for &id in &order {
            let node = g.node(id);
            let operands = g.operands(id);
            let tys: Vec<&Type> = operands.iter().map(|&o| &g.node(o).ty).collect();
            let specs = if node.op == Op::Input { vec![] } else { node.op.params(&tys) };
            let names: Vec<String> =
                specs.iter().map(|p| format!("{}.{}", node.name, p.slot)).collect();
            values.push(ValueInfo {
                name: node.name.clone(),
                op: node.op.name(),
                operands: operands.iter().map(|&o| slot(o)).collect(),
                ty: node.ty.clone(),
                params: names.clone(),
            });
            if node.op == Op::Input {
                step_of.push(None);
                continue;
            }
            step_of.push(Some(steps.len()));
            let params = names
                .iter()
                .map(|name| {
                    let (_, v) = tensors.get(name).ok_or(format!("missing tensor `{name}`"))?;
                    Ok(v.iter().map(|&x| i64::from(x)).collect())
                })
                .collect::<Result<_, String>>()?;
            let t = tys[0];
            steps.push(Step {
                op: node.op.clone(),
                args: operands.iter().map(|&o| slot(o)).collect(),
                out: slot(id),
                arg_dims: (t.shape[0], t.shape.get(1).copied().unwrap_or(1)),
                out_ty: node.ty.clone(),
                params,
            });
        }
        let out = g.output().ok_or("the program has no `return`")?;
        Ok(IntInterpreter {
            steps,
            values,
            step_of,
            input: slot(*input),
            output: slot(out),
            input_len: g.node(*input).ty.elements() as usize,
            output_len: g.node(out).ty.elements() as usize,
        })
    }

    /// Runs every sample of `x` (sample-major, `input_len` each) and returns
    /// the outputs, sample-major.
    pub fn run(&self, x: &[i64]) -> Vec<i64> {
        let n = x.len() / self.input_len.max(1);
        let outs: Vec<Vec<i64>> = (0..n)
            .into_par_iter()
            .map(|i| self.run_one(&x[i * self.input_len..][..self.input_len]))
            .collect();
        outs.concat()
    }

    /// One sample through the program.
    pub fn run_one(&self, x: &[i64]) -> Vec<i64> {
        std::mem::take(&mut self.trace_one(x)[self.output])
    }

    /// One sample through the program, keeping every value: element `i` is
    /// value `i` of [`values`](Self::values) (the input, then each op's
    /// output, in program order), `[channel, time]` row-major.
    pub fn trace_one(&self, x: &[i64]) -> Vec<Vec<i64>> {
        let mut values: Vec<Vec<i64>> = vec![Vec::new(); self.values.len()];
        values[self.input] = x.to_vec();
        for s in &self.steps {
            let arg = |i: usize| s.args.get(i).map_or(&[][..], |&a| values[a].as_slice());
            let mut y = step(s, arg(0), arg(1));
            saturate(&mut y, s.out_ty.elem);
            values[s.out] = y;
        }
        values
    }

    /// Runs the op computing value `index` alone on the given operand values
    /// (one sample each, in operand order) and saturates to its type: what
    /// [`trace_one`](Self::trace_one) computes for that value.
    ///
    /// # Panics
    /// If `index` is the input or out of range, or the operands do not match
    /// the op's arity and shapes.
    pub fn run_op(&self, index: usize, operands: &[&[i64]]) -> Vec<i64> {
        let s = &self.steps[self.step_of[index].expect("the input is not computed by an op")];
        assert_eq!(
            operands.len(),
            s.args.len(),
            "`{}` takes {} operands",
            self.values[index].name,
            s.args.len()
        );
        for (&a, o) in s.args.iter().zip(operands) {
            let want = self.values[a].ty.elements() as usize;
            assert_eq!(o.len(), want, "operand `{}` has {want} elements", self.values[a].name);
        }
        let mut y = step(s, operands[0], operands.get(1).copied().unwrap_or(&[]));
        saturate(&mut y, s.out_ty.elem);
        y
    }

    /// Every value of the program in program order (slot order).
    pub fn values(&self) -> &[ValueInfo] {
        &self.values
    }

    /// The input's index in [`values`](Self::values).
    pub fn input_index(&self) -> usize {
        self.input
    }

    /// The output's index in [`values`](Self::values).
    pub fn output_index(&self) -> usize {
        self.output
    }
}

/// One op on its operands: `x`, and `z` for binary ops (empty otherwise).
fn step(s: &Step, x: &[i64], z: &[i64]) -> Vec<i64> {
    let (c, l) = s.arg_dims;
    match &s.op {
        // Each MAC layer is monomorphized for its kind of term, so the
        // multiply loops stay plain loops.
        Op::IntConv1d(op) if op.quant.format().shifts() => {
            conv1d(op, x, c, l, s.out_ty.shape[1], &s.params, shift_term)
        }
        Op::IntConv1d(op) => conv1d(op, x, c, l, s.out_ty.shape[1], &s.params, |w, x| w * x),
        Op::IntLinear(op) if op.quant.format().shifts() => linear(op, x, c, &s.params, shift_term),
        Op::IntLinear(op) => linear(op, x, c, &s.params, |w, x| w * x),
        Op::Requant(q) => {
            let spec =
                crate::quant::QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
            let (lo, hi) = (spec.qmin(), spec.qmax());
            let mut y = per_channel(x, l, &s.params[0], shift_round);
            y.iter_mut().for_each(|v| *v = (*v).clamp(lo, hi));
            y
        }
        Op::Shl => per_channel(x, l, &s.params[0], |v, k| shift_round(v, -k)),
        Op::Relu => x.iter().map(|&v| v.max(0)).collect(),
        Op::Add(_) => x.iter().zip(z).map(|(a, b)| a.saturating_add(*b)).collect(),
        Op::Flatten => x.to_vec(),
        Op::GlobalSumPool => x.chunks(l).map(|r| r.iter().sum()).collect(),
        Op::MaxPool1d(p) => {
            let (k, stride, pad) = (p.kernel, p.stride(), p.padding);
            let lo = s.out_ty.shape[1];
            let mut y = Vec::with_capacity(c * lo);
            for row in x.chunks(l) {
                for o in 0..lo {
                    let taps =
                        (0..k).filter_map(|j| (o * stride + j).checked_sub(pad)).filter(|&p| p < l);
                    y.push(taps.map(|p| row[p]).max().expect("a window holds a step"));
                }
            }
            y
        }
        op => unreachable!("the verifier keeps {} out of integer programs", op.name()),
    }
}

/// `acc[co, t] = b[co] + sum over (ci, k) of w[co, ci, k] * x[ci, t*stride + k*dilation - left]`,
/// zero outside the input.
fn conv1d(
    op: &Conv1d,
    x: &[i64],
    c: usize,
    l: usize,
    lo: usize,
    p: &[Vec<i64>],
    term: impl Fn(i64, i64) -> i64,
) -> Vec<i64> {
    let (w, b) = (&p[0], p.get(1));
    let (cg, og) = (c / op.groups, op.out_channels / op.groups);
    let (left, _) = op.padding.amounts(op.kernel, op.dilation);
    let mut y = vec![0i64; op.out_channels * lo];
    for (co, out) in y.chunks_mut(lo).enumerate() {
        out.fill(b.map_or(0, |b| b[co]));
        let group = co / og;
        for ci in 0..cg {
            let xr = &x[(group * cg + ci) * l..][..l];
            for k in 0..op.kernel {
                let wv = w[(co * cg + ci) * op.kernel + k];
                if wv == 0 {
                    continue;
                }
                let off = (k * op.dilation) as isize - left as isize;
                let (t0, t1) = taps(off, op.stride, l, lo);
                // A tap that reads only padding (a dilation wider than the
                // input) has no input slice to start.
                if t0 == t1 {
                    continue;
                }
                if op.stride == 1 {
                    let xs = &xr[(t0 as isize + off) as usize..];
                    out[t0..t1].iter_mut().zip(xs).for_each(|(acc, &xv)| *acc += term(wv, xv));
                } else {
                    for (t, acc) in out.iter_mut().enumerate().take(t1).skip(t0) {
                        *acc += term(wv, xr[((t * op.stride) as isize + off) as usize]);
                    }
                }
            }
        }
    }
    y
}

/// `acc[r] = b[r] + sum over i of w[r, i] * x[i]`.
fn linear(
    op: &Linear,
    x: &[i64],
    c: usize,
    p: &[Vec<i64>],
    term: impl Fn(i64, i64) -> i64,
) -> Vec<i64> {
    let (w, b) = (&p[0], p.get(1));
    (0..op.out_features)
        .map(|r| {
            let dot: i64 = w[r * c..][..c].iter().zip(x).map(|(&w, &x)| term(w, x)).sum();
            dot + b.map_or(0, |b| b[r])
        })
        .collect()
}

/// The term `w * x` of a layer with shift-format weights (`w_format = pot`
/// or `apot`: every weight 0, `±2^k` or `±(2^k + 2^(k-1))`, as the loader
/// checked): the shifts and the add a silicon datapath computes, one shift
/// per set bit of `|w|`.
fn shift_term(w: i64, x: i64) -> i64 {
    let (mut m, mut sum) = (w.unsigned_abs(), 0i64);
    while m != 0 {
        // |x| < 2^32 and every shift <= 30: the sum stays inside i64.
        sum += x << m.trailing_zeros();
        m &= m - 1;
    }
    if w < 0 {
        -sum
    } else {
        sum
    }
}

/// The output steps `t0..t1` whose input index `t * stride + off` lies in
/// `0..l` (the others read zero padding); `t0 <= t1 <= lo`. The JIT's
/// kernels compute their loop bounds with it too.
pub fn taps(off: isize, stride: usize, l: usize, lo: usize) -> (usize, usize) {
    let t0 = if off >= 0 { 0 } else { off.unsigned_abs().div_ceil(stride) };
    let t1 = if off >= l as isize { 0 } else { (l as isize - off) as usize }.div_ceil(stride);
    (t0.min(lo), t1.min(lo).max(t0.min(lo)))
}

/// Applies `f(value, shift[c])` to every element of channel `c`.
fn per_channel(x: &[i64], l: usize, shift: &[i64], f: fn(i64, i64) -> i64) -> Vec<i64> {
    x.chunks(l).zip(shift).flat_map(|(row, &k)| row.iter().map(move |&v| f(v, k))).collect()
}

/// Spec section 4: `(x + 2^(k-1)) >> k` (arithmetic) for `k > 0`, `x << -k`
/// for `k <= 0`; a left shift saturates at the `i64` range (the value is
/// clamped to its type afterwards).
pub fn shift_round(x: i64, k: i64) -> i64 {
    if k > 0 {
        // |x| < 2^63 and k >= 64: x + 2^(k-1) lies in [0, 2^k), so the result is 0.
        if k >= 64 {
            return 0;
        }
        ((i128::from(x) + (1i128 << (k - 1))) >> k) as i64
    } else {
        let s = k.unsigned_abs().min(64) as u32;
        let wide = i128::from(x).checked_shl(s).filter(|w| (w >> s) == i128::from(x));
        wide.map_or(if x < 0 { i64::MIN } else { i64::MAX }, |w| {
            w.clamp(i64::MIN as i128, i64::MAX as i128) as i64
        })
    }
}

/// Clamps every value to the range of `elem` (integers only).
fn saturate(y: &mut [i64], elem: Elem) {
    if let Some((lo, hi)) = elem.range() {
        y.iter_mut().for_each(|v| *v = (*v).clamp(lo, hi));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_round_is_round_half_up() {
        for x in -40i64..=40 {
            for k in 1..6 {
                let want = (x as f64 / (1u64 << k) as f64 + 0.5).floor() as i64;
                assert_eq!(shift_round(x, k), want, "x = {x}, k = {k}");
            }
            assert_eq!(shift_round(x, -3), x * 8);
            assert_eq!(shift_round(x, 0), x);
        }
    }

    #[test]
    fn shifts_saturate_instead_of_wrapping() {
        assert_eq!(shift_round(1, -70), i64::MAX);
        assert_eq!(shift_round(-1, -63), i64::MIN);
        assert_eq!(shift_round(0, -100), 0);
        assert_eq!(shift_round(i64::MAX, 100), 0);
        assert_eq!(shift_round(i64::MIN, 63), -1);
        assert_eq!(shift_round(i64::MAX, 1), 1 << 62);
    }
}
