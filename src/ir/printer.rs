//! The canonical text form. Deterministic: ops in `Graph::order`, attributes
//! in the order `Op::visit_attrs` lists them, defaults left out, floats in
//! Rust's shortest round-trip form, every value's type spelled out.

use super::graph::Graph;
use super::op::{AttrVisitor, Padding, F64};
use std::fmt::Write;

pub fn print(g: &Graph) -> String {
    let mut out = String::new();
    let inputs: Vec<String> =
        g.inputs().iter().map(|&i| format!("%{}: {}", g.node(i).name, g.node(i).ty)).collect();
    let _ = writeln!(out, "model {}({}) {{", g.name, inputs.join(", "));
    let order = g.order().unwrap_or_else(|_| g.node_ids().collect());
    for id in order.into_iter().filter(|id| !g.inputs().contains(id)) {
        let node = g.node(id);
        let args: Vec<String> =
            g.operands(id).iter().map(|&o| format!("%{}", g.node(o).name)).collect();
        let mut op = node.op.clone();
        let mut attrs = AttrWriter::default();
        op.visit_attrs(&mut attrs);
        let attrs =
            if attrs.0.is_empty() { String::new() } else { format!(" {{{}}}", attrs.0.join(", ")) };
        let _ = writeln!(
            out,
            "  %{} = {}({}){attrs} : {}",
            node.name,
            op.name(),
            args.join(", "),
            node.ty
        );
    }
    if let Some(o) = g.output().filter(|&o| g.contains(o)) {
        let _ = writeln!(out, "  return %{}", g.node(o).name);
    }
    out.push_str("}\n");
    out
}

/// Collects `name = value` for every attribute that differs from its default.
#[derive(Default)]
struct AttrWriter(Vec<String>);

impl AttrWriter {
    fn put(&mut self, name: &str, value: impl std::fmt::Display) {
        self.0.push(format!("{name} = {value}"));
    }
}

impl AttrVisitor for AttrWriter {
    fn uint(&mut self, name: &'static str, value: &mut usize, default: Option<usize>) {
        if default != Some(*value) {
            self.put(name, value);
        }
    }
    fn opt_uint(&mut self, name: &'static str, value: &mut Option<usize>) {
        if let Some(v) = value {
            self.put(name, v);
        }
    }
    fn boolean(&mut self, name: &'static str, value: &mut bool, default: bool) {
        if *value != default {
            self.put(name, value);
        }
    }
    fn float(&mut self, name: &'static str, value: &mut F64, default: f64) {
        if value.0.to_bits() != default.to_bits() {
            self.put(name, format!("{:?}", value.0));
        }
    }
    fn ident(
        &mut self,
        name: &'static str,
        value: &mut Option<&'static str>,
        _: &'static [&'static str],
    ) {
        if let Some(v) = value {
            self.put(name, v);
        }
    }
    fn padding(&mut self, name: &'static str, value: &mut Padding, default: Padding) {
        if *value == default {
            return;
        }
        match *value {
            Padding::Same => self.put(name, "same"),
            Padding::Explicit { left, right } if left == right => self.put(name, left),
            Padding::Explicit { left, right } => self.put(name, format!("[{left}, {right}]")),
        }
    }
}
