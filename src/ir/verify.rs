//! The verifier: every invariant a pass may rely on and must preserve. It runs
//! after parsing and after every pass.

use super::graph::{is_ident, is_value_name, Graph, NodeId};
use super::infer::infer;
use super::op::Op;
use super::types::{check_shape, Elem, Type};
use std::collections::HashMap;

/// What is wrong, and at which node when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VerifyError {
    pub node: Option<NodeId>,
    pub message: String,
}

fn fail<T>(node: Option<NodeId>, message: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError { node, message: message.into() })
}

pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    if !is_ident(&g.name) {
        return fail(None, format!("`{}` is not a valid model name", g.name));
    }
    if !g.output().is_some_and(|o| g.contains(o)) {
        return fail(None, "the model has no `return`");
    }
    let mut names: HashMap<&str, NodeId> = HashMap::new();
    for id in g.node_ids() {
        let name = g.node(id).name.as_str();
        if !is_value_name(name) {
            return fail(Some(id), format!("`%{name}` is not a valid value name"));
        }
        if names.insert(name, id).is_some() {
            return fail(Some(id), format!("value `%{name}` is defined twice"));
        }
    }
    let order = g.order().or_else(|c| {
        fail(Some(c.0), format!("`%{}` depends on itself (a cycle)", g.node(c.0).name))
    })?;
    for &id in &order {
        verify_node(g, id)?;
    }
    if is_integer_program(g) {
        for id in order {
            let node = g.node(id);
            if node.ty.elem == Elem::F32 || !node.op.is_integer() {
                return fail(
                    Some(id),
                    format!(
                        "`%{}` ({}): a float op in an integer program (its input is {}): only integer ops may follow",
                        node.name,
                        node.op.name(),
                        g.node(g.inputs()[0]).ty
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A program whose inputs are integers is integer-only: every value in it
/// must be an integer and every op one with integer semantics.
pub fn is_integer_program(g: &Graph) -> bool {
    !g.inputs().is_empty() && g.inputs().iter().all(|&i| g.node(i).ty.elem != Elem::F32)
}

fn verify_node(g: &Graph, id: NodeId) -> Result<(), VerifyError> {
    let node = g.node(id);
    let here = |m: String| VerifyError {
        node: Some(id),
        message: format!("`%{}` ({}): {m}", node.name, node.op.name()),
    };
    let is_input = g.inputs().contains(&id);
    if (node.op == Op::Input) != is_input {
        return Err(here("only the signature declares inputs".into()));
    }
    let positions = g.operand_positions(id);
    if positions != (0..node.op.arity()).collect::<Vec<_>>() {
        return Err(here(format!("takes {} operands, has {}", node.op.arity(), positions.len())));
    }
    if is_input {
        let dims: Vec<u64> = node.ty.shape.iter().map(|&d| d as u64).collect();
        return check_shape(&dims).map(|_| ()).map_err(|e| here(e.to_string()));
    }
    node.op.check_attrs().map_err(|e| here(e.message))?;
    let operands = g.operands(id);
    let tys: Vec<&Type> = operands.iter().map(|&o| &g.node(o).ty).collect();
    let inferred = infer(&node.op, &tys).map_err(|e| here(e.to_string()))?;
    if inferred != node.ty {
        return Err(here(format!("has type {} but its operands give {inferred}", node.ty)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::{Linear, Op};
    use crate::ir::Node;

    fn chain() -> (Graph, [NodeId; 3]) {
        let mut g = Graph::new("m");
        let x = g.add_input("x", Type::f32(vec![2, 8]));
        let a = g.add_op("a", Op::Relu, &[x]).unwrap();
        let b = g.add_op("b", Op::Relu, &[a]).unwrap();
        g.set_output(b);
        (g, [x, a, b])
    }

    #[test]
    fn a_built_graph_verifies() {
        assert_eq!(verify(&chain().0), Ok(()));
    }

    #[test]
    fn cycles_are_found() {
        let (mut g, [x, a, b]) = chain();
        // a = relu(b), b = relu(a)
        g.replace_all_uses(x, b);
        g.set_output(b);
        let e = verify(&g).unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
        assert!(e.node == Some(a) || e.node == Some(b));
    }

    #[test]
    fn stale_types_and_bad_attributes_are_found() {
        let (mut g, [_, a, _]) = chain();
        g.node_mut(a).ty = Type::f32(vec![3, 8]);
        assert!(verify(&g).unwrap_err().message.contains("has type f32[3, 8]"));

        let (mut g, [x, ..]) = chain();
        let l = g.add_node(
            Node {
                name: "l".into(),
                op: Op::Linear(Linear {
                    out_features: 0,
                    bias: true,
                    quant: Default::default(),
                    input_divisor: None,
                }),
                ty: Type::f32(vec![1]),
            },
            &[x],
        );
        g.set_output(l);
        assert!(verify(&g).unwrap_err().message.contains("out_features"));
    }

    #[test]
    fn names_arity_and_output_are_checked() {
        let (mut g, [_, a, _]) = chain();
        g.node_mut(a).name = "b".into();
        assert!(verify(&g).unwrap_err().message.contains("defined twice"));

        let (mut g, [_, a, _]) = chain();
        g.node_mut(a).name = "has space".into();
        assert!(verify(&g).unwrap_err().message.contains("not a valid value name"));

        let (mut g, [x, a, _]) = chain();
        let s = g.add_node(
            Node { name: "s".into(), op: Op::Add(Default::default()), ty: Type::f32(vec![2, 8]) },
            &[x],
        );
        g.set_output(s);
        let _ = a;
        assert!(verify(&g).unwrap_err().message.contains("takes 2 operands, has 1"));

        let (mut g, [.., b]) = chain();
        g.remove_node(b);
        assert!(verify(&g).unwrap_err().message.contains("no `return`"));
    }
}
