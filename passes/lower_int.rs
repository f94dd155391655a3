//! `lower-int`: the quantized float model becomes the integer program of spec
//! section 4. Every float value of the quantized model is an integer times a
//! power of two (per tensor, or per channel after a MAC layer); this pass
//! keeps the integers and moves the exponents into the program's tensors:
//!
//! - the input's `fake_quant` becomes the program's integer input;
//! - `conv1d` / `linear` with quantized weights become `int_conv1d` /
//!   `int_linear` with integer weights and the bias on the accumulator grid;
//! - every other `fake_quant` becomes `requant` by `k = e_out - e_in`;
//! - a residual `add` aligns its operands to the smaller exponent with `shl`;
//! - the output is aligned to one exponent (the smallest of its channels).
//!
//! The accumulator analysis of spec section 7 runs here, on the integer
//! weights: a layer whose worst case does not fit its accumulator is refused.

use std::collections::HashMap;

use crate::ir::op::{FakeQuant, LayerQuant, Op};
use crate::ir::verify::is_integer_program;
use crate::ir::{Elem, Graph, NodeId};
use crate::pass::{IntStore, ParamStore, Pass, PassContext, RewriteError, Semantics};
use crate::quant::accum::{int_layer_bound, max_magnitude, signed_bits};
use crate::quant::kernels::{quantize_weights, weight_spec};
use crate::quant::quantizer::quantize64;
use crate::quant::QuantSpec;

pub struct LowerInt;

impl Pass for LowerInt {
    fn name(&self) -> &'static str {
        "lower-int"
    }

    fn summary(&self) -> &'static str {
        "turn the quantized model into the integer program (needs trained weights; --acc-bits)"
    }

    fn description(&self) -> &'static str {
        "Runs on the output of `insert-fake-quant` with the trained weights. The\n\
         numbers stay; their representation changes: each value becomes an\n\
         integer whose power-of-two exponent is stored as `<value>.exp`.\n\
         - the input's fake_quant becomes the integer input (`potc run`\n\
           quantizes data at the boundary, half up, as the simulation does);\n\
         - conv1d/linear become int_conv1d/int_linear with integer weights\n\
           `w` and the bias `b` rounded half up onto the accumulator grid;\n\
         - each other fake_quant becomes `requant` by `k = e_out - e_in` per\n\
           channel (a rounding right shift for k > 0, a left shift else);\n\
         - add aligns its operands to the smaller exponent with `shl`;\n\
         - the output is aligned to its smallest channel exponent.\n\
         A layer whose accumulator bound (spec section 7) exceeds its width\n\
         (`acc_bits`, default --acc-bits 32) is refused, naming the layer.\n\
         \n\
         Before:\n\
         \x20 %x.q = fake_quant(%x) {bits = 8} : f32[1, 16]\n\
         \x20 %c = conv1d(%x.q) {out_channels = 4, kernel = 3, w_bits = 4} : f32[4, 14]\n\
         \x20 %r = relu(%c) : f32[4, 14]\n\
         \x20 %r.q = fake_quant(%r) {bits = 8, signed = false} : f32[4, 14]\n\
         After:\n\
         \x20 %x: i8[1, 16]\n\
         \x20 %c = int_conv1d(%x) {out_channels = 4, kernel = 3, w_bits = 4} : i32[4, 14]\n\
         \x20 %r = relu(%c) : i32[4, 14]\n\
         \x20 %r.q = requant(%r) {bits = 8, signed = false} : u8[4, 14]"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Lowering
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        if is_integer_program(g) {
            return Ok(false);
        }
        let weights = cx.weights.as_deref().ok_or(RewriteError::Model(
            "lower-int needs the trained weights of a model trained with --quant (--weights CKPT)"
                .into(),
        ))?;
        let mut lowering = Lowering {
            src: g,
            w: weights,
            acc_bits: cx.acc_bits.unwrap_or(32),
            out: Graph::new(g.name.clone()),
            ints: IntStore::new(),
            map: HashMap::new(),
        };
        lowering.run()?;
        let Lowering { out, ints, .. } = lowering;
        let store =
            cx.ints.as_deref_mut().expect("lower-int runs with a store for integer tensors");
        store.clear();
        store.extend(ints);
        *g = out;
        Ok(true)
    }
}

