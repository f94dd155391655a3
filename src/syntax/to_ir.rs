//! Syntax tree to IR: resolves names, reads attributes through each op's
//! attribute list, infers types, and reports each mistake at its place.

use super::ast::{self, AttrValue, Span, Spanned, Stmt};
use crate::diag::Diagnostic;
use crate::ir::graph::{Graph, Node, NodeId};
use crate::ir::infer::infer;
use crate::ir::op::{AttrVisitor, Op, Padding, F64, MAX_ATTR};
use crate::ir::types::{check_shape, Elem, Type};
use std::collections::HashMap;

pub fn build(model: &ast::Model) -> Result<Graph, Diagnostic> {
    let all_defs = model
        .stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Op(op) => Some((op.result.node.clone(), op.result.span.clone())),
            Stmt::Return(_) => None,
        })
        .collect();
    let mut b = Builder { graph: Graph::new(&model.name.node), defs: HashMap::new(), all_defs };
    if model.inputs.is_empty() {
        return Err(Diagnostic::at(model.name.span.clone(), "the model declares no input")
            .with_help("declare one, e.g. `model m(%x: [1, 150]) { ... }`"));
    }
    for input in &model.inputs {
        let ty = build_type(&input.ty)?;
        let id = b.graph.add_input(&input.name.node, ty);
        b.define(&input.name, id)?;
    }
    let mut output = None;
    for stmt in &model.stmts {
        match stmt {
            Stmt::Op(s) if output.is_none() => b.op(s)?,
            Stmt::Op(s) => {
                return Err(Diagnostic::at(s.span.clone(), "op after `return`")
                    .with_help("`return` is the last line of a model"))
            }
            Stmt::Return(v) if output.is_none() => output = Some(b.lookup(v)?),
            Stmt::Return(v) => {
                return Err(Diagnostic::at(
                    v.span.clone(),
                    "a second `return`; a model returns one value",
                ))
            }
        }
    }
    let Some(output) = output else {
        return Err(Diagnostic::at(
            model.close.clone(),
            "missing `return` before the end of the model",
        )
        .with_help("end the model with `return %value`"));
    };
    b.graph.set_output(output);
    Ok(b.graph)
}

struct Builder {
    graph: Graph,
    defs: HashMap<String, (NodeId, Span)>,
    /// Every name some line defines, to tell "defined later" from "undefined".
    all_defs: HashMap<String, Span>,
}

impl Builder {
    fn define(&mut self, name: &Spanned<String>, id: NodeId) -> Result<(), Diagnostic> {
        if let Some((_, first)) = self.defs.get(&name.node) {
            return Err(Diagnostic::at(
                name.span.clone(),
                format!("value `%{}` is defined twice", name.node),
            )
            .with_note(first.clone(), "first defined here"));
        }
        self.defs.insert(name.node.clone(), (id, name.span.clone()));
        Ok(())
    }

    fn lookup(&self, name: &Spanned<String>) -> Result<NodeId, Diagnostic> {
        self.defs.get(&name.node).map(|(id, _)| *id).ok_or_else(|| {
            if let Some(later) = self.all_defs.get(&name.node) {
                return Diagnostic::at(
                    name.span.clone(),
                    format!("`%{}` is used before it is defined", name.node),
                )
                .with_note(later.clone(), "defined here, on a later line")
                .with_help("values are defined before their uses, so the graph has no cycles");
            }
            let d = Diagnostic::at(name.span.clone(), format!("undefined value `%{}`", name.node));
            match suggest(&name.node, self.defs.keys().map(String::as_str)) {
                Some(s) => d.with_help(format!("did you mean `%{s}`?")),
                None => d,
            }
        })
    }

    fn op(&mut self, s: &ast::OpStmt) -> Result<(), Diagnostic> {
        let mut op = Op::with_defaults(&s.op.node).ok_or_else(|| unknown_op(&s.op))?;
        if s.args.len() != op.arity() {
            return Err(Diagnostic::at(
                s.op.span.start..s.span.end,
                format!("`{}` takes {} operand(s), got {}", op.name(), op.arity(), s.args.len()),
            ));
        }
        let operands = s.args.iter().map(|a| self.lookup(a)).collect::<Result<Vec<_>, _>>()?;
        read_attrs(&mut op, s)?;
        if let Err(e) = op.check_attrs() {
            let span = s
                .attrs
                .iter()
                .find(|a| a.name.node == e.attr)
                .map_or(s.op.span.clone(), |a| a.value.span.clone());
            return Err(Diagnostic::at(span, e.message));
        }
        let tys: Vec<&Type> = operands.iter().map(|&o| &self.graph.node(o).ty).collect();
        let ty = infer(&op, &tys)
            .map_err(|e| Diagnostic::at(s.op.span.start..s.span.end, e.to_string()))?;
        if let Some(declared) = &s.ty {
            let declared_ty = build_type(declared)?;
            if declared_ty != ty {
                return Err(Diagnostic::at(
                    declared.span.clone(),
                    format!("declared type {declared_ty} differs from the inferred {ty}"),
                ));
            }
        }
        let id = self.graph.add_node(Node { name: s.result.node.clone(), op, ty }, &operands);
        self.graph.set_span(id, s.span.clone());
        self.define(&s.result, id)
    }
}

