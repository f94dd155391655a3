//! The quantized model in the QONNX dialect (the `Quant` op of the `qonnx`
//! project, which Brevitas exports and FINN and hls4ml read): float `Conv`,
//! `Gemm`, `Add` and pooling, a `Quant` on every weight tensor and every
//! activation, scales `2^e` (per tensor or per channel), zero point 0.
//! Batch norm appears folded, as the integers compute it.
//!
//! Every value is its program integers times `2^e`, computed in float32:
//!
//! - the contract's rounding `floor(x / s + 1/2)` is an `Add` of `s/2` before
//!   a `Quant` with `rounding_mode = FLOOR` (QONNX clamps to the integer
//!   range before it rounds, and a floor commutes with a clamp to integers;
//!   `HALF_UP` rounds negative ties away from zero, unlike the contract);
//! - every value and every accumulation stays below `2^24` steps of its grid
//!   (checked here from the accumulator bounds `potc lower` proves, else the
//!   export is refused), so float32 sums of them are exact;
//! - the input is quantized in `double`, as `potc run` does, then cast back
//!   (its quantized values are exact in float32).
//!
//! So the output, `logits`, equals the fake-quant logits (the integer
//! logits times `2^logits_exponent`) exactly.

use std::path::Path;

use prost::Message;

use super::onnx::graph::{value_info, Attr, Builder};
use super::onnx::{opset, wrap};
use crate::ckpt::write_atomic;
use crate::ir::op::Op;
use crate::ir::{Elem, Graph, NodeId};
use crate::onnx::proto::{data_type, ModelProto};
use crate::program::{CheckedProgram, IntProgram};
use crate::quant::accum::{int_layer_bound, max_magnitude};
use crate::quant::QuantSpec;

/// The domain of QONNX's custom ops.
pub const DOMAIN: &str = "qonnx.custom_op.general";

/// Float32 holds every integer below this exactly.
const EXACT: u128 = 1 << 24;

