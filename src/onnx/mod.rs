//! ONNX import: a network exported from PyTorch (`torch.onnx.export`, either
//! exporter) becomes a float `.pot` graph and its parameters.
//!
//! The importer walks the nodes in order. Every value is either a constant
//! known now (initializers, and the shape arithmetic exporters emit, folded
//! as it comes: [`fold`]) or a tensor of the network, which becomes an op of
//! the graph ([`layers`]). The batch axis of every network tensor is dropped:
//! potc's values are one sample, `[C, L]` or `[F]`. Anything potc cannot
//! express is an error naming the node; nothing is approximated.

mod fold;
mod layers;
pub mod proto;
mod tensor;

use crate::ir::graph::is_value_name;
use crate::ir::{Graph, NodeId, Type};
use proto::{attr_type, AttributeProto, ModelProto, NodeProto};
use std::collections::HashMap;
pub use tensor::{Const, Data};

/// The oldest default-domain opset the importer reads.
pub const MIN_OPSET: i64 = 13;

/// The ONNX ops the importer maps to potc ops (the rest of what it reads is
/// folded away as constant shape arithmetic: [`fold::FOLDED`]).
pub const NETWORK_OPS: &[&str] = &[
    "Conv",
    "BatchNormalization",
    "Relu",
    "Add",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Gemm",
    "MatMul",
    "Dropout",
    "Identity",
    "Pad",
];

/// What an import yields.
#[derive(Debug)]
pub struct Imported {
    pub graph: Graph,
    /// Every parameter under its IR name (`c1.w`), with its shape.
    pub params: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// For each op, the ONNX node it came from, as `Conv "/conv1/Conv"`.
    pub sources: HashMap<NodeId, String>,
    /// `producer_name producer_version` and the default-domain opset.
    pub producer: String,
    pub opset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("{0}")]
    Model(String),
    /// `node` names the node and its op type: `"/conv1/Conv" (Conv)`.
    #[error("node {node}: {message}")]
    Node { node: String, message: String },
}

/// Choices the file cannot make.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// The model's name in the `.pot` text.
    pub name: String,
    /// The series length, where the file leaves it symbolic.
    pub length: Option<usize>,
}

/// Decodes and imports an ONNX model.
pub fn import(bytes: &[u8], opts: &ImportSettings) -> Result<Imported, ImportError> {
    let model = <ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| ImportError::NotOnnx(format!("the protobuf does not decode ({e})")))?;
    let opset = check_model(&model)?;
    let graph = model.graph.as_ref().expect("check_model found the graph");
    let mut im = Importer::new(&opts.name, opset, use_counts(graph));
    im.initializers(graph)?;
    im.input(graph, opts.length)?;
    for node in &graph.node {
        im.node(node)?;
    }
    im.output(graph)?;
    let producer = format!("{} {}", model.producer_name, model.producer_version);
    Ok(im.finish(producer.trim().to_string()))
}

/// The default-domain opset, once the file is known to be an ONNX model
/// potc can read.
fn check_model(m: &ModelProto) -> Result<i64, ImportError> {
    let Some(g) = m.graph.as_ref().filter(|_| m.ir_version > 0) else {
        return Err(ImportError::NotOnnx("there is no graph or IR version".into()));
    };
    let opset = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| ImportError::NotOnnx("it imports no default-domain opset".into()))?;
    if opset < MIN_OPSET {
        return Err(ImportError::Model(format!(
            "the model uses opset {opset}; potc imports opset {MIN_OPSET} and newer \
             (export with opset_version={MIN_OPSET} or later)"
        )));
    }
    if !g.sparse_initializer.is_empty() {
        return Err(ImportError::Model("sparse initializers are not supported".into()));
    }
    if g.node.is_empty() {
        return Err(ImportError::Model("the graph has no nodes".into()));
    }
    Ok(opset)
}

/// How often each value name is read (by nodes and as a graph output).
fn use_counts(g: &proto::GraphProto) -> HashMap<String, usize> {
    let mut uses = HashMap::new();
    let read = g.node.iter().flat_map(|n| n.input.iter()).chain(g.output.iter().map(|o| &o.name));
    for name in read.filter(|n| !n.is_empty()) {
        *uses.entry(name.clone()).or_default() += 1;
    }
    uses
}

/// A value of the ONNX graph as the importer knows it.
#[derive(Debug, Clone)]
enum Val {
    Const(Const),
    /// A network tensor: the op computing it, and its ONNX shape without the
    /// batch axis. potc's value has the same elements in the same order; its
    /// shape may differ by unit axes (`[C]` where ONNX has `[C, 1]`).
    Net {
        id: NodeId,
        shape: Vec<usize>,
    },
    /// A network series `[C, L]` zero-padded along time by a `Pad` node,
    /// which only a `Conv` may read: the zeros become its padding.
    Padded {
        id: NodeId,
        shape: Vec<usize>,
        left: usize,
        right: usize,
    },
}

