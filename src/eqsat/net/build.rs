//! A graph into the e-graph: one class per IR value, in topological order.

use std::collections::HashMap;

use egg::{Id, Symbol};

use super::lang::{Net, NetGraph};
use crate::ir::op::Op;
use crate::ir::{Graph, NodeId};
use crate::pass::RewriteError;

/// A graph added to an e-graph.
pub struct Encoded {
    pub egraph: NetGraph,
    /// The class of the returned value.
    pub root: Id,
    /// Each IR node's class.
    pub class_of: HashMap<NodeId, Id>,
    /// The IR node of each key (`c1` -> the node named `c1`).
    pub node_of_key: HashMap<Symbol, NodeId>,
    /// The e-node each IR node was added as.
    pub enode_of: HashMap<NodeId, Net>,
}

/// Adds every node of `g` to a fresh e-graph. A value read by several
/// operands (or read and returned) is read through `(share x)`.
pub fn encode(g: &Graph) -> Result<Encoded, RewriteError> {
    let order = g.order().map_err(|_| RewriteError::Cycle)?;
    let output =
        g.output().ok_or_else(|| RewriteError::Model("the graph returns nothing".into()))?;
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for &id in &order {
        for o in g.operands(id) {
            *uses.entry(o).or_default() += 1;
        }
    }
    *uses.entry(output).or_default() += 1;
    let mut egraph = NetGraph::default();
    let mut class_of: HashMap<NodeId, Id> = HashMap::new();
    let mut node_of_key = HashMap::new();
    let mut enode_of = HashMap::new();
    for &id in &order {
        let node = g.node(id);
        let key_sym = Symbol::from(node.name.as_str());
        node_of_key.insert(key_sym, id);
        let key = egraph.add(Net::Symbol(key_sym));
        let mut operands = Vec::new();
        for o in g.operands(id) {
            let c = class_of[&o];
            operands.push(if uses[&o] > 1 { egraph.add(Net::Share(c)) } else { c });
        }
        let mut param =
            |slot: &str| egraph.add(Net::Symbol(format!("{}.{slot}", node.name).into()));
        let enode = match &node.op {
            Op::Conv1d(c) => {
                let (w, b) = (param("w"), if c.bias { param("b") } else { egraph.add(Net::Zero) });
                Net::Conv([key, operands[0], w, b])
            }
            Op::Linear(l) if l.input_divisor.is_none() => {
                let (w, b) = (param("w"), if l.bias { param("b") } else { egraph.add(Net::Zero) });
                Net::Linear([key, operands[0], w, b])
            }
            Op::BatchNorm(_) if node.ty.sequence().is_some() => Net::Bn([key, operands[0]]),
            Op::BatchNorm(_) => Net::BnFeatures([key, operands[0]]),
            Op::Add(_) => Net::Add([key, operands[0], operands[1]]),
            Op::GlobalAvgPool(_) => Net::Gap([key, operands[0]]),
            Op::Relu => Net::Relu([key, operands[0]]),
            Op::Requant(_) => Net::Requant([key, operands[0]]),
            _ => Net::Op(std::iter::once(key).chain(operands).collect()),
        };
        class_of.insert(id, egraph.add(enode.clone()));
        enode_of.insert(id, enode);
    }
    let root = class_of[&output];
    let root = if uses[&output] > 1 { egraph.add(Net::Share(root)) } else { root };
    egraph.rebuild();
    Ok(Encoded { egraph, root, class_of, node_of_key, enode_of })
}