fn unknown_op(name: &Spanned<String>) -> Diagnostic {
    let d = Diagnostic::at(name.span.clone(), format!("unknown op `{}`", name.node));
    match suggest(&name.node, Op::TEXT_NAMES.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(format!("known ops: {}", Op::TEXT_NAMES.join(", "))),
    }
}

/// The closest candidate, if it is close enough to be a likely typo.
/// Names longer than this get no suggestion: the edit distance takes time
/// quadratic in the length, and a typo in such a name is not a typo.
pub(crate) const MAX_SUGGESTED_LEN: usize = 64;

pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    // The distance is at least the difference in length: candidates too
    // long or too short are skipped before computing it.
    let close = |c: &&str| c.len() <= MAX_SUGGESTED_LEN && c.len().abs_diff(word.len()) <= limit(c);
    candidates
        .filter(close)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= limit(c) && d < c.len())
        .min()
        .map(|(_, c)| c)
}

/// The largest edit distance at which `c` is offered.
fn limit(c: &str) -> usize {
    2.max(c.len() / 4)
}

fn build_type(t: &ast::TypeAst) -> Result<Type, Diagnostic> {
    let elem = match &t.elem {
        None => Elem::F32,
        Some(e) => Elem::parse(&e.node).ok_or_else(|| {
            Diagnostic::at(e.span.clone(), format!("unknown element type `{}`", e.node))
                .with_help("element types are f32, i2 ... i32 and u1 ... u32")
        })?,
    };
    let mut dims = Vec::with_capacity(t.dims.len());
    for d in &t.dims {
        if d.node < 1 {
            return Err(Diagnostic::at(
                d.span.clone(),
                format!("dimension {} is not positive", d.node),
            ));
        }
        dims.push(d.node as u64);
    }
    let shape = check_shape(&dims).map_err(|e| Diagnostic::at(t.span.clone(), e.to_string()))?;
    Ok(Type::new(elem, shape))
}

/// Checks the written attributes against the op's list, then reads them.
fn read_attrs(op: &mut Op, s: &ast::OpStmt) -> Result<(), Diagnostic> {
    let known = op.attr_names();
    for (i, a) in s.attrs.iter().enumerate() {
        if let Some(first) = s.attrs[..i].iter().find(|b| b.name.node == a.name.node) {
            return Err(Diagnostic::at(
                a.name.span.clone(),
                format!("attribute `{}` is given twice", a.name.node),
            )
            .with_note(first.name.span.clone(), "first given here"));
        }
        if !known.contains(&a.name.node.as_str()) {
            let d = Diagnostic::at(
                a.name.span.clone(),
                format!("`{}` has no attribute `{}`", op.name(), a.name.node),
            );
            return Err(match (suggest(&a.name.node, known.iter().copied()), known.is_empty()) {
                (_, true) => d.with_help(format!("`{}` takes no attributes", op.name())),
                (Some(k), _) => d.with_help(format!("did you mean `{k}`?")),
                (None, _) => d.with_help(format!("`{}` takes: {}", op.name(), known.join(", "))),
            });
        }
    }
    let mut reader = Reader { stmt: s, op: op.name(), error: None };
    op.visit_attrs(&mut reader);
    reader.error.map_or(Ok(()), Err)
}

/// Fills attributes from the statement; keeps the first error.
struct Reader<'a> {
    stmt: &'a ast::OpStmt,
    op: &'static str,
    error: Option<Diagnostic>,
}