/// The batch axis of the network input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Batch {
    Symbolic,
    Fixed(i64),
}

struct Importer {
    g: Graph,
    opset: i64,
    vals: HashMap<String, Val>,
    uses: HashMap<String, usize>,
    batch: Batch,
    params: Vec<(NodeId, &'static str, Vec<usize>, Vec<f32>)>,
    sources: HashMap<NodeId, String>,
}

impl Importer {
    fn new(name: &str, opset: i64, uses: HashMap<String, usize>) -> Importer {
        Importer {
            g: Graph::new(name),
            opset,
            vals: HashMap::new(),
            uses,
            batch: Batch::Symbolic,
            params: vec![],
            sources: HashMap::new(),
        }
    }

    fn initializers(&mut self, g: &proto::GraphProto) -> Result<(), ImportError> {
        for t in &g.initializer {
            let c = tensor::decode(t)
                .map_err(|e| ImportError::Model(format!("initializer \"{}\" {e}", t.name)))?;
            self.vals.insert(t.name.clone(), Val::Const(c));
        }
        Ok(())
    }

    /// The one network input (graph inputs that are initializers are
    /// constants): float `[batch, C, L]`.
    fn input(&mut self, g: &proto::GraphProto, length: Option<usize>) -> Result<(), ImportError> {
        let inputs: Vec<_> = g.input.iter().filter(|i| !self.vals.contains_key(&i.name)).collect();
        let [input] = inputs.as_slice() else {
            return Err(ImportError::Model(format!(
                "the model has {} inputs; potc imports networks with one input, a batch of series",
                inputs.len()
            )));
        };
        let bad = |m: String| ImportError::Model(format!("input \"{}\": {m}", input.name));
        let tt = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let Some(tt) = tt.filter(|t| t.elem_type == proto::data_type::FLOAT) else {
            return Err(bad("potc imports float32 inputs".into()));
        };
        let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
        if dims.len() != 3 {
            return Err(bad(format!(
                "has {} axes; potc imports 1-D networks whose input is [batch, channels, length]",
                dims.len()
            )));
        }
        self.batch = match &dims[0].value {
            Some(proto::DimValue::DimValue(n)) if *n > 0 => Batch::Fixed(*n),
            _ => Batch::Symbolic,
        };
        let channels =
            fixed(&dims[1]).ok_or_else(|| bad("the channel count is not fixed".into()))?;
        let length = match (fixed(&dims[2]), length) {
            (Some(l), Some(given)) if l != given => {
                return Err(bad(format!("the file fixes the length at {l}, not {given}")))
            }
            (Some(l), _) | (None, Some(l)) => l,
            (None, None) => {
                return Err(bad("the length is symbolic; give one with --length".into()))
            }
        };
        if channels == 0 || length == 0 {
            return Err(bad("has an empty axis".into()));
        }
        let name = self.value_name(&input.name, "", "x");
        let id = self.g.add_input(name, Type::f32(vec![channels, length]));
        self.vals.insert(input.name.clone(), Val::Net { id, shape: vec![channels, length] });
        Ok(())
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let at = NodeAt(n);
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(at.err(format!(
                "operators of domain \"{}\" are not supported (potc reads the default ONNX domain)",
                n.domain
            )));
        }
        let mut ins = Vec::with_capacity(n.input.len());
        for name in &n.input {
            if name.is_empty() {
                ins.push(None);
                continue;
            }
            let v = self.vals.get(name).ok_or_else(|| {
                at.err(format!("reads \"{name}\", which no initializer or earlier node defines"))
            })?;
            ins.push(Some(v.clone()));
        }
        let all_const = ins.iter().flatten().all(|v| matches!(v, Val::Const(_)));
        let outs =
            if fold::FOLDED.contains(&n.op_type.as_str()) && (all_const || n.op_type == "Shape") {
                fold::fold(&at, &ins, self.batch, self.opset)?.into_iter().map(Val::Const).collect()
            } else if NETWORK_OPS.contains(&n.op_type.as_str()) {
                layers::translate(self, &at, &ins)?
            } else {
                return Err(at.err(unsupported(&n.op_type)));
            };
        self.bind_outputs(&at, outs)
    }

