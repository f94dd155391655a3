//! A small builder of ONNX graphs: nodes with fresh output names, and
//! constant tensors as initializers (little-endian `raw_data`).

use crate::onnx::proto::{
    attr_type, data_type, AttributeProto, DimValue, Dimension, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

/// The graph under construction.
#[derive(Default)]
pub struct Builder {
    pub graph: GraphProto,
    fresh: usize,
}

/// An attribute of a node.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Str(&'static str),
}

impl Builder {
    /// A fresh value name under `base` (`base/3`).
    fn name(&mut self, base: &str) -> String {
        self.fresh += 1;
        format!("{base}/{}", self.fresh)
    }

    /// Adds `op(inputs)` with attributes and returns its output's name:
    /// `out` when given, else a fresh name under `base`.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        base: &str,
        out: Option<&str>,
    ) -> String {
        let output = out.map_or_else(|| self.name(base), str::to_string);
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto { name: name.into(), ..Default::default() };
                match a {
                    Attr::Int(i) => (p.r#type, p.i) = (attr_type::INT, i),
                    Attr::Ints(v) => (p.r#type, p.ints) = (attr_type::INTS, v),
                    Attr::Str(v) => (p.r#type, p.s) = (attr_type::STRING, v.as_bytes().to_vec()),
                }
                p
            })
            .collect();
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: format!("{output}:{op}"),
            op_type: op.into(),
            attribute,
            domain: String::new(),
        });
        output
    }

    /// Sets the domain of the node added last (a custom op's).
    pub fn in_domain(&mut self, domain: &str) {
        if let Some(n) = self.graph.node.last_mut() {
            n.domain = domain.into();
        }
    }

    /// Adds a `float` constant of shape `dims` and returns its name.
    pub fn float(&mut self, base: &str, dims: &[usize], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(base, dims, data_type::FLOAT, raw)
    }

    /// Adds an `int64` constant of shape `dims` and returns its name.
    pub fn int64(&mut self, base: &str, dims: &[usize], v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(base, dims, data_type::INT64, raw)
    }

    /// Adds a `double` scalar constant and returns its name.
    pub fn double(&mut self, base: &str, v: f64) -> String {
        self.constant(base, &[], data_type::DOUBLE, v.to_le_bytes().to_vec())
    }

    fn constant(&mut self, base: &str, dims: &[usize], ty: i32, raw_data: Vec<u8>) -> String {
        let name = self.name(base);
        self.graph.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: ty,
            name: name.clone(),
            raw_data,
            ..Default::default()
        });
        name
    }
}

/// A graph input or output: `elem` with the sample dimension first, `N`
/// (symbolic) or `batch`.
pub fn value_info(
    name: &str,
    elem: i32,
    sample_shape: &[usize],
    batch: Option<usize>,
) -> ValueInfoProto {
    let dim = |value| Dimension { value: Some(value) };
    let n = batch.map_or(DimValue::DimParam("N".into()), |b| DimValue::DimValue(b as i64));
    let dims = std::iter::once(dim(n))
        .chain(sample_shape.iter().map(|&d| dim(DimValue::DimValue(d as i64))))
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}
