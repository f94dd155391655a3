//! The IR graph: ops as nodes of a petgraph `StableGraph`, an edge from each
//! operand to its user weighted by the operand's position. Node indices stay
//! valid while passes remove other nodes.

use super::attrs::AttrError;
use super::infer::{infer, TypeError};
use super::op::{Op, ParamSpec};
use super::types::Type;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction::{Incoming, Outgoing};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::ops::Range;

pub type NodeId = NodeIndex;

/// One SSA value and the op that defines it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The value's name without `%`; it also names the op's parameters
    /// (`<name>.<slot>`).
    pub name: String,
    pub op: Op,
    pub ty: Type,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub name: String,
    graph: StableGraph<Node, usize>,
    inputs: Vec<NodeId>,
    output: Option<NodeId>,
    /// Where each node was written in the source, for diagnostics.
    spans: HashMap<NodeId, Range<usize>>,
    /// How many nodes carry each name, so that [`Graph::fresh_name`] takes
    /// constant time (a pass adding a node per op stays linear). Kept by
    /// the methods that add, remove and [`rename`](Graph::rename) nodes.
    names: HashMap<String, usize>,
}

/// A cycle through the named node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub NodeId);

/// Why [`Graph::retype_input`] could not type the graph for the new input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetypeError {
    #[error("no input {0}")]
    NoInput(usize),
    #[error("the graph has a cycle")]
    Cycle,
    #[error("`%{node}` ({op}): {error}")]
    Node { node: String, op: &'static str, error: TypeError },
}

