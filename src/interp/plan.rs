//! A graph compiled for execution: ops in topological order over numbered
//! value slots, with the per-sample dims of every slot and the index of every
//! parameter it reads.

use crate::ir::op::{Init, Op};
use crate::ir::{Graph, Type};
use std::collections::HashMap;

/// Per-sample dims of a value: `(channels, length)`; a `[F]` value is `(F, 1)`.
pub type Dims = (usize, usize);

pub fn dims(t: &Type) -> Dims {
    match t.shape[..] {
        [c, l] => (c, l),
        [f] => (f, 1),
        _ => unreachable!("the verifier keeps ranks at 1 or 2"),
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub op: Op,
    pub args: Vec<usize>,
    pub out: usize,
    /// Indices into `Plan::params`, in the op's slot order.
    pub params: Vec<usize>,
    pub arg_dims: Vec<Dims>,
    pub out_dims: Dims,
    /// Simulated batch-norm folding (`--bn fold-sim`): a quantized conv1d
    /// whose only user is a batch_norm quantizes its weights folded with
    /// that batch norm's running statistics.
    pub fold: Option<Fold>,
    /// Set on that batch_norm: once statistics are frozen (and at
    /// inference) the conv computes its value and it passes values through.
    pub folded: bool,
    /// On that batch_norm: the paired conv's bias (which moves only the
    /// running mean while statistics update).
    pub fold_bias: Option<usize>,
    /// A batch_norm whose only reader was a relu computes `max(0, .)` itself
    /// (the relu step is gone; this step writes the relu's slot).
    pub relu: bool,
}

/// The batch norm a conv1d's weights are folded with, by parameter index.
#[derive(Debug, Clone, Copy)]
pub struct Fold {
    pub gamma: usize,
    pub beta: usize,
    pub mean: usize,
    pub var: usize,
    pub eps: f64,
}

impl Fold {
    /// The batch norm's current parameters and statistics.
    pub fn stats<'a>(&self, w: &'a [Vec<f32>]) -> crate::quant::fold::BnStats<'a> {
        crate::quant::fold::BnStats {
            gamma: &w[self.gamma],
            beta: &w[self.beta],
            mean: &w[self.mean],
            var: &w[self.var],
            eps: self.eps,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub trainable: bool,
    pub init: Init,
}

impl ParamInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub slots: usize,
    pub input: usize,
    pub input_dims: Dims,
    pub output: usize,
    pub output_dims: Dims,
    pub params: Vec<ParamInfo>,
    /// Per slot, the index of the last step that reads it: inference frees
    /// each value there.
    pub last_use: Vec<usize>,
    /// Elements of the largest buffer a step allocates per sample (a value,
    /// or a convolution's im2col columns): batches are sized by it.
    pub sample_elements: u64,
}

/// Elements one buffer of a batch may hold (2 GiB of f32; the exact
/// evaluator's f64 copy of it is twice that): the interpreters allocate
/// whole batch buffers, so a long series must not ask for more.
pub const MAX_BUFFER_ELEMENTS: u64 = 1 << 29;

/// Elements per sample of the largest buffer `s` allocates: its value, or
/// for a convolution its im2col columns `[C*K, L']`.
fn step_elements(s: &Step) -> u64 {
    let (c, l) = s.out_dims;
    let out = c as u64 * l as u64;
    match &s.op {
        Op::Conv1d(conv) => out.max(s.arg_dims[0].0 as u64 * conv.kernel as u64 * l as u64),
        _ => out,
    }
}

/// The step with the largest per-sample buffer, and its size in elements.
fn largest_step(steps: &[Step]) -> Option<(&Step, u64)> {
    steps.iter().map(|s| (s, step_elements(s))).max_by_key(|&(_, e)| e)
}

/// `n` elements of f32, for messages: `5.1 GB`.
pub fn gigabytes(elements: u64) -> String {
    format!("{:.1} GB", elements as f64 * 4.0 / 1e9)
}

impl Plan {
    /// Compiles a verified graph with exactly one input.
    pub fn new(g: &Graph) -> Result<Plan, String> {
        let [input] = g.inputs() else {
            return Err(format!(
                "the model has {} inputs; potc runs models with one",
                g.inputs().len()
            ));
        };
        if crate::ir::verify::is_integer_program(g) {
            return Err(format!(
                "`{}` is an integer program; run it with `potc run` (the float interpreter runs float models)",
                g.name
            ));
        }
        let order = g.order().map_err(|_| "the graph has a cycle".to_string())?;
        let slot: HashMap<_, _> = order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let params: Vec<ParamInfo> = g
            .params()
            .into_iter()
            .map(|(name, p)| ParamInfo {
                name,
                shape: p.shape,
                trainable: p.trainable,
                init: p.init,
            })
            .collect();
        let index: HashMap<&str, usize> =
            params.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        let mut steps = vec![];
        for &id in &order {
            let node = g.node(id);
            if node.op == Op::Input {
                continue;
            }
            let operands = g.operands(id);
            let tys: Vec<&Type> = operands.iter().map(|&o| &g.node(o).ty).collect();
            let params = node
                .op
                .params(&tys)
                .iter()
                .map(|p| index[format!("{}.{}", node.name, p.slot).as_str()])
                .collect();
            steps.push(Step {
                name: node.name.clone(),
                op: node.op.clone(),
                args: operands.iter().map(|o| slot[o]).collect(),
                out: slot[&id],
                params,
                arg_dims: tys.iter().map(|t| dims(t)).collect(),
                out_dims: dims(&node.ty),
                fold: None,
                folded: false,
                fold_bias: None,
                relu: false,
            });
        }
        pair_folds(g, &mut steps, &index);
        let output = g.output().ok_or("the model has no output")?;
        let steps = relu_into_quantizer(steps, slot[&output]);
        let steps = relu_into_batch_norm(steps, slot[&output]);
        let mut last_use = vec![0; order.len()];
        for (i, s) in steps.iter().enumerate() {
            for &a in &s.args {
                last_use[a] = i;
            }
        }
        let sample_elements = largest_step(&steps).map_or(0, |(_, e)| e);
        if let Some((s, e)) = largest_step(&steps).filter(|&(_, e)| e > MAX_BUFFER_ELEMENTS) {
            return Err(format!(
                "`%{}` needs {} for a single sample ({e} values), beyond the limit of {} per \
                 buffer; use shorter series or fewer channels",
                s.name,
                gigabytes(e),
                gigabytes(MAX_BUFFER_ELEMENTS)
            ));
        }
        Ok(Plan {
            sample_elements,
            steps,
            slots: order.len(),
            input: slot[input],
            input_dims: dims(&g.node(*input).ty),
            output: slot[&output],
            output_dims: dims(&g.node(output).ty),
            params,
            last_use,
        })
    }

