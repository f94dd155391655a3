//! The loader's checks: everything an engine relies on, proved once, and
//! [`CheckedProgram`], the form of a program only they build.

use std::collections::HashSet;

use super::IntProgram;
use crate::ir::op::Op;
use crate::ir::verify::is_integer_program;
use crate::ir::{Elem, Graph};
use crate::pass::IntStore;
use crate::quant::accum::{int_layer_bound, max_magnitude, signed_bits};

/// Left shifts beyond this are refused: they would push any nonzero value
/// out of every integer type.
const MAX_SHIFT: i32 = 62;

/// Exponents beyond this are refused: `2^e` of a value is then no finite
/// `f64`, and reports subtract exponents.
pub const MAX_EXPONENT: u32 = 1023;

/// Why a program fails the checks an engine relies on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("model `{0}` is not an integer program (its input is f32)")]
    NotInteger(String),
    #[error("the graph has a cycle")]
    Cycle,
    #[error("missing tensor `{name}`{}", .of.as_ref().map(|v| format!(" (the exponent of `%{v}`)")).unwrap_or_default())]
    MissingTensor { name: String, of: Option<String> },
    #[error("tensor `{name}` has shape {got:?}, the op needs {want:?}")]
    Shape { name: String, got: Vec<usize>, want: Vec<usize> },
    #[error(
        "unexpected tensor `{0}`: no op or value of the model has it (an engine would \
             silently ignore or use it); lower the checkpoint again"
    )]
    UnexpectedTensor(String),
    #[error("tensor `{name}` has {got} values; `%{value}` takes one exponent{}", if *.channels == 1 { String::new() } else { format!(" or one per channel ({})", .channels) })]
    ExponentCount { name: String, got: usize, value: String, channels: usize },
    #[error("tensor `{name}`: exponent {e} is outside ±{MAX_EXPONENT}")]
    ExponentRange { name: String, e: i32 },
    #[error("`%{node}`: output channel {channel} can reach |acc| = {worst}, beyond its i{bits} accumulator")]
    Accumulator { node: String, channel: usize, worst: u128, bits: u8 },
    /// A tensor's values are outside what its op takes: `why` names the
    /// value and the range.
    #[error("tensor `{name}`: {why}")]
    Value { name: String, why: String },
}

/// An [`IntProgram`] that passed [`IntProgram::check`]: every parameter
/// present with the shape its op needs, shifts and exponents in range, and
/// the accumulator proof. Its field is private, so the only way to build one
/// is [`IntProgram::checked`] (or [`IntProgram::load`], which calls it), and
/// it gives only shared access to the program: the engines (the JIT, the C
/// export, the integer interpreter) take a `&CheckedProgram` and may index
/// its tables by the sizes the checks proved.
///
/// A plain program is refused at compile time:
///
/// ```compile_fail
/// use potc::backend::jit::{JitOptions, JitProgram};
/// use potc::program::IntProgram;
/// fn unchecked(p: &IntProgram) {
///     let _ = JitProgram::compile(p, JitOptions::default());
/// }
/// ```
///
/// and so is a struct literal:
///
/// ```compile_fail
/// use potc::program::{CheckedProgram, IntProgram};
/// fn forge(p: IntProgram) -> CheckedProgram {
///     CheckedProgram { program: p }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CheckedProgram {
    program: IntProgram,
}

impl CheckedProgram {
    /// Checks `p`; the same as [`IntProgram::checked`].
    pub fn new(p: IntProgram) -> Result<CheckedProgram, ProgramError> {
        p.checked()
    }

    /// The checked program (read only).
    pub fn program(&self) -> &IntProgram {
        &self.program
    }

    /// Gives the program back, unchecked again (for editing it).
    pub fn into_inner(self) -> IntProgram {
        self.program
    }
}

impl std::ops::Deref for CheckedProgram {
    type Target = IntProgram;
    fn deref(&self) -> &IntProgram {
        &self.program
    }
}

impl IntProgram {
    /// Runs [`check`](Self::check) and, when it passes, wraps the program
    /// in a [`CheckedProgram`], the only form the engines accept.
    pub fn checked(self) -> Result<CheckedProgram, ProgramError> {
        self.check()?;
        Ok(CheckedProgram { program: self })
    }

    /// The checks an engine relies on: an integer program, every parameter
    /// present with its shape, weights in their range, shifts in range, and
    /// the input's and output's exponents.
    pub fn check(&self) -> Result<(), ProgramError> {
        let g = &self.graph;
        if !is_integer_program(g) {
            return Err(ProgramError::NotInteger(g.name.clone()));
        }
        for id in g.order().map_err(|_| ProgramError::Cycle)? {
            let node = g.node(id);
            let tys: Vec<_> = g.operands(id).iter().map(|&o| &g.node(o).ty).collect();
            for p in node.op.params(&tys) {
                let name = format!("{}.{}", node.name, p.slot);
                let Some((shape, v)) = self.tensors.get(&name) else {
                    return Err(ProgramError::MissingTensor { name, of: None });
                };
                if *shape != p.shape {
                    let (got, want) = (shape.clone(), p.shape.clone());
                    return Err(ProgramError::Shape { name, got, want });
                }
                self.check_values(&node.op, p.slot, &name, v)?;
            }
            self.check_accumulator(g, id)?;
        }
        if let Some(name) = self.unexpected_tensor() {
            return Err(ProgramError::UnexpectedTensor(name.into()));
        }
        for id in g.node_ids() {
            self.check_exponents(g, id)?;
        }
        for id in g.inputs().iter().copied().chain(g.output()) {
            let name = format!("{}.exp", g.node(id).name);
            match self.tensors.get(&name) {
                Some((_, v)) if !v.is_empty() => {}
                _ => {
                    let of = Some(g.node(id).name.clone());
                    return Err(ProgramError::MissingTensor { name, of });
                }
            }
        }
        Ok(())
    }

