//! `manifest.json`: what every file holds.
//!
//! ```text
//! { "format": "potc-vectors", "version": 1,
//!   "program": model name, "n": samples, "source": where the samples came from,
//!   "classes": class names in output order, "npz": "vectors.npz",
//!   "labels": { "npz_key", "dtype": "int64", "shape": [N], "unknown": -1 },
//!   "input": value name, "output": value name,
//!   "values": [ { "name", "op" ("input" for the input), "operands": [value names],
//!                 "attrs": {every attribute, conv padding as [left, right]},
//!                 "params": [tensor names], "shape", "type" ("i8", "u4", "i32"),
//!                 "bits", "signed", "exponent": [e] or one per channel (the real
//!                 number is int * 2^e; absent when the program has none),
//!                 "npz_key", "npz_shape": [N, *shape], "dtype" (NumPy name),
//!                 "hex", "hex_digits", "order": ["sample", "channel", "time"] } ],
//!   "params": [ { "name": "<node>.<slot>", "value": node, "slot", "shape", "type",
//!                 "bits", "signed", "hex", "hex_digits", "order": dimension names,
//!                 "encoding" (power-of-two weights, written as codes: 0 is 0,
//!                 c != 0 is sign(c) * 2^(|c| - 1)) } ] }
//! ```
//! Values are in program order (every operand before its user).

use serde_json::{json, Map, Value};

use super::encode::IntType;
use super::{Array, Samples, NPZ_FILE};
use crate::backend::interp::IntInterpreter;
use crate::ir::op::{AttrVisitor, Op, Padding, F64};
use crate::ir::{Elem, Node};
use crate::program::IntProgram;

/// The parameter tensors in program order, each in the narrowest type its
/// role guarantees (weights `i<w_bits>`, as codes for the shift formats, biases the
/// accumulator's type, shifts `i8`), or `i32` (as stored) when a value falls
/// outside it.
pub(super) fn param_arrays(p: &IntProgram, interp: &IntInterpreter) -> Result<Vec<Array>, String> {
    let mut out = vec![];
    for v in interp.values() {
        let node = node(p, &v.name);
        let rank1 = interp.values()[v.operands.first().copied().unwrap_or(0)].ty.shape.len() == 1;
        for name in &v.params {
            let (shape, data) =
                p.tensors.get(name).ok_or_else(|| format!("missing tensor `{name}`"))?;
            let slot = &name[v.name.len() + 1..];
            // Shift-format weights are written as their codes.
            let format = node.op.int_mac_quant().map(|q| q.format()).filter(|_| slot == "w");
            let encoding = format.and_then(|f| f.encoding());
            let data: Vec<i64> = match format.filter(|f| f.shifts()) {
                Some(f) => data.iter().map(|&x| i64::from(f.code(x))).collect(),
                None => data.iter().map(|&x| i64::from(x)).collect(),
            };
            let (ty, dims) = role(&node.op, slot, node.ty.elem, rank1);
            let ty = ty.filter(|t| t.fits(&data)).unwrap_or(IntType::I32);
            out.push(super::Array {
                name: name.clone(),
                stem: super::file_stem(name),
                ty,
                shape: shape.clone(),
                dims,
                data,
                encoding,
            });
        }
    }
    Ok(out)
}

/// A parameter's preferred type and dimension names. Weights take
/// `i<w_bits>`: integers, or shift-format codes, which fit it too.
fn role(op: &Op, slot: &str, acc: Elem, rank1: bool) -> (Option<IntType>, Vec<&'static str>) {
    let weight = |q: &crate::ir::op::LayerQuant| {
        Some(IntType { signed: true, bits: q.weight_bits() as u32 })
    };
    let channel = if rank1 { "feature" } else { "channel" };
    match (op, slot) {
        (Op::IntConv1d(c), "w") => (weight(&c.quant), vec!["out_channel", "in_channel", "tap"]),
        (Op::IntLinear(l), "w") => (weight(&l.quant), vec!["out_feature", "in_feature"]),
        (Op::IntConv1d(_), "b") => (IntType::of(acc), vec!["out_channel"]),
        (Op::IntLinear(_), "b") => (IntType::of(acc), vec!["out_feature"]),
        (_, "shift") => (Some(IntType { signed: true, bits: 8 }), vec![channel]),
        _ => (None, vec!["index"; 1]),
    }
}

fn node<'a>(p: &'a IntProgram, name: &str) -> &'a Node {
    let id = p.graph.node_ids().find(|&id| p.graph.node(id).name == name);
    p.graph.node(id.expect("the interpreter's values are the graph's"))
}