/// Why [`Graph::add_op`] refused an op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("{op} takes {want} operands, got {got}")]
    Arity { op: &'static str, want: usize, got: usize },
    #[error(transparent)]
    Attr(#[from] AttrError),
    #[error(transparent)]
    Type(#[from] TypeError),
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Graph::default() }
    }

    pub fn add_input(&mut self, name: impl Into<String>, ty: Type) -> NodeId {
        let name = name.into();
        *self.names.entry(name.clone()).or_default() += 1;
        let id = self.graph.add_node(Node { name, op: Op::Input, ty });
        self.inputs.push(id);
        id
    }

    /// Adds a node as given, without checks (the verifier checks later).
    pub fn add_node(&mut self, node: Node, operands: &[NodeId]) -> NodeId {
        *self.names.entry(node.name.clone()).or_default() += 1;
        let id = self.graph.add_node(node);
        for (pos, &src) in operands.iter().enumerate() {
            self.graph.add_edge(src, id, pos);
        }
        id
    }

    /// Adds `op` applied to `operands` under a fresh name derived from `base`,
    /// checking its attributes and inferring its type: how passes build ops.
    pub fn add_op(&mut self, base: &str, op: Op, operands: &[NodeId]) -> Result<NodeId, OpError> {
        if operands.len() != op.arity() {
            let (want, got) = (op.arity(), operands.len());
            return Err(OpError::Arity { op: op.name(), want, got });
        }
        op.check_attrs()?;
        let tys: Vec<&Type> = operands.iter().map(|&o| &self.graph[o].ty).collect();
        let ty = infer(&op, &tys)?;
        let name = self.fresh_name(base);
        Ok(self.add_node(Node { name, op, ty }, operands))
    }

    /// `base` if no value has that name yet, else `base.1`, `base.2`, ...
    pub fn fresh_name(&self, base: &str) -> String {
        let taken = |n: &str| self.names.get(n).is_some_and(|&c| c > 0);
        if !taken(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}.{i}")).find(|n| !taken(n)).expect("names are unbounded")
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph[id]
    }

    /// The node to change its op or type; its name changes only through
    /// [`rename`](Graph::rename).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.graph[id]
    }

    /// Gives node `id` the name `name`.
    pub fn rename(&mut self, id: NodeId, name: String) {
        let old = std::mem::replace(&mut self.graph[id].name, name.clone());
        self.forget_name(&old);
        *self.names.entry(name).or_default() += 1;
    }

    fn forget_name(&mut self, name: &str) {
        if let Some(c) = self.names.get_mut(name) {
            *c -= 1;
            if *c == 0 {
                self.names.remove(name);
            }
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.graph.contains_node(id)
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.node_indices()
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    pub fn output(&self) -> Option<NodeId> {
        self.output
    }

    pub fn set_output(&mut self, id: NodeId) {
        self.output = Some(id);
    }

    /// Operands in position order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(usize, NodeId)> =
            self.graph.edges_directed(id, Incoming).map(|e| (*e.weight(), e.source())).collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, src)| src).collect()
    }

    /// Operand positions as stored, for the verifier.
    pub fn operand_positions(&self, id: NodeId) -> Vec<usize> {
        let mut p: Vec<usize> =
            self.graph.edges_directed(id, Incoming).map(|e| *e.weight()).collect();
        p.sort_unstable();
        p
    }

    /// The nodes that use `id`, each once, in index order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut u: Vec<NodeId> = self.graph.neighbors_directed(id, Outgoing).collect();
        u.sort_unstable();
        u.dedup();
        u
    }

    /// Makes every use of `old` (and the output, if it is `old`) use `new`.
    pub fn replace_all_uses(&mut self, old: NodeId, new: NodeId) {
        let uses: Vec<_> = self
            .graph
            .edges_directed(old, Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (edge, user, pos) in uses {
            self.graph.remove_edge(edge);
            self.graph.add_edge(new, user, pos);
        }
        if self.output == Some(old) {
            self.output = Some(new);
        }
    }

    /// Puts `node` (reading `operands`) in the place of `old`: every use of
    /// `old` reads it, it takes `old`'s source span, and it takes `old`'s
    /// slot, so the printed order stays. `old` must not be an input.
    pub fn replace_node(&mut self, old: NodeId, node: Node, operands: &[NodeId]) -> NodeId {
        let uses: Vec<(NodeId, usize)> =
            self.graph.edges_directed(old, Outgoing).map(|e| (e.target(), *e.weight())).collect();
        let was_output = self.output == Some(old);
        let span = self.spans.get(&old).cloned();
        self.remove_node(old);
        // A stable graph reuses the slot freed last.
        let new = self.add_node(node, operands);
        for (user, pos) in uses {
            self.graph.add_edge(new, user, pos);
        }
        if was_output {
            self.output = Some(new);
        }
        if let Some(span) = span {
            self.spans.insert(new, span);
        }
        new
    }

    /// Makes operand `pos` of `user` read `new` instead.
    pub fn retarget_operand(&mut self, user: NodeId, pos: usize, new: NodeId) {
        let edge =
            self.graph.edges_directed(user, Incoming).find(|e| *e.weight() == pos).map(|e| e.id());
        if let Some(e) = edge {
            self.graph.remove_edge(e);
        }
        self.graph.add_edge(new, user, pos);
    }

    /// Removes a node and its edges. Inputs are part of the signature and stay.
    pub fn remove_node(&mut self, id: NodeId) {
        if self.inputs.contains(&id) {
            return;
        }
        if let Some(node) = self.graph.remove_node(id) {
            self.forget_name(&node.name);
        }
        self.spans.remove(&id);
        if self.output == Some(id) {
            self.output = None;
        }
    }

    pub fn span(&self, id: NodeId) -> Option<Range<usize>> {
        self.spans.get(&id).cloned()
    }

    pub fn set_span(&mut self, id: NodeId, span: Range<usize>) {
        self.spans.insert(id, span);
    }

    /// A topological order; among ready nodes the lowest index goes first, so
    /// the order (and so the printed text) is deterministic.
    pub fn order(&self) -> Result<Vec<NodeId>, Cycle> {
        let mut pending: HashMap<NodeId, usize> =
            self.node_ids().map(|n| (n, self.graph.edges_directed(n, Incoming).count())).collect();
        let mut ready: BinaryHeap<std::cmp::Reverse<NodeId>> =
            pending.iter().filter(|(_, &c)| c == 0).map(|(&n, _)| std::cmp::Reverse(n)).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(std::cmp::Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.graph.edges_directed(n, Outgoing) {
                let c = pending.get_mut(&e.target()).expect("edge targets are nodes");
                *c -= 1;
                if *c == 0 {
                    ready.push(std::cmp::Reverse(e.target()));
                }
            }
        }
        match pending.iter().filter(|(_, &c)| c > 0).map(|(&n, _)| n).min() {
            Some(stuck) => Err(Cycle(stuck)),
            None => Ok(order),
        }
    }

    /// Gives input `index` a new type and re-infers the type of every value,
    /// e.g. to run a length-agnostic model on series of another length.
    pub fn retype_input(&mut self, index: usize, ty: Type) -> Result<(), RetypeError> {
        let input = *self.inputs.get(index).ok_or(RetypeError::NoInput(index))?;
        self.graph[input].ty = ty;
        let order = self.order().map_err(|_| RetypeError::Cycle)?;
        for id in order.into_iter().filter(|&id| id != input && !self.inputs.contains(&id)) {
            let tys: Vec<&Type> =
                self.operands(id).into_iter().map(|o| &self.graph[o].ty).collect();
            let node = &self.graph[id];
            let ty = infer(&node.op, &tys).map_err(|error| RetypeError::Node {
                node: node.name.clone(),
                op: node.op.name(),
                error,
            })?;
            self.graph[id].ty = ty;
        }
        Ok(())
    }

    /// Every parameter tensor of the model as `(name, spec)`, in program order.
    pub fn params(&self) -> Vec<(String, ParamSpec)> {
        let order = self.order().unwrap_or_else(|_| self.node_ids().collect());
        let mut out = vec![];
        for id in order {
            let ops: Vec<NodeId> = self.operands(id);
            let tys: Vec<&Type> = ops.iter().map(|&o| &self.graph[o].ty).collect();
            let node = &self.graph[id];
            for spec in node.op.params(&tys) {
                out.push((format!("{}.{}", node.name, spec.slot), spec));
            }
        }
        out
    }

    /// The graph keyed by value names: what structural equality compares.
    fn by_name(&self) -> BTreeMap<&str, (&Op, &Type, Vec<&str>)> {
        self.node_ids()
            .map(|id| {
                let n = &self.graph[id];
                let ops =
                    self.operands(id).into_iter().map(|o| self.graph[o].name.as_str()).collect();
                (n.name.as_str(), (&n.op, &n.ty, ops))
            })
            .collect()
    }
}

