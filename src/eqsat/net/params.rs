//! Parameter expressions evaluated on a checkpoint's tensors, after
//! extraction, by the fold functions training uses.

use egg::{Id, Symbol};

use super::lang::Net;
use crate::ir::op::Op;
use crate::ir::Graph;
use crate::pass::{ParamStore, RewriteError};
use crate::quant::fold::{self, BnStats};

/// A parameter expression's value.
pub enum Value {
    /// An absent bias: zeros.
    Zero,
    /// The unit weight of a depthwise conv.
    Ones,
    Tensor(Vec<usize>, Vec<f32>),
}

/// Evaluates parameter expressions; `node` picks the extracted node of a class.
pub struct Evaluator<'a, F: Fn(Id) -> Net> {
    pub node: F,
    pub graph: &'a Graph,
    pub store: &'a ParamStore,
    pub node_of_key: &'a std::collections::HashMap<Symbol, crate::ir::NodeId>,
}

impl<F: Fn(Id) -> Net> Evaluator<'_, F> {
    /// The value of the expression in class `id`.
    pub fn eval(&self, id: Id) -> Result<Value, RewriteError> {
        Ok(match (self.node)(id) {
            Net::Zero => Value::Zero,
            Net::Ones => Value::Ones,
            Net::Symbol(s) => {
                let (shape, v) = self.param(s.as_str())?;
                Value::Tensor(shape.clone(), v.clone())
            }
            Net::FoldW([w, k]) => {
                let (bn, channels) = self.stats(k)?;
                match self.eval(w)? {
                    Value::Ones => Value::Tensor(
                        vec![channels, 1, 1],
                        fold::fold_weight(&vec![1.0; channels], &bn),
                    ),
                    Value::Tensor(shape, w) => Value::Tensor(shape, fold::fold_weight(&w, &bn)),
                    Value::Zero => Value::Zero,
                }
            }
            Net::FoldB([b, k]) => {
                let (bn, channels) = self.stats(k)?;
                let b = self.eval(b)?;
                Value::Tensor(vec![channels], fold::fold_bias(tensor(&b), &bn))
            }
            Net::ScaleB([b, k]) => match self.eval(b)? {
                Value::Tensor(shape, b) => {
                    Value::Tensor(shape, fold::scale_bias(&b, &self.stats(k)?.0))
                }
                other => other,
            },
            Net::InScaleW([w, k]) => {
                let (Value::Tensor(shape, w), (bn, _)) = (self.eval(w)?, self.stats(k)?) else {
                    return Err(self.malformed(id));
                };
                Value::Tensor(shape, fold::fold_input_weight(&w, &bn))
            }
            Net::InShiftB([w, b, k]) => {
                let (Value::Tensor(shape, w), (bn, _)) = (self.eval(w)?, self.stats(k)?) else {
                    return Err(self.malformed(id));
                };
                let b = self.eval(b)?;
                Value::Tensor(vec![shape[0]], fold::fold_input_bias(&w, tensor(&b), &bn))
            }
            _ => return Err(self.malformed(id)),
        })
    }

    fn param(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>), RewriteError> {
        self.store.get(name).ok_or_else(|| RewriteError::MissingParameter(name.to_string()))
    }

    /// The statistics of the batch norm whose key is in class `k`, and its
    /// channel count.
    fn stats(&self, k: Id) -> Result<(BnStats<'_>, usize), RewriteError> {
        let Net::Symbol(key) = (self.node)(k) else { return Err(self.malformed(k)) };
        let node = self.node_of_key.get(&key).map(|&n| self.graph.node(n));
        let Some(Op::BatchNorm(op)) = node.map(|n| &n.op) else { return Err(self.malformed(k)) };
        let get = |slot: &str| self.param(&format!("{key}.{slot}")).map(|p| p.1.as_slice());
        let stats = BnStats {
            gamma: get("gamma")?,
            beta: get("beta")?,
            mean: get("mean")?,
            var: get("var")?,
            eps: op.eps.0,
        };
        let channels = stats.gamma.len();
        Ok((stats, channels))
    }

    fn malformed(&self, id: Id) -> RewriteError {
        RewriteError::Model(format!(
            "equality saturation built a malformed parameter expression ({:?}; a bug in potc)",
            (self.node)(id)
        ))
    }
}

fn tensor(v: &Value) -> Option<&[f32]> {
    match v {
        Value::Tensor(_, t) => Some(t),
        _ => None,
    }
}