    /// The first tensor (in name order) that is neither a parameter of an op
    /// nor a value's exponent (`<value>.exp`).
    fn unexpected_tensor(&self) -> Option<&str> {
        let expected = expected_tensors(&self.graph);
        self.tensors.keys().map(String::as_str).find(|name| !expected.contains(*name))
    }

    /// Drops the tensors no op of the graph names (the exponent of a value a
    /// pass removed, such as a fused ReLU), so that the program passes
    /// [`check`](Self::check).
    pub fn retain_expected(tensors: &mut IntStore, g: &Graph) {
        let expected = expected_tensors(g);
        tensors.retain(|name, _| expected.contains(name));
    }

    /// A value's exponents (`<value>.exp`, when present): one, or one per
    /// channel (the input: one, for every channel is quantized alike), each
    /// within `±MAX_EXPONENT` so that `2^e` and differences of exponents
    /// stay finite.
    fn check_exponents(&self, g: &Graph, id: crate::ir::NodeId) -> Result<(), ProgramError> {
        let node = g.node(id);
        let name = format!("{}.exp", node.name);
        let Some((_, v)) = self.tensors.get(&name) else { return Ok(()) };
        let channels = node.ty.shape.first().copied().unwrap_or(1);
        let allowed = if node.op == Op::Input { 1 } else { channels };
        if v.len() != 1 && v.len() != allowed {
            let (got, value) = (v.len(), node.name.clone());
            return Err(ProgramError::ExponentCount { name, got, value, channels: allowed });
        }
        if let Some(&e) = v.iter().find(|e| e.unsigned_abs() > MAX_EXPONENT) {
            return Err(ProgramError::ExponentRange { name, e });
        }
        Ok(())
    }

    /// Engines add in the accumulator's width without checks: the worst case
    /// of spec section 7 must fit it (as `lower-int` proved when it wrote the
    /// program).
    fn check_accumulator(&self, g: &Graph, id: crate::ir::NodeId) -> Result<(), ProgramError> {
        let node = g.node(id);
        let rows = match &node.op {
            Op::IntConv1d(c) => c.out_channels,
            Op::IntLinear(l) => l.out_features,
            _ => return Ok(()),
        };
        let Elem::Int { bits, .. } = node.ty.elem else { return Ok(()) };
        let w = &self.tensors[&format!("{}.w", node.name)].1;
        let b = self.tensors.get(&format!("{}.b", node.name)).map(|(_, v)| v.as_slice());
        let x = g.node(g.operands(id)[0]).ty.elem;
        let (r, worst) = int_layer_bound(w, b, rows, max_magnitude(x));
        let need = signed_bits(u64::try_from(worst).unwrap_or(u64::MAX));
        if need > u32::from(bits) {
            let node = node.name.clone();
            return Err(ProgramError::Accumulator { node, channel: r, worst, bits });
        }
        Ok(())
    }

    fn check_values(&self, op: &Op, slot: &str, name: &str, v: &[i32]) -> Result<(), ProgramError> {
        let bad = |why: String| Err(ProgramError::Value { name: name.into(), why });
        match (op, slot) {
            (Op::IntConv1d(_) | Op::IntLinear(_), "w") => {
                let q = op.int_mac_quant().expect("a MAC op");
                let bits = q.weight_bits();
                let Some(lim) = q.weight_limit() else {
                    return bad(format!("{bits}-bit weights are beyond any integer type"));
                };
                if let Some(w) = v.iter().find(|w| i64::from(w.unsigned_abs()) > lim) {
                    return bad(format!("weight {w} is outside the {bits}-bit range ±{lim}"));
                }
                let f = q.format();
                if let Some(w) = v.iter().find(|&&w| !f.holds(w, bits as u32)) {
                    return bad(format!("weight {w} is not a {bits}-bit weight of w_format = {f}"));
                }
            }
            (Op::Requant(_), "shift") => {
                if let Some(k) = v.iter().find(|&&k| k < -MAX_SHIFT) {
                    return bad(format!("left shift {} exceeds {MAX_SHIFT}", k.unsigned_abs()));
                }
            }
            (Op::Shl, "shift") => {
                if let Some(k) = v.iter().find(|&&k| !(0..=MAX_SHIFT).contains(&k)) {
                    return bad(format!("shift {k} is outside 0..={MAX_SHIFT}"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Every tensor name a program of graph `g` may hold: each op's parameters
/// (`<value>.<slot>`) and each value's exponent (`<value>.exp`).
fn expected_tensors(g: &Graph) -> HashSet<String> {
    let mut names = HashSet::new();
    for id in g.node_ids() {
        let node = g.node(id);
        names.insert(format!("{}.exp", node.name));
        if node.op == Op::Input {
            continue;
        }
        let tys: Vec<_> = g.operands(id).iter().map(|&o| &g.node(o).ty).collect();
        names.extend(node.op.params(&tys).into_iter().map(|p| format!("{}.{}", node.name, p.slot)));
    }
    names
}
