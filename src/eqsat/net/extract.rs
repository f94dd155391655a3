//! The extracted forms back into the IR graph, and their parameters into
//! the checkpoint's store.

use std::collections::{BTreeMap, HashMap};

use egg::{Extractor, Id, Language};

use super::build::Encoded;
use super::cost::NetCost;
use super::lang::{Net, NetGraph};
use super::params::{Evaluator, Value};
use crate::ir::op::{Conv1d, LayerQuant, Op, Padding};
use crate::ir::{Graph, Node, NodeId};
use crate::pass::{ParamStore, RewriteError};

/// A node extraction made (not one the graph had).
pub struct Made {
    pub node: NodeId,
    /// The IR node whose attributes it has.
    pub key: String,
    /// The name it should carry: the value it computes, or its key's.
    pub name: String,
    /// Its weight and bias expressions, for a MAC layer.
    pub params: Option<(Id, Id)>,
}

/// Rewrites `g` into the extracted form of every class its output needs.
pub struct Materializer<'a> {
    pub g: &'a mut Graph,
    /// `g` as it was: the keys' attributes.
    pub original: &'a Graph,
    pub enc: &'a Encoded,
    pub ex: &'a Extractor<'a, NetCost, Net, ()>,
    /// The first original node of each class, in topological order.
    pub origin: HashMap<Id, NodeId>,
    pub done: HashMap<Id, NodeId>,
    pub made: Vec<Made>,
}

impl<'a> Materializer<'a> {
    pub fn new(
        g: &'a mut Graph,
        original: &'a Graph,
        enc: &'a Encoded,
        ex: &'a Extractor<'a, NetCost, Net, ()>,
    ) -> Self {
        let mut origin = HashMap::new();
        for id in g.order().unwrap_or_default() {
            origin.entry(enc.egraph.find(enc.class_of[&id])).or_insert(id);
        }
        Materializer { g, original, enc, ex, origin, done: HashMap::new(), made: vec![] }
    }

    fn egraph(&self) -> &NetGraph {
        &self.enc.egraph
    }

    /// The IR node computing class `id`'s value.
    pub fn materialize(&mut self, id: Id) -> Result<NodeId, RewriteError> {
        let id = self.egraph().find(id);
        if let Some(&n) = self.done.get(&id) {
            return Ok(n);
        }
        let best = self.ex.find_best_node(id).clone();
        if let Net::Share(x) = best {
            return self.materialize(x);
        }
        let key = self.key(&best)?;
        let operand_classes = operands(&best);
        let mut operands = Vec::with_capacity(operand_classes.len());
        for c in operand_classes {
            operands.push(self.materialize(c)?);
        }
        let node = match self.origin.get(&id).copied().filter(|&o| self.is_original(o, &best)) {
            Some(orig) => {
                for (pos, &o) in operands.iter().enumerate() {
                    if self.g.operands(orig)[pos] != o {
                        self.g.retarget_operand(orig, pos, o);
                    }
                }
                orig
            }
            None => self.make(id, &best, &key, &operands)?,
        };
        self.done.insert(id, node);
        Ok(node)
    }

    /// Whether `orig` is the node `best` (same op, operands in the same classes).
    fn is_original(&self, orig: NodeId, best: &Net) -> bool {
        let canon = |n: &Net| n.clone().map_children(|c| self.egraph().find(c));
        canon(&self.enc.enode_of[&orig]) == canon(best)
    }

    fn key(&self, best: &Net) -> Result<String, RewriteError> {
        let k = best.children().first().map(|&k| self.ex.find_best_node(k));
        match k {
            Some(Net::Symbol(s)) => Ok(s.to_string()),
            _ => Err(RewriteError::Model(format!(
                "an e-node without a key: {best:?} (a bug in potc)"
            ))),
        }
    }