impl Reader<'_> {
    /// The written value of `name`, or `None` (after recording an error if it
    /// is required) when absent.
    fn get(&mut self, name: &str, required: bool) -> Option<&Spanned<AttrValue>> {
        if self.error.is_some() {
            return None;
        }
        let found = self.stmt.attrs.iter().find(|a| a.name.node == name).map(|a| &a.value);
        if found.is_none() && required {
            self.error = Some(
                Diagnostic::at(
                    self.stmt.op.span.clone(),
                    format!("`{}` needs the attribute `{name}`", self.op),
                )
                .with_help(format!("write it as `{{{name} = ...}}` after the operands")),
            );
        }
        found
    }

    fn wrong(&mut self, name: &str, v: &Spanned<AttrValue>, want: &str) {
        self.error = Some(Diagnostic::at(
            v.span.clone(),
            format!("`{name}` takes {want}, not {}", v.node.kind()),
        ));
    }

    fn uint_value(&mut self, name: &str, v: &Spanned<AttrValue>) -> Option<usize> {
        match v.node {
            AttrValue::Int(i) if (0..=MAX_ATTR as i64).contains(&i) => Some(i as usize),
            AttrValue::Int(i) => {
                self.error = Some(Diagnostic::at(
                    v.span.clone(),
                    format!("`{name}` = {i} is out of range 0..={MAX_ATTR}"),
                ));
                None
            }
            _ => {
                self.wrong(name, v, "a non-negative integer");
                None
            }
        }
    }
}

impl AttrVisitor for Reader<'_> {
    fn uint(&mut self, name: &'static str, value: &mut usize, default: Option<usize>) {
        if let Some(v) = self.get(name, default.is_none()).cloned() {
            if let Some(u) = self.uint_value(name, &v) {
                *value = u;
            }
        }
    }
    fn opt_uint(&mut self, name: &'static str, value: &mut Option<usize>) {
        if let Some(v) = self.get(name, false).cloned() {
            *value = self.uint_value(name, &v);
        }
    }
    fn boolean(&mut self, name: &'static str, value: &mut bool, _: bool) {
        if let Some(v) = self.get(name, false).cloned() {
            match &v.node {
                AttrValue::Ident(s) if s == "true" => *value = true,
                AttrValue::Ident(s) if s == "false" => *value = false,
                _ => self.wrong(name, &v, "`true` or `false`"),
            }
        }
    }
    fn float(&mut self, name: &'static str, value: &mut F64, _: f64) {
        if let Some(v) = self.get(name, false).cloned() {
            match v.node {
                AttrValue::Float(x) => *value = x.into(),
                AttrValue::Int(i) => *value = (i as f64).into(),
                _ => self.wrong(name, &v, "a number"),
            }
        }
    }
    fn ident(
        &mut self,
        name: &'static str,
        value: &mut Option<&'static str>,
        options: &'static [&'static str],
    ) {
        let Some(v) = self.get(name, false).cloned() else { return };
        match &v.node {
            AttrValue::Ident(s) => match options.iter().find(|o| *o == s) {
                Some(o) => *value = Some(o),
                None => {
                    self.error = Some(Diagnostic::at(
                        v.span.clone(),
                        format!("`{name}` = {s}: expected one of {}", options.join(", ")),
                    ))
                }
            },
            _ => self.wrong(name, &v, &format!("one of {}", options.join(", "))),
        }
    }
    fn padding(&mut self, name: &'static str, value: &mut Padding, _: Padding) {
        let Some(v) = self.get(name, false).cloned() else {
            return;
        };
        match &v.node {
            AttrValue::Ident(s) if s == "same" => *value = Padding::Same,
            AttrValue::Ident(s) if s == "valid" => *value = Padding::Explicit { left: 0, right: 0 },
            AttrValue::Int(_) => {
                if let Some(p) = self.uint_value(name, &v) {
                    *value = Padding::Explicit { left: p, right: p };
                }
            }
            AttrValue::List(items) if items.len() == 2 => {
                let (l, r) = (self.uint_value(name, &items[0]), self.uint_value(name, &items[1]));
                if let (Some(left), Some(right)) = (l, r) {
                    *value = Padding::Explicit { left, right };
                }
            }
            _ => self.wrong(name, &v, "`same`, `valid`, an integer, or `[left, right]`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_stay_for_short_names_and_skip_long_ones() {
        let names = ["kernel", "stride", "padding"];
        assert_eq!(suggest("kernal", names.iter().copied()), Some("kernel"));
        assert_eq!(suggest("strid", names.iter().copied()), Some("stride"));
        // A 60,000-character name took 17 s of edit distance against its
        // near twin; names over the bound get no suggestion at all.
        let long = "a".repeat(60_000);
        let twin = format!("{}b", &long[1..]);
        assert_eq!(suggest(&twin, [long.as_str()].into_iter()), None);
        let at_bound = "k".repeat(MAX_SUGGESTED_LEN);
        let typo = format!("{}j", &at_bound[1..]);
        assert_eq!(suggest(&typo, [at_bound.as_str()].into_iter()), Some(at_bound.as_str()));
    }
}