    /// The most samples (up to `want`, at least 1) whose buffers stay
    /// within [`MAX_BUFFER_ELEMENTS`]: evaluation and calibration run
    /// batches of this size.
    pub fn batch_within(&self, want: usize) -> usize {
        let fit = MAX_BUFFER_ELEMENTS / self.sample_elements.max(1);
        want.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
    }

    /// Refuses a training batch whose buffers exceed [`MAX_BUFFER_ELEMENTS`].
    pub fn check_batch(&self, n: usize) -> Result<(), String> {
        if self.batch_within(n) >= n {
            return Ok(());
        }
        let (s, e) = largest_step(&self.steps).expect("a plan that needs memory has steps");
        Err(format!(
            "a batch of {n} samples needs {} at `%{}`, beyond the limit of {} per buffer; \
             at most {} samples fit (--batch-size)",
            gigabytes(e.saturating_mul(n as u64)),
            s.name,
            gigabytes(MAX_BUFFER_ELEMENTS),
            self.batch_within(n)
        ))
    }

    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
}

/// Pairs each quantized conv1d with the batch norm that is its only user.
fn pair_folds(g: &Graph, steps: &mut [Step], index: &HashMap<&str, usize>) {
    let at: HashMap<&str, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut pairs = vec![];
    for id in g.node_ids() {
        let node = g.node(id);
        let Op::Conv1d(c) = &node.op else { continue };
        let users = g.users(id);
        let [bn] = users.as_slice() else { continue };
        let Op::BatchNorm(b) = &g.node(*bn).op else { continue };
        if c.quant.w_bits.is_none() || g.output() == Some(id) {
            continue;
        }
        let bn_name = &g.node(*bn).name;
        let p = |slot: &str| index[format!("{bn_name}.{slot}").as_str()];
        let fold = Fold {
            gamma: p("gamma"),
            beta: p("beta"),
            mean: p("mean"),
            var: p("var"),
            eps: b.eps.0,
        };
        pairs.push((at[node.name.as_str()], at[bn_name.as_str()], fold));
    }
    for (conv, bn, fold) in pairs {
        let bias = match &steps[conv].op {
            Op::Conv1d(c) if c.bias => Some(steps[conv].params[1]),
            _ => None,
        };
        steps[conv].fold = Some(fold);
        steps[bn].folded = true;
        steps[bn].fold_bias = bias;
    }
}

/// A relu whose only reader is an unsigned `fake_quant` is that quantizer's
/// clamp at 0 (`fq(relu(x)) == fq(x)`, and the gradients agree but at
/// `x == 0`): the quantizer reads the relu's input and the relu is skipped,
/// saving a pass over memory forward and backward.
fn relu_into_quantizer(mut steps: Vec<Step>, output: usize) -> Vec<Step> {
    let readers = readers(&steps);
    let mut skip = vec![false; steps.len()];
    for i in 0..steps.len() {
        let Op::FakeQuant(q) = &steps[i].op else { continue };
        let Some(r) = steps.iter().position(|s| s.out == steps[i].args[0]) else { continue };
        if !q.signed
            && steps[r].op == Op::Relu
            && readers[&steps[r].out] == 1
            && steps[r].out != output
        {
            steps[i].args[0] = steps[r].args[0];
            skip[r] = true;
        }
    }
    steps.into_iter().zip(skip).filter(|(_, s)| !s).map(|(step, _)| step).collect()
}

/// A relu that alone reads a (not folded) batch_norm's output runs inside
/// it: one pass over memory less forward and backward.
fn relu_into_batch_norm(mut steps: Vec<Step>, output: usize) -> Vec<Step> {
    let readers = readers(&steps);
    let mut skip = vec![false; steps.len()];
    for r in 0..steps.len() {
        if steps[r].op != Op::Relu {
            continue;
        }
        let Some(b) = steps.iter().position(|s| s.out == steps[r].args[0]) else { continue };
        let bn = &steps[b];
        if matches!(bn.op, Op::BatchNorm(_))
            && !bn.folded
            && readers[&bn.out] == 1
            && bn.out != output
        {
            steps[b].out = steps[r].out;
            steps[b].relu = true;
            skip[r] = true;
        }
    }
    steps.into_iter().zip(skip).filter(|(_, s)| !s).map(|(step, _)| step).collect()
}

/// How many steps read each slot.
fn readers(steps: &[Step]) -> HashMap<usize, usize> {
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for s in steps {
        for &a in &s.args {
            *readers.entry(a).or_default() += 1;
        }
    }
    readers
}
