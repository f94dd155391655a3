//! `canonicalize`: removes what inference does not compute and rewrites
//! identities away, until nothing changes.

use crate::ir::op::{Op, Pool1d};
use crate::ir::{Graph, NodeId};
use crate::pass::{Pass, PassContext, RewriteError, Semantics};
use std::collections::HashSet;

pub struct Canonicalize;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn summary(&self) -> &'static str {
        "remove dropout, identity ops and dead ops; normalise attributes"
    }

    fn description(&self) -> &'static str {
        "Rewrites, to a fixed point:\n\
         - dropout is the identity at inference: its uses take its operand;\n\
         - identities go the same way: flatten of a [features] value, pooling\n\
           with kernel 1, stride 1 and no padding, relu of a relu;\n\
         - a pooling stride equal to the kernel is left implicit;\n\
         - ops that the returned value does not depend on are deleted.\n\
         \n\
         Before:\n\
         \x20 %d = dropout(%x) {p = 0.2} : f32[4]\n\
         \x20 %f = flatten(%d) : f32[4]\n\
         \x20 %u = relu(%x) : f32[4]\n\
         \x20 return %f\n\
         After:\n\
         \x20 return %x"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Preserving
    }

    fn run(&self, g: &mut Graph, _: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        let mut changed = false;
        loop {
            let step = bypass_identities(g) | normalise_attrs(g) | remove_dead(g);
            if !step {
                return Ok(changed);
            }
            changed = true;
        }
    }
}

/// Replaces each identity op by its operand.
fn bypass_identities(g: &mut Graph) -> bool {
    let ids: Vec<NodeId> = g.node_ids().collect();
    let mut changed = false;
    for id in ids {
        if let Some(replacement) = identity_of(g, id) {
            g.replace_all_uses(id, replacement);
            g.remove_node(id);
            changed = true;
        }
    }
    changed
}

/// The value that `id` equals, when its op is an identity at inference.
fn identity_of(g: &Graph, id: NodeId) -> Option<NodeId> {
    let node = g.node(id);
    let operand = *g.operands(id).first()?;
    let is_identity = match &node.op {
        Op::Dropout(_) => true,
        Op::Flatten => node.ty.shape.len() == 1 && g.node(operand).ty == node.ty,
        Op::MaxPool1d(p) | Op::AvgPool1d(p) => p.kernel == 1 && p.stride() == 1 && p.padding == 0,
        Op::Relu => g.node(operand).op == Op::Relu,
        _ => false,
    };
    is_identity.then_some(operand)
}

/// Drops attributes that only restate their default.
fn normalise_attrs(g: &mut Graph) -> bool {
    let ids: Vec<NodeId> = g.node_ids().collect();
    let mut changed = false;
    for id in ids {
        if let Op::MaxPool1d(p) | Op::AvgPool1d(p) = &mut g.node_mut(id).op {
            if p.stride == Some(p.kernel) {
                *p = Pool1d { stride: None, ..p.clone() };
                changed = true;
            }
        }
    }
    changed
}

/// Deletes every op the output does not depend on (inputs stay: they are the
/// signature).
fn remove_dead(g: &mut Graph) -> bool {
    let mut live = HashSet::new();
    let mut stack: Vec<NodeId> = g.output().into_iter().collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.operands(n));
        }
    }
    let dead: Vec<NodeId> =
        g.node_ids().filter(|n| !live.contains(n) && !g.inputs().contains(n)).collect();
    for &n in &dead {
        g.remove_node(n);
    }
    !dead.is_empty()
}