/// The manifest text (pretty JSON, a final newline).
pub(super) fn render(
    p: &IntProgram,
    interp: &IntInterpreter,
    data: &Samples,
    values: &[Array],
    params: &[Array],
    labels_key: &str,
) -> String {
    let infos = interp.values();
    let value_entries: Vec<Value> = infos
        .iter()
        .zip(values)
        .map(|(v, a)| {
            let mut attrs = Attrs(Map::new());
            let mut op = node(p, &v.name).op.clone();
            op.visit_attrs(&mut attrs);
            if let Op::IntConv1d(c) = &op {
                let (l, r) = c.padding.amounts(c.kernel, c.dilation);
                attrs.0.insert("padding".into(), json!([l, r]));
            }
            let mut e = json!({
                "name": v.name,
                "op": v.op,
                "operands": v.operands.iter().map(|&o| &infos[o].name).collect::<Vec<_>>(),
                "attrs": attrs.0,
                "params": v.params,
            });
            describe(&mut e, a);
            if let Some((_, exp)) = p.tensors.get(&format!("{}.exp", v.name)) {
                e["exponent"] = json!(exp);
            }
            e["npz_key"] = json!(a.stem);
            e["npz_shape"] = json!(super::with_samples(data.n, &a.shape));
            e["dtype"] = json!(a.ty.numpy());
            e["order"] = json!(std::iter::once("sample").chain(a.dims.clone()).collect::<Vec<_>>());
            e
        })
        .collect();
    let param_entries: Vec<Value> = params
        .iter()
        .map(|a| {
            let (value, slot) = a.name.rsplit_once('.').unwrap_or((&a.name, ""));
            let mut e = json!({ "name": a.name, "value": value, "slot": slot });
            describe(&mut e, a);
            e["order"] = json!(a.dims);
            if let Some(enc) = a.encoding {
                e["encoding"] = json!(enc);
            }
            e
        })
        .collect();
    let manifest = json!({
        "format": "potc-vectors",
        "version": 1,
        "program": p.graph.name,
        "n": data.n,
        "source": data.source,
        "classes": p.labels,
        "npz": NPZ_FILE,
        "labels": { "npz_key": labels_key, "dtype": "int64", "shape": [data.n], "unknown": -1 },
        "input": infos[interp.input_index()].name,
        "output": infos[interp.output_index()].name,
        "values": value_entries,
        "params": param_entries,
    });
    let mut out = String::new();
    pretty(&manifest, 0, &mut out);
    out + "\n"
}

/// The order keys are written in (the others follow in name order).
const KEY_ORDER: &[&str] = &[
    "format",
    "version",
    "program",
    "n",
    "source",
    "classes",
    "npz",
    "labels",
    "input",
    "output",
    "name",
    "value",
    "slot",
    "op",
    "operands",
    "attrs",
    "values",
    "params",
    "shape",
    "type",
    "bits",
    "signed",
    "exponent",
    "npz_key",
    "npz_shape",
    "dtype",
    "hex",
    "hex_digits",
    "order",
];

/// JSON with two-space indents, keys in [`KEY_ORDER`] (an op's attributes
/// in name order), and arrays of scalars on one line.
fn pretty(v: &Value, depth: usize, out: &mut String) {
    pretty_in(v, depth, true, out);
}

fn pretty_in(v: &Value, depth: usize, ranked: bool, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let rank = |k: &str| {
                let at = KEY_ORDER.iter().position(|&o| o == k);
                at.filter(|_| ranked).unwrap_or(usize::MAX)
            };
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| (rank(k), k.as_str()));
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&format!("{}{}: ", pad(depth + 1), Value::from(k.as_str())));
                pretty_in(&m[k.as_str()], depth + 1, k.as_str() != "attrs", out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(a) if a.iter().any(|e| e.is_object() || e.is_array()) => {
            out.push_str("[\n");
            for (i, e) in a.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                pretty_in(e, depth + 1, ranked, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(Value::to_string).collect();
            out.push_str(&format!("[{}]", items.join(", ")));
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The fields values and parameters share.
fn describe(e: &mut Value, a: &Array) {
    e["shape"] = json!(a.shape);
    e["type"] = json!(a.ty.to_string());
    e["bits"] = json!(a.ty.bits);
    e["signed"] = json!(a.ty.signed);
    e["hex"] = json!(a.hex_file());
    e["hex_digits"] = json!(a.ty.hex_digits());
}

/// Every attribute of an op, defaults included.
struct Attrs(Map<String, Value>);

impl AttrVisitor for Attrs {
    fn uint(&mut self, name: &'static str, value: &mut usize, _: Option<usize>) {
        self.0.insert(name.into(), json!(value));
    }
    fn opt_uint(&mut self, name: &'static str, value: &mut Option<usize>) {
        if let Some(v) = value {
            self.0.insert(name.into(), json!(v));
        }
    }
    fn boolean(&mut self, name: &'static str, value: &mut bool, _: bool) {
        self.0.insert(name.into(), json!(value));
    }
    fn float(&mut self, name: &'static str, value: &mut F64, _: f64) {
        self.0.insert(name.into(), json!(value.0));
    }
    fn padding(&mut self, name: &'static str, value: &mut Padding, _: Padding) {
        let v = match *value {
            Padding::Same => json!("same"),
            Padding::Explicit { left, right } => json!([left, right]),
        };
        self.0.insert(name.into(), v);
    }
    fn ident(
        &mut self,
        name: &'static str,
        value: &mut Option<&'static str>,
        _: &'static [&'static str],
    ) {
        if let Some(v) = value {
            self.0.insert(name.into(), json!(v));
        }
    }
}