/// Structural equality: the same signature, ops, operands and output, by value
/// name. Node indices, insertion order and source spans do not matter.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        let names = |g: &Graph, ids: &[NodeId]| -> Vec<String> {
            ids.iter().map(|&i| g.graph[i].name.clone()).collect()
        };
        let out = |g: &Graph| g.output.map(|o| g.graph[o].name.clone());
        self.name == other.name
            && names(self, &self.inputs) == names(other, &other.inputs)
            && out(self) == out(other)
            && self.by_name() == other.by_name()
    }
}

impl Eq for Graph {}

/// A value name as the text format writes it after `%`.
pub fn is_value_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// An identifier as the text format writes it (model names).
pub fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && is_value_name(s)
        && s != "model"
        && s != "return"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fresh_name` reads an index of names (it scanned every node, which
    /// made `insert-fake-quant` quadratic); the index follows additions,
    /// removals and renames.
    #[test]
    fn fresh_names_follow_adds_removes_and_renames() {
        let mut g = Graph::new("m");
        let x = g.add_input("x", Type::f32(vec![1, 4]));
        let a = g.add_op("a", Op::Relu, &[x]).unwrap();
        assert_eq!(g.fresh_name("a"), "a.1");
        let a1 = g.add_op("a", Op::Relu, &[a]).unwrap();
        assert_eq!(g.node(a1).name, "a.1");
        assert_eq!(g.fresh_name("a"), "a.2");
        g.remove_node(a1);
        assert_eq!(g.fresh_name("a"), "a.1");
        g.rename(a, "b".into());
        assert_eq!((g.fresh_name("a"), g.fresh_name("b")), ("a".into(), "b.1".into()));
        assert_eq!(g.fresh_name("x"), "x.1");
    }

    #[test]
    fn retyping_names_the_op_that_cannot_take_the_new_input() {
        let text = "model m(%x: [1, 16]) {\n  %c = conv1d(%x) {out_channels = 2, kernel = 5}\n  \
                    return %c\n}\n";
        let mut g = crate::syntax::parse(text).unwrap();
        let e = g.retype_input(0, Type::f32(vec![1, 3])).unwrap_err();
        let window = TypeError::WindowTooLong { op: "conv1d", span: 5, padded: 3 };
        assert_eq!(e, RetypeError::Node { node: "c".into(), op: "conv1d", error: window });
        assert_eq!(g.retype_input(1, Type::f32(vec![1, 3])), Err(RetypeError::NoInput(1)));
    }
}