/// Writes the model to `path` (atomically), with a batch of `batch` samples
/// (FINN takes 1).
pub fn write(p: &CheckedProgram, path: &Path, batch: usize) -> Result<(), String> {
    let model = model(p.program(), batch)?;
    write_atomic(path, |w| w.write_all(&model.encode_to_vec()))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// The exponents of value `name` (one, or one per channel).
fn exps(p: &IntProgram, name: &str) -> Result<Vec<i32>, String> {
    p.tensors
        .get(&format!("{name}.exp"))
        .map(|(_, v)| v.clone())
        .ok_or(format!("`%{name}` has no exponent"))
}

fn pow2(e: i32) -> f32 {
    2f32.powi(e)
}

/// `Quant(x, scale, 0, bits)` of `spec` with `rounding`; the zero point
/// and width in `double` where `x` and the scale are.
fn quant(
    b: &mut Builder,
    [x, scale]: [&str; 2],
    name: &str,
    spec: QuantSpec,
    rounding: &'static str,
    out: Option<&str>,
    double: bool,
) -> String {
    let constant = |b: &mut Builder, v: f32| match double {
        true => b.double(name, f64::from(v)),
        false => b.float(name, &[], &[v]),
    };
    let (zero, bits) = (constant(b, 0.0), constant(b, spec.bits as f32));
    let attrs = vec![
        ("signed", Attr::Int(i64::from(spec.signed))),
        ("narrow", Attr::Int(i64::from(spec.narrow))),
        ("rounding_mode", Attr::Str(rounding)),
    ];
    let y = b.node("Quant", &[x, scale, &zero, &bits], attrs, name, out);
    b.in_domain(DOMAIN);
    y
}

/// The largest magnitude of each value's integers, from the types and the
/// proved accumulator bounds; an error names a value float32 cannot hold.
fn check_bounds(p: &IntProgram) -> Result<(), String> {
    let g = &p.graph;
    let mut bound: std::collections::HashMap<NodeId, u128> = Default::default();
    for id in g.order().map_err(|_| "the graph has a cycle".to_string())? {
        let node = g.node(id);
        let arg = |i: usize| g.operands(id).get(i).map_or(0, |o| bound[o]);
        let tensor =
            |slot: &str| p.tensors.get(&format!("{}.{slot}", node.name)).map(|(_, v)| v.as_slice());
        let typed = max_magnitude(node.ty.elem);
        let b = match &node.op {
            Op::IntConv1d(_) | Op::IntLinear(_) => {
                let w = tensor("w").unwrap_or(&[]);
                int_layer_bound(w, tensor("b"), node.ty.shape[0], arg(0)).1
            }
            Op::Shl => {
                let k = tensor("shift").and_then(|v| v.iter().max().copied()).unwrap_or(0);
                arg(0) << k.clamp(0, 64)
            }
            Op::Add(_) => arg(0) + arg(1),
            Op::GlobalSumPool => {
                arg(0) * g.node(g.operands(id)[0]).ty.shape.get(1).copied().unwrap_or(1) as u128
            }
            Op::Relu | Op::Flatten | Op::MaxPool1d(_) => arg(0),
            _ => typed,
        };
        let b = b.min(typed);
        if b >= EXACT {
            return Err(format!(
                "`%{}`: its integers reach {b}, beyond the 2^24 that float32 holds exactly, so a \
                 QONNX graph (float32) cannot equal the integers; narrower weights or activations \
                 keep it below",
                node.name
            ));
        }
        bound.insert(id, b);
    }
    Ok(())
}

/// The QONNX model of a checked program.
pub fn model(p: &IntProgram, batch: usize) -> Result<ModelProto, String> {
    check_bounds(p)?;
    let g = &p.graph;
    let mut b = Builder::default();
    for id in g.order().map_err(|_| "the graph has a cycle".to_string())? {
        emit(p, g, id, &mut b)?;
    }
    let out = g.output().ok_or("the program has no `return`")?;
    let out_node = g.node(out);
    b.node("Identity", &[&format!("%{}", out_node.name)], vec![], "logits", Some("logits"));
    let input = g.node(g.inputs()[0]);
    b.graph.name = g.name.clone();
    b.graph.input = vec![value_info("input", data_type::FLOAT, &input.ty.shape, Some(batch))];
    b.graph.output = vec![value_info("logits", data_type::FLOAT, &out_node.ty.shape, Some(batch))];
    wrap(p, b.graph, vec![opset("", 13), opset(DOMAIN, 1)])
}

/// The nodes of IR node `id`, its value named `%name`.
fn emit(p: &IntProgram, g: &Graph, id: NodeId, b: &mut Builder) -> Result<(), String> {
    let node = g.node(id);
    let name = &format!("%{}", node.name);
    let operand_names: Vec<String> =
        g.operands(id).iter().map(|&o| format!("%{}", g.node(o).name)).collect();
    let x = operand_names.first().map(String::as_str).unwrap_or("input");
    let (signed, bits) = match node.ty.elem {
        Elem::Int { signed, bits } => (signed, u32::from(bits)),
        Elem::F32 => (true, 32),
    };
    // Per-channel constants: [C, 1] for sequences, [F] for vectors.
    let channels = |v: &[f32]| -> Vec<usize> {
        match (v.len(), node.ty.shape.len()) {
            (1, _) => vec![],
            (n, 2) => vec![n, 1],
            (n, _) => vec![n],
        }
    };
    match &node.op {
        Op::Input => {
            let spec = QuantSpec { bits, signed, narrow: false };
            input(b, name, exps(p, &node.name)?[0], spec);
        }
        Op::IntConv1d(_) | Op::IntLinear(_) => mac(p, g, id, b, x)?,
        Op::Requant(rq) => {
            let e: Vec<f32> = exps(p, &node.name)?.iter().map(|&e| pow2(e)).collect();
            let half: Vec<f32> = e.iter().map(|s| s / 2.0).collect();
            let h = b.float(name, &channels(&half), &half);
            let up = b.node("Add", &[x, &h], vec![], name, None);
            let s = b.float(name, &channels(&e), &e);
            let spec = QuantSpec { bits, signed: rq.signed, narrow: rq.narrow };
            quant(b, [&up, &s], name, spec, "FLOOR", Some(name), false);
        }
        // In float a left shift onto a smaller exponent changes nothing.
        Op::Shl => {
            b.node("Identity", &[x], vec![], name, Some(name));
        }
        Op::Relu => {
            b.node("Relu", &[x], vec![], name, Some(name));
        }
        Op::Add(_) => {
            b.node("Add", &[x, &operand_names[1]], vec![], name, Some(name));
        }
        Op::Flatten => {
            b.node("Flatten", &[x], vec![("axis", Attr::Int(1))], name, Some(name));
        }
        Op::GlobalSumPool => {
            let axes = b.int64(name, &[1], &[2]);
            b.node("ReduceSum", &[x, &axes], vec![("keepdims", Attr::Int(0))], name, Some(name));
        }
        Op::MaxPool1d(pool) => {
            let (l, lo) = (g.node(g.operands(id)[0]).ty.shape[1], node.ty.shape[1]);
            let right = ((lo - 1) * pool.stride() + pool.kernel).saturating_sub(l + pool.padding);
            let attrs = vec![
                ("kernel_shape", Attr::Ints(vec![pool.kernel as i64])),
                ("strides", Attr::Ints(vec![pool.stride() as i64])),
                ("pads", Attr::Ints(vec![pool.padding as i64, right as i64])),
            ];
            b.node("MaxPool", &[x], attrs, name, Some(name));
        }
        op => return Err(format!("`{name}`: {} has no QONNX form", op.name())),
    }
    Ok(())
}

/// The float input quantized as `potc run` does it, in `double`:
/// `Quant(x + 2^(e-1), 2^e, FLOOR)`, then back to float32 (exact: the
/// quantized values are small integers times `2^e`).
fn input(b: &mut Builder, name: &str, e: i32, spec: QuantSpec) {
    let to = |t: i32| vec![("to", Attr::Int(i64::from(t)))];
    let d = b.node("Cast", &["input"], to(data_type::DOUBLE), name, None);
    let half = b.double(name, f64::from(pow2(e - 1)));
    let up = b.node("Add", &[&d, &half], vec![], name, None);
    let scale = b.double(name, f64::from(pow2(e)));
    let q = quant(b, [&up, &scale], name, spec, "FLOOR", None, true);
    b.node("Cast", &[&q], to(data_type::FLOAT), name, Some(name));
}

/// A MAC layer: float `Conv` or `Gemm` over the weights `w * 2^ew` through
/// a `Quant` (an identity on them, stating their grid for FINN and hls4ml),
/// plus the bias `b * 2^e` on the accumulator's grid.
fn mac(p: &IntProgram, g: &Graph, id: NodeId, b: &mut Builder, x: &str) -> Result<(), String> {
    let node = g.node(id);
    let name = &format!("%{}", node.name);
    let tensor =
        |slot: &str| p.tensors.get(&format!("{}.{slot}", node.name)).map(|(_, v)| v.as_slice());
    let w = tensor("w").ok_or(format!("missing tensor `{}.w`", node.name))?;
    let out_e = exps(p, &node.name)?;
    let x_e = exps(p, &g.node(g.operands(id)[0]).name)?;
    let rows = node.ty.shape[0];
    let acc_e = |r: usize| out_e[if out_e.len() == 1 { 0 } else { r }];
    let w_e = |r: usize| acc_e(r) - x_e[0];
    let per = w.len() / rows;
    let wf: Vec<f32> = w.iter().enumerate().map(|(i, &v)| v as f32 * pow2(w_e(i / per))).collect();
    let scales: Vec<f32> = (0..rows).map(|r| pow2(w_e(r))).collect();
    // The weights' integer range: the top magnitude's bits and a sign.
    let q = node.op.int_mac_quant().expect("a MAC layer");
    let top = q.weight_limit().unwrap_or(1) as u64;
    let spec = QuantSpec { bits: 65 - top.leading_zeros(), signed: true, narrow: true };
    let (wdims, sdims) = match &node.op {
        Op::IntConv1d(c) => (vec![rows, per / c.kernel, c.kernel], vec![rows, 1, 1]),
        _ => (vec![rows, per], vec![rows, 1]),
    };
    let wt = b.float(&format!("{name}.w"), &wdims, &wf);
    let ws = b.float(name, &sdims, &scales);
    let mut inputs = vec![x.to_string(), quant(b, [&wt, &ws], name, spec, "ROUND", None, false)];
    if let Some(bias) = tensor("b") {
        let bf: Vec<f32> =
            bias.iter().enumerate().map(|(r, &v)| v as f32 * pow2(acc_e(r))).collect();
        inputs.push(b.float(&format!("{name}.b"), &[rows], &bf));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    match &node.op {
        Op::IntConv1d(c) => {
            let (l, lo) = (g.node(g.operands(id)[0]).ty.shape[1], node.ty.shape[1]);
            let (left, _) = c.padding.amounts(c.kernel, c.dilation);
            let span = (lo - 1) * c.stride + (c.kernel - 1) * c.dilation + 1;
            let right = span.saturating_sub(l + left);
            let attrs = vec![
                ("kernel_shape", Attr::Ints(vec![c.kernel as i64])),
                ("strides", Attr::Ints(vec![c.stride as i64])),
                ("dilations", Attr::Ints(vec![c.dilation as i64])),
                ("pads", Attr::Ints(vec![left as i64, right as i64])),
                ("group", Attr::Int(c.groups as i64)),
            ];
            b.node("Conv", &inputs, attrs, name, Some(name));
        }
        _ => {
            b.node("Gemm", &inputs, vec![("transB", Attr::Int(1))], name, Some(name));
        }
    }
    Ok(())
}