/// A value of the integer program: the float value is `int * 2^exps[c]` in
/// channel `c` (one exponent for the whole tensor when `exps.len() == 1`).
#[derive(Clone)]
struct Int {
    id: NodeId,
    exps: Vec<i32>,
}

struct Lowering<'a> {
    src: &'a Graph,
    w: &'a ParamStore,
    acc_bits: usize,
    out: Graph,
    ints: IntStore,
    map: HashMap<NodeId, Int>,
}

impl Lowering<'_> {
    fn run(&mut self) -> Result<(), RewriteError> {
        let src = self.src;
        if src.inputs().len() != 1 {
            return Err(RewriteError::Model(format!(
                "the model has {} inputs; potc lowers models with one",
                src.inputs().len()
            )));
        }
        let order = src.order().map_err(|_| RewriteError::Cycle)?;
        for id in order {
            let lowered = self.node(id)?;
            self.map.insert(id, lowered);
        }
        let result = src.output().ok_or(RewriteError::Model("the model has no `return`".into()))?;
        let out = self.map[&result].clone();
        let out = if out.exps.iter().all(|&e| e == out.exps[0]) {
            out
        } else {
            let low = *out.exps.iter().min().expect("exponents of a value");
            let shifts: Vec<i32> = out.exps.iter().map(|e| e - low).collect();
            let name = format!("{}.out", self.out.node(out.id).name);
            self.shl(out.id, &name, shifts, vec![low])?
        };
        self.out.set_output(out.id);
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<Int, RewriteError> {
        let src = self.src;
        let node = src.node(id);
        let name = node.name.as_str();
        let args: Vec<NodeId> = src.operands(id);
        let arg = |i: usize| self.map.get(&args[i]).cloned();
        match &node.op {
            Op::Input => self.input(id),
            Op::FakeQuant(fq) => match arg(0) {
                Some(a) if src.node(args[0]).op == Op::Input => Ok(a),
                Some(a) => self.requant(id, fq, a),
                None => unreachable!("operands come first in program order"),
            },
            Op::Conv1d(c) => {
                let a = arg(0).expect("operand lowered");
                let mac = Op::IntConv1d(c.clone());
                self.mac(id, mac, &c.quant, c.bias, c.out_channels, 1, a)
            }
            Op::Linear(l) => {
                let a = arg(0).expect("operand lowered");
                let mut int = l.clone();
                int.input_divisor = None;
                let div = l.input_divisor.unwrap_or(1);
                self.mac(id, Op::IntLinear(int), &l.quant, l.bias, l.out_features, div, a)
            }
            // Integer ops on the operand's grid keep its exponents.
            op if op.meaning().same_grid && op.is_integer() => {
                let a = arg(0).expect("operand lowered");
                let exps = match (&node.op, src.node(args[0]).ty.sequence()) {
                    (Op::Flatten, Some((_, l))) if a.exps.len() > 1 => {
                        a.exps.iter().flat_map(|&e| std::iter::repeat_n(e, l)).collect()
                    }
                    _ => a.exps.clone(),
                };
                let id = self.out.add_op(name, node.op.clone(), &[a.id])?;
                self.record(id, &exps);
                Ok(Int { id, exps })
            }
            Op::Dropout(_) => Ok(arg(0).expect("operand lowered")),
            Op::Add(_) => self.add(name, arg(0).expect("lowered"), arg(1).expect("lowered")),
            Op::IntConv1d(_) | Op::IntLinear(_) | Op::Requant(_) | Op::Shl => {
                let reason = format!("{} in a float model", node.op.name());
                Err(RewriteError::Unsupported { node: name.into(), reason })
            }
            _ => Err(RewriteError::NoIntegerForm { node: name.into(), op: node.op.name() }),
        }
    }

    /// The program input: the input's quantizer decides its integer type.
    fn input(&mut self, id: NodeId) -> Result<Int, RewriteError> {
        let src = self.src;
        let node = src.node(id);
        let users = src.users(id);
        let [fq] = users[..] else {
            let reason = "an input must feed exactly one fake_quant (run insert-fake-quant first)";
            return Err(RewriteError::Unsupported {
                node: node.name.clone(),
                reason: reason.into(),
            });
        };
        let Op::FakeQuant(q) = &src.node(fq).op else {
            let reason = "the input is not quantized (run insert-fake-quant first)";
            return Err(RewriteError::Unsupported {
                node: node.name.clone(),
                reason: reason.into(),
            });
        };
        let e = self.act_exp(fq, q)?;
        let ty = crate::ir::Type::new(
            Elem::Int { signed: q.signed, bits: q.bits as u8 },
            node.ty.shape.clone(),
        );
        let id = self.out.add_input(node.name.clone(), ty);
        self.record(id, &[e]);
        Ok(Int { id, exps: vec![e] })
    }

    /// The exponent of an activation quantizer, from its trained threshold.
    fn act_exp(&self, fq: NodeId, q: &FakeQuant) -> Result<i32, RewriteError> {
        let t = self.param(fq, "log2t")?;
        let spec = QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
        Ok(spec.exponent(t[0]))
    }

    fn param(&self, id: NodeId, slot: &str) -> Result<&[f32], RewriteError> {
        let name = format!("{}.{slot}", self.src.node(id).name);
        self.w.get(&name).map(|(_, v)| v.as_slice()).ok_or(RewriteError::MissingParameter(name))
    }

    fn requant(&mut self, id: NodeId, q: &FakeQuant, a: Int) -> Result<Int, RewriteError> {
        let e = self.act_exp(id, q)?;
        let channels = self.out.node(a.id).ty.shape[0];
        let shifts: Vec<i32> = (0..channels).map(|c| e - exp_of(&a.exps, c)).collect();
        let name = self.src.node(id).name.clone();
        let r = self.out.add_op(&name, Op::Requant(q.clone()), &[a.id])?;
        let name = self.out.node(r).name.clone();
        self.ints.insert(format!("{name}.shift"), (vec![channels], shifts));
        self.record(r, &[e]);
        Ok(Int { id: r, exps: vec![e] })
    }

    #[allow(clippy::too_many_arguments)]
    fn mac(
        &mut self,
        id: NodeId,
        mut op: Op,
        q: &LayerQuant,
        bias: bool,
        rows: usize,
        divisor: usize,
        a: Int,
    ) -> Result<Int, RewriteError> {
        let name = self.src.node(id).name.clone();
        let Some(bits) = q.w_bits else {
            return Err(RewriteError::NotQuantized { node: name });
        };
        let ex = single_exp(&a.exps).ok_or_else(|| RewriteError::Unsupported {
            node: name.clone(),
            reason: "its input has one exponent per channel, not one".into(),
        })?;
        let w = self.param(id, "w")?;
        let spec = weight_spec(bits, q.format());
        let qw = quantize_weights(w, rows, divisor as f32, self.param(id, "w_log2t")?, &spec);
        let per = w.len() / rows;
        let wint: Vec<i32> = qw
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 * pow2(-exp_of(&qw.exps, i / per))) as i32)
            .collect();
        let bint: Option<Vec<i32>> = if bias {
            let b = self.param(id, "b")?;
            let e = |r: usize| exp_of(&qw.exps, r) + ex;
            Some(
                (0..rows).map(|r| quantize64(b[r] as f64, e(r), &QuantSpec::BIAS) as i32).collect(),
            )
        } else {
            None
        };
        let acc_bits = q.acc_bits.unwrap_or(self.acc_bits);
        match &mut op {
            Op::IntConv1d(c) => c.quant = int_quant(q, acc_bits),
            Op::IntLinear(l) => l.quant = int_quant(q, acc_bits),
            _ => unreachable!("a MAC op"),
        }
        let x_elem = self.out.node(a.id).ty.elem;
        if x_elem == Elem::F32 {
            let reason = "its input is not an integer".into();
            return Err(RewriteError::Unsupported { node: name, reason });
        }
        let (r, worst) = int_layer_bound(&wint, bint.as_deref(), rows, max_magnitude(x_elem));
        let need = signed_bits(u64::try_from(worst).unwrap_or(u64::MAX));
        if need as usize > acc_bits {
            let (channel, have) = (r, acc_bits);
            return Err(RewriteError::AccumulatorTooNarrow {
                node: name,
                need,
                channel,
                worst,
                have,
            });
        }
        let m = self.out.add_op(&name, op, &[a.id])?;
        let mname = self.out.node(m).name.clone();
        let wshape = self.w[&format!("{name}.w")].0.clone();
        self.ints.insert(format!("{mname}.w"), (wshape, wint));
        if let Some(b) = bint {
            self.ints.insert(format!("{mname}.b"), (vec![rows], b));
        }
        let exps: Vec<i32> = if qw.exps.len() == 1 {
            vec![qw.exps[0] + ex]
        } else {
            qw.exps.iter().map(|e| e + ex).collect()
        };
        self.record(m, &exps);
        Ok(Int { id: m, exps })
    }

    /// `a + b` on the smaller exponent of each channel.
    fn add(&mut self, name: &str, a: Int, b: Int) -> Result<Int, RewriteError> {
        let channels = self.out.node(a.id).ty.shape[0];
        let common: Vec<i32> =
            (0..channels).map(|c| exp_of(&a.exps, c).min(exp_of(&b.exps, c))).collect();
        let mut aligned = vec![];
        for x in [&a, &b] {
            let shifts: Vec<i32> = (0..channels).map(|c| exp_of(&x.exps, c) - common[c]).collect();
            let is_i32 = self.out.node(x.id).ty.elem == Elem::Int { signed: true, bits: 32 };
            if is_i32 && shifts.iter().all(|&s| s == 0) {
                aligned.push(x.id);
            } else {
                let base = format!("{}.align", self.out.node(x.id).name);
                aligned.push(self.shl(x.id, &base, shifts, common.clone())?.id);
            }
        }
        let exps = match single_exp(&common) {
            Some(e) => vec![e],
            None => common,
        };
        let id = self.out.add_op(name, Op::Add(Default::default()), &aligned)?;
        self.record(id, &exps);
        Ok(Int { id, exps })
    }

    fn shl(
        &mut self,
        x: NodeId,
        base: &str,
        shifts: Vec<i32>,
        exps: Vec<i32>,
    ) -> Result<Int, RewriteError> {
        let id = self.out.add_op(base, Op::Shl, &[x])?;
        let name = self.out.node(id).name.clone();
        self.ints.insert(format!("{name}.shift"), (vec![shifts.len()], shifts));
        let exps = single_exp(&exps).map_or(exps, |e| vec![e]);
        self.record(id, &exps);
        Ok(Int { id, exps })
    }

    /// Stores a value's exponents as `<value>.exp`.
    fn record(&mut self, id: NodeId, exps: &[i32]) {
        let name = format!("{}.exp", self.out.node(id).name);
        self.ints.insert(name, (vec![exps.len()], exps.to_vec()));
    }
}

/// The integer layer keeps the weight format and takes its accumulator width
/// (omitted when it is the default 32).
fn int_quant(q: &LayerQuant, acc_bits: usize) -> LayerQuant {
    LayerQuant {
        w_bits: q.w_bits,
        w_per_channel: q.w_per_channel,
        w_format: q.w_format,
        a_bits: None,
        acc_bits: (acc_bits != 32).then_some(acc_bits),
        datapath: None,
    }
}

fn exp_of(exps: &[i32], c: usize) -> i32 {
    if exps.len() == 1 {
        exps[0]
    } else {
        exps[c]
    }
}

fn single_exp(exps: &[i32]) -> Option<i32> {
    exps.iter().all(|&e| e == exps[0]).then(|| exps[0])
}

/// `2^e` in f64, exact for every exponent a quantizer can have.
fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}