    /// A new node for `best`, named after the value it computes.
    fn make(
        &mut self,
        id: Id,
        best: &Net,
        key: &str,
        operands: &[NodeId],
    ) -> Result<NodeId, RewriteError> {
        let base = self.enc.node_of_key[&egg::Symbol::from(key)];
        let base_op = self.original.node(base).op.clone();
        let has_bias = |b: Id| !matches!(self.ex.find_best_node(b), Net::Zero);
        let (op, params) = match (best, base_op) {
            (Net::Conv([_, _, w, b]), Op::Conv1d(c)) => {
                (Op::Conv1d(Conv1d { bias: has_bias(*b), ..c }), Some((*w, *b)))
            }
            (Net::Linear([_, _, w, b]), Op::Linear(l)) => {
                (Op::Linear(crate::ir::op::Linear { bias: has_bias(*b), ..l }), Some((*w, *b)))
            }
            (Net::Depthwise([_, _, w, b]), Op::BatchNorm(_)) => {
                let channels = self.g.node(operands[0]).ty.sequence().map_or(0, |s| s.0);
                (Op::Conv1d(Conv1d { bias: has_bias(*b), ..depthwise(channels) }), Some((*w, *b)))
            }
            (_, op) => (op, None),
        };
        let origin = self.origin.get(&id).copied();
        let name = origin.map_or_else(|| key.to_string(), |o| self.g.node(o).name.clone());
        let tys: Vec<&crate::ir::Type> = operands.iter().map(|&o| &self.g.node(o).ty).collect();
        op.check_attrs().map_err(crate::ir::OpError::from)?;
        let ty = crate::ir::infer::infer(&op, &tys).map_err(crate::ir::OpError::from)?;
        let node = match origin {
            // The value `origin` computed, in its place and under its name.
            Some(o) => self.g.replace_node(o, Node { name: name.clone(), op, ty }, operands),
            None => {
                let temp = self.g.fresh_name(&format!("{name}.folding"));
                self.g.add_node(Node { name: temp, op, ty }, operands)
            }
        };
        self.made.push(Made { node, key: key.to_string(), name, params });
        Ok(node)
    }

    /// Deletes what the output no longer reads, and gives each made node its
    /// name where that name is now free.
    pub fn finish(&mut self, output: NodeId) {
        self.g.set_output(output);
        let mut live = std::collections::HashSet::new();
        let mut stack = vec![output];
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(self.g.operands(n));
            }
        }
        let dead: Vec<NodeId> = self
            .g
            .node_ids()
            .filter(|n| !live.contains(n) && !self.g.inputs().contains(n))
            .collect();
        for n in dead {
            self.g.remove_node(n);
        }
        for m in &mut self.made {
            if self.g.node(m.node).name == m.name {
                continue;
            }
            let name = self.g.fresh_name(&m.name);
            self.g.rename(m.node, name.clone());
            m.name = name;
        }
    }

    /// The parameters of the made nodes, from `store`, under their names.
    pub fn params(&self, store: &ParamStore) -> Result<ParamStore, RewriteError> {
        let ev = Evaluator {
            node: |c| self.ex.find_best_node(c).clone(),
            graph: self.original,
            store,
            node_of_key: &self.enc.node_of_key,
        };
        let mut out = BTreeMap::new();
        for m in &self.made {
            let Some((w, b)) = m.params else {
                // A kept op under a new name reads its key's parameters.
                for (name, t) in store.range(format!("{}.", m.key)..) {
                    let Some(slot) = name.strip_prefix(&format!("{}.", m.key)) else { break };
                    if !slot.contains('.') {
                        out.insert(format!("{}.{slot}", m.name), t.clone());
                    }
                }
                continue;
            };
            if let Value::Tensor(shape, v) = ev.eval(w)? {
                out.insert(format!("{}.w", m.name), (shape, v));
            }
            if let Value::Tensor(shape, v) = ev.eval(b)? {
                out.insert(format!("{}.b", m.name), (shape, v));
            }
            if let Some(t) = store.get(&format!("{}.w_log2t", m.key)) {
                out.insert(format!("{}.w_log2t", m.name), t.clone());
            }
        }
        Ok(out)
    }
}

/// The operand classes of a layer node (its children after the key).
fn operands(n: &Net) -> Vec<Id> {
    match n {
        Net::Conv([_, x, _, _]) | Net::Linear([_, x, _, _]) | Net::Depthwise([_, x, _, _]) => {
            vec![*x]
        }
        Net::Bn([_, x])
        | Net::BnFeatures([_, x])
        | Net::Gap([_, x])
        | Net::Relu([_, x])
        | Net::Requant([_, x]) => vec![*x],
        Net::Add([_, a, b]) => vec![*a, *b],
        Net::Op(c) => c[1..].to_vec(),
        _ => vec![],
    }
}

/// The 1x1 depthwise conv1d over `channels` a lone batch norm becomes.
fn depthwise(channels: usize) -> Conv1d {
    Conv1d {
        out_channels: channels,
        kernel: 1,
        stride: 1,
        padding: Padding::Explicit { left: 0, right: 0 },
        dilation: 1,
        groups: channels,
        bias: true,
        quant: LayerQuant::default(),
    }
}