    /// Binds the node's outputs; extra outputs it cannot compute (a pool's
    /// indices, dropout's mask) must be unused.
    fn bind_outputs(&mut self, at: &NodeAt, outs: Vec<Val>) -> Result<(), ImportError> {
        for (i, name) in at.0.output.iter().enumerate() {
            match outs.get(i) {
                Some(v) => {
                    self.vals.insert(name.clone(), v.clone());
                }
                None if name.is_empty() || !self.uses.contains_key(name) => {}
                None => {
                    return Err(at.err(format!(
                        "its output {i} (\"{name}\") is used, and potc computes only the first"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The network output: one tensor.
    fn output(&mut self, g: &proto::GraphProto) -> Result<(), ImportError> {
        let [out] = g.output.as_slice() else {
            return Err(ImportError::Model(format!(
                "the model has {} outputs; potc imports networks with one",
                g.output.len()
            )));
        };
        match self.vals.get(&out.name) {
            Some(Val::Net { id, .. }) => {
                self.g.set_output(*id);
                Ok(())
            }
            Some(Val::Const(_) | Val::Padded { .. }) => Err(ImportError::Model(format!(
                "the output \"{}\" is a constant or a padded tensor, not a layer's output",
                out.name
            ))),
            None => Err(ImportError::Model(format!(
                "the output \"{}\" is computed by no node",
                out.name
            ))),
        }
    }

    fn finish(self, producer: String) -> Imported {
        let g = self.g;
        let params = self
            .params
            .into_iter()
            .map(|(id, slot, dims, v)| (format!("{}.{slot}", g.node(id).name), dims, v))
            .collect();
        Imported { graph: g, params, sources: self.sources, producer, opset: self.opset }
    }

    /// A name for the value `onnx` computed by node `node`: the ONNX value
    /// name where the text format can write it, else the node's name made
    /// writable, else `base`; made unique.
    fn value_name(&self, onnx: &str, node: &str, base: &str) -> String {
        let cleaned: String = node
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect();
        let cleaned = cleaned.trim_matches('_');
        let pick = if is_value_name(onnx) {
            onnx
        } else if is_value_name(cleaned) {
            cleaned
        } else {
            base
        };
        self.g.fresh_name(pick)
    }
}

/// A fixed dimension's size.
fn fixed(d: &proto::Dimension) -> Option<usize> {
    match d.value {
        Some(proto::DimValue::DimValue(v)) => usize::try_from(v).ok(),
        _ => None,
    }
}

/// The error for an op type potc does not read.
fn unsupported(op: &str) -> String {
    let hint = match op {
        "Softmax" | "LogSoftmax" => {
            " (export the logits: potc trains with a softmax cross-entropy of its own)"
        }
        "Transpose" => " (potc's tensors keep the channels-first layout)",
        _ => "",
    };
    format!(
        "op {op} is not supported{hint}; potc imports {} and folds constant {}",
        NETWORK_OPS.join(", "),
        fold::FOLDED.join(", ")
    )
}

/// A node being imported, for its attributes and its errors.
pub(crate) struct NodeAt<'a>(&'a NodeProto);

impl NodeAt<'_> {
    fn op(&self) -> &str {
        &self.0.op_type
    }

    /// `"/conv1/Conv" (Conv)`, or the first output's name for an unnamed node.
    fn describe(&self) -> String {
        let n = self.0;
        let name = if n.name.is_empty() {
            n.output.first().map(|o| format!("with output \"{o}\"")).unwrap_or_default()
        } else {
            format!("\"{}\"", n.name)
        };
        format!("{name} ({})", n.op_type)
    }

    fn err(&self, message: impl Into<String>) -> ImportError {
        ImportError::Node { node: self.describe(), message: message.into() }
    }

    /// Refuses attributes outside `known`: one potc would not honour would
    /// make a silently different network.
    fn only_attrs(&self, known: &[&str]) -> Result<(), ImportError> {
        match self.0.attribute.iter().find(|a| !known.contains(&a.name.as_str())) {
            None => Ok(()),
            Some(a) => Err(self.err(format!(
                "attribute `{}` is not supported for {} (potc reads {})",
                a.name,
                self.op(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))),
        }
    }

    fn attr(&self, name: &str, ty: i32) -> Result<Option<&AttributeProto>, ImportError> {
        let Some(a) = self.0.attribute.iter().find(|a| a.name == name) else { return Ok(None) };
        if !a.ref_attr_name.is_empty() {
            return Err(self.err(format!("attribute `{name}` refers to a function's attribute")));
        }
        // Files from before IR version 2 may leave the type out.
        if a.r#type != ty && a.r#type != 0 {
            return Err(self.err(format!("attribute `{name}` has the wrong type")));
        }
        Ok(Some(a))
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        Ok(self.attr(name, attr_type::INT)?.map_or(default, |a| a.i))
    }

    fn float(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        Ok(self.attr(name, attr_type::FLOAT)?.map_or(default, |a| a.f))
    }

    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        Ok(self.attr(name, attr_type::INTS)?.map(|a| a.ints.clone()))
    }

    fn string(&self, name: &str, default: &str) -> Result<String, ImportError> {
        Ok(self
            .attr(name, attr_type::STRING)?
            .map_or(default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned()))
    }
}
