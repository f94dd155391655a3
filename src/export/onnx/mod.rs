//! The integer program as a plain ONNX model (standard opsets only) that
//! ONNX Runtime runs with results bit-identical to potc's integers: the
//! float series in (`input`, `[N, C, L]`, quantized inside the graph exactly as
//! `potc run` quantizes at its boundary), the output integers out as
//! `int32` (`logits`, `[N, classes]`), equal to `potc run`'s. Every integer op works on
//! `int64` tensors; `ops.rs` gives the argument for exactness.
//!
//! The model carries its labels and exponents as metadata (`potc.labels`, a
//! JSON array; `potc.input_exponent`; `potc.logits_exponent`: a logit is the
//! integer times `2^e`).

pub(crate) mod graph;
mod ops;

use std::path::Path;

use prost::Message;

use self::graph::{value_info, Builder};
use self::ops::Emitter;
use crate::ckpt::write_atomic;
use crate::ir::op::Op;
use crate::onnx::proto::{
    data_type, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
};
use crate::program::{CheckedProgram, IntProgram};

/// The ONNX opset the model imports (`ReduceMax` takes its axes as an input
/// from 18 on).
pub const OPSET: i64 = 18;

/// The name of the model's input (the float series) and output.
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "logits";

/// Writes the model to `path` (atomically).
pub fn write(p: &CheckedProgram, path: &Path) -> Result<(), String> {
    let model = model(p.program())?;
    write_atomic(path, |w| w.write_all(&model.encode_to_vec()))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// The ONNX model of a checked program.
pub fn model(p: &IntProgram) -> Result<ModelProto, String> {
    let g = &p.graph;
    let mut b = Builder::default();
    let tensor = |name: &str| -> Result<&[i32], String> {
        p.tensors.get(name).map(|(_, v)| v.as_slice()).ok_or(format!("missing tensor `{name}`"))
    };
    let order = g.order().map_err(|_| "the graph has a cycle".to_string())?;
    let mut e = Emitter { b: &mut b };
    for id in order {
        let node = g.node(id);
        // ONNX names are the IR's spelling (`%c1`), so no value can take
        // the names of the graph's input and output.
        let name = &format!("%{}", node.name);
        let operand_names: Vec<String> =
            g.operands(id).iter().map(|&o| format!("%{}", g.node(o).name)).collect();
        let operands: Vec<&str> = operand_names.iter().map(String::as_str).collect();
        let arg_ty = g.operands(id).first().map(|&o| &g.node(o).ty);
        let (c, l) = arg_ty.map_or((0, 0), |t| (t.shape[0], t.shape.get(1).copied().unwrap_or(1)));
        let elem = node.ty.elem;
        let param = |slot: &str| tensor(&format!("{}.{slot}", node.name));
        let channel_dims: Vec<usize> = if node.ty.shape.len() == 2 {
            vec![node.ty.shape[0], 1]
        } else {
            vec![node.ty.shape[0]]
        };
        match &node.op {
            Op::Input => {
                let (_, exp) = p.input();
                e.quantize_input(INPUT, name, exp, elem);
            }
            Op::IntConv1d(op) => {
                let bias = if op.bias { Some(param("b")?) } else { None };
                e.conv(operands[0], name, op, (c, l, node.ty.shape[1]), param("w")?, bias);
            }
            Op::IntLinear(op) => {
                let bias = if op.bias { Some(param("b")?) } else { None };
                e.linear(operands[0], name, op, c, param("w")?, bias);
            }
            Op::Requant(_) => {
                e.shift_round(operands[0], name, param("shift")?, &channel_dims, elem);
            }
            Op::Shl => {
                let left: Vec<i32> = param("shift")?.iter().map(|&k| -k).collect();
                e.shift_round(operands[0], name, &left, &channel_dims, elem);
            }
            Op::Relu => {
                e.relu(operands[0], name);
            }
            Op::Add(_) => {
                e.add(operands[0], operands[1], name, elem);
            }
            Op::Flatten => {
                e.flatten(operands[0], name);
            }
            Op::GlobalSumPool => {
                e.global_sum_pool(operands[0], name, elem);
            }
            Op::MaxPool1d(pool) => {
                e.max_pool(operands[0], name, pool, (l, node.ty.shape[1]), elem);
            }
            op => {
                return Err(format!(
                    "`%{name}`: {} has no ONNX form in an integer program",
                    op.name()
                ))
            }
        }
    }
    let out = g.output().ok_or("the program has no `return`")?;
    let out_node = g.node(out);
    let to_i32 = vec![("to", graph::Attr::Int(i64::from(data_type::INT32)))];
    // Exact: every integer type has at most 32 bits.
    b.node("Cast", &[&format!("%{}", out_node.name)], to_i32, OUTPUT, Some(OUTPUT));
    let input = g.node(g.inputs()[0]);
    b.graph.name = g.name.clone();
    b.graph.input = vec![value_info(INPUT, data_type::FLOAT, &input.ty.shape, None)];
    b.graph.output = vec![value_info(OUTPUT, data_type::INT32, &out_node.ty.shape, None)];
    wrap(p, b.graph, vec![opset("", OPSET)])
}

/// An opset import.
pub(crate) fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto { domain: domain.into(), version }
}

/// The model around `graph`: potc as producer, the program's labels and
/// exponents as metadata.
pub(crate) fn wrap(
    p: &IntProgram,
    graph: GraphProto,
    opset_import: Vec<OperatorSetIdProto>,
) -> Result<ModelProto, String> {
    let meta = |key: &str, value: String| StringStringEntryProto { key: key.into(), value };
    let labels = serde_json::to_string(&p.labels).map_err(|e| e.to_string())?;
    let mut metadata_props =
        vec![meta("potc.labels", labels), meta("potc.input_exponent", p.input().1.to_string())];
    if let Some(e) = p.output_exponent() {
        metadata_props.push(meta("potc.logits_exponent", e.to_string()));
    }
    Ok(ModelProto {
        ir_version: 8,
        producer_name: "potc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        opset_import,
        metadata_props,
        functions: vec![],
    })
}
