//! A lowered integer program on disk: a directory with `model.pot` (the
//! integer IR text) and `weights.safetensors` (I32 tensors: each op's
//! parameters, and `<value>.exp`, the power-of-two exponent of every value).
//! Loading checks everything an engine relies on, so a hand-edited program
//! gets an error naming the file and the tensor, never a panic.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::ckpt::{write_atomic, Checkpoint, TensorData, KEY_LABELS};
use crate::ir::op::Op;
use crate::ir::verify::is_integer_program;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ir::{print, Elem, Graph, Type};
use crate::pass::IntStore;
use crate::quant::accum::{int_layer_bound, max_magnitude, signed_bits};
use crate::quant::quantizer::quantize64;
use crate::quant::QuantSpec;

pub const MODEL_FILE: &str = "model.pot";
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// Left shifts beyond this are refused: they would push any nonzero value
/// out of every integer type.
const MAX_SHIFT: i32 = 62;

/// Exponents beyond this are refused: `2^e` of a value is then no finite
/// `f64`, and reports subtract exponents.
pub const MAX_EXPONENT: u32 = 1023;

/// An integer-only program and its tensors.
#[derive(Debug, Clone)]
pub struct IntProgram {
    pub graph: Graph,
    pub tensors: IntStore,
    /// Class labels in output order (the training checkpoint's mapping).
    pub labels: Vec<String>,
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
    pub fn new(p: IntProgram) -> Result<CheckedProgram, String> {
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
    /// Writes `dir/model.pot` and `dir/weights.safetensors`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))?;
        let mut ck = Checkpoint::default();
        ck.set_model(&self.graph);
        ck.set_json(KEY_LABELS, &self.labels);
        for (name, (shape, v)) in &self.tensors {
            ck.insert_i32(name.clone(), shape.clone(), v.clone());
        }
        ck.save(&dir.join(WEIGHTS_FILE)).map_err(|e| e.to_string())?;
        let model = dir.join(MODEL_FILE);
        write_atomic(&model, |w| w.write_all(print(&self.graph).as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", model.display()))
    }

    /// Runs [`check`](Self::check) and, when it passes, wraps the program
    /// in a [`CheckedProgram`], the only form the engines accept.
    pub fn checked(self) -> Result<CheckedProgram, String> {
        self.check()?;
        Ok(CheckedProgram { program: self })
    }

    /// Reads and checks a program directory; `graph` is its parsed model text.
    pub fn load(dir: &Path, graph: Graph) -> Result<CheckedProgram, String> {
        let wpath = dir.join(WEIGHTS_FILE);
        let ck = Checkpoint::load(&wpath).map_err(|e| e.to_string())?;
        IntProgram::from_checkpoint(&wpath, ck, graph)
    }

    /// Checks the weights of a program (read from `wpath`, the file named
    /// in errors) for its parsed model text: what [`IntProgram::load`] does
    /// after reading the file.
    pub fn from_checkpoint(
        wpath: &Path,
        ck: Checkpoint,
        graph: Graph,
    ) -> Result<CheckedProgram, String> {
        let mut tensors = IntStore::new();
        for (name, t) in ck.tensors.clone() {
            match t.data {
                TensorData::I32(v) => tensors.insert(name, (t.shape, v)),
                TensorData::F32(_) => {
                    return Err(format!(
                        "{}: tensor `{name}` is f32; an integer program holds only i32 tensors",
                        wpath.display()
                    ))
                }
            };
        }
        let labels =
            ck.json::<Vec<String>>(KEY_LABELS).map_err(|e| e.in_file(wpath).to_string())?;
        let program = IntProgram { graph, tensors, labels: labels.unwrap_or_default() };
        program.checked().map_err(|e| format!("{}: {e}", wpath.display()))
    }

    /// The checks an engine relies on: an integer program, every parameter
    /// present with its shape, weights in their range, shifts in range, and
    /// the input's and output's exponents.
    pub fn check(&self) -> Result<(), String> {
        let g = &self.graph;
        if !is_integer_program(g) {
            return Err(format!("model `{}` is not an integer program (its input is f32)", g.name));
        }
        for id in g.order().map_err(|_| "the graph has a cycle".to_string())? {
            let node = g.node(id);
            let tys: Vec<_> = g.operands(id).iter().map(|&o| &g.node(o).ty).collect();
            for p in node.op.params(&tys) {
                let name = format!("{}.{}", node.name, p.slot);
                let (shape, v) =
                    self.tensors.get(&name).ok_or_else(|| format!("missing tensor `{name}`"))?;
                if *shape != p.shape {
                    return Err(format!(
                        "tensor `{name}` has shape {shape:?}, the op needs {:?}",
                        p.shape
                    ));
                }
                self.check_values(&node.op, p.slot, &name, v)?;
            }
            self.check_accumulator(g, id)?;
        }
        if let Some(name) = self.unexpected_tensor() {
            return Err(format!(
                "unexpected tensor `{name}`: no op or value of the model has it (an engine \
                 would silently ignore or use it); lower the checkpoint again"
            ));
        }
        for id in g.node_ids() {
            self.check_exponents(g, id)?;
        }
        for id in g.inputs().iter().copied().chain(g.output()) {
            let name = format!("{}.exp", g.node(id).name);
            match self.tensors.get(&name) {
                Some((_, v)) if !v.is_empty() => {}
                _ => {
                    return Err(format!(
                        "missing tensor `{name}` (the exponent of `%{}`)",
                        g.node(id).name
                    ))
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
    fn check_exponents(&self, g: &Graph, id: crate::ir::NodeId) -> Result<(), String> {
        let node = g.node(id);
        let name = format!("{}.exp", node.name);
        let Some((_, v)) = self.tensors.get(&name) else { return Ok(()) };
        let channels = node.ty.shape.first().copied().unwrap_or(1);
        let allowed = if node.op == Op::Input { 1 } else { channels };
        if v.len() != 1 && v.len() != allowed {
            return Err(format!(
                "tensor `{name}` has {} values; `%{}` takes one exponent{}",
                v.len(),
                node.name,
                if allowed == 1 {
                    String::new()
                } else {
                    format!(" or one per channel ({allowed})")
                }
            ));
        }
        if let Some(e) = v.iter().find(|e| e.unsigned_abs() > MAX_EXPONENT) {
            return Err(format!("tensor `{name}`: exponent {e} is outside ±{MAX_EXPONENT}"));
        }
        Ok(())
    }

    /// Engines add in the accumulator's width without checks: the worst case
    /// of spec section 7 must fit it (as `lower-int` proved when it wrote the
    /// program).
    fn check_accumulator(&self, g: &Graph, id: crate::ir::NodeId) -> Result<(), String> {
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
            return Err(format!(
                "`%{}`: output channel {r} can reach |acc| = {worst}, beyond its i{bits} accumulator",
                node.name
            ));
        }
        Ok(())
    }

    fn check_values(&self, op: &Op, slot: &str, name: &str, v: &[i32]) -> Result<(), String> {
        let bad = |why: String| Err(format!("tensor `{name}`: {why}"));
        match (op, slot) {
            (Op::IntConv1d(_) | Op::IntLinear(_), "w") => {
                let q = match op {
                    Op::IntConv1d(c) => &c.quant,
                    Op::IntLinear(l) => &l.quant,
                    _ => unreachable!("a MAC op"),
                };
                let bits = q.weight_bits();
                let Some(lim) = q.weight_limit() else {
                    return bad(format!("{bits}-bit weights are beyond any integer type"));
                };
                if let Some(w) = v.iter().find(|w| i64::from(w.unsigned_abs()) > lim) {
                    return bad(format!("weight {w} is outside the {bits}-bit range ±{lim}"));
                }
                if q.pot() {
                    if let Some(w) =
                        v.iter().find(|&&w| w != 0 && !w.unsigned_abs().is_power_of_two())
                    {
                        return bad(format!("weight {w} is not 0 or ±2^k (w_format = pot)"));
                    }
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

    /// The exponent of the output's integers (one for all channels).
    pub fn output_exponent(&self) -> Option<i32> {
        let out = self.graph.output()?;
        let (_, v) = self.tensors.get(&format!("{}.exp", self.graph.node(out).name))?;
        v.iter().all(|&e| e == v[0]).then(|| v[0])
    }

    /// The input's type (`[channels, length]` of an integer).
    pub fn input_type(&self) -> &Type {
        &self.graph.node(self.graph.inputs()[0]).ty
    }

    /// The input's integer type and exponent.
    pub fn input(&self) -> (Elem, i32) {
        let node = self.graph.node(self.graph.inputs()[0]);
        let e = self.tensors.get(&format!("{}.exp", node.name)).map_or(0, |(_, v)| v[0]);
        (node.ty.elem, e)
    }

    /// `n` samples of input integers drawn uniformly over the input type's
    /// range, seeded: what `potc bench` times and `potc export` ships
    /// without data.
    pub fn random_input(&self, n: usize, seed: u64) -> Vec<i64> {
        let ty = self.input_type();
        let (lo, hi) = ty.elem.range().unwrap_or((0, 0));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * ty.elements() as usize).map(|_| rng.random_range(lo..=hi)).collect()
    }

    /// Data (f32) to the program's input integers: `q(x)` of the input
    /// quantizer, round half up then clamp, in f64 as the simulation does it.
    pub fn quantize_input(&self, x: &[f32]) -> Vec<i64> {
        let (elem, e) = self.input();
        let Elem::Int { signed, bits } = elem else { return vec![] };
        let spec = QuantSpec { bits: u32::from(bits), signed, narrow: false };
        x.iter().map(|&v| quantize64(f64::from(v), e, &spec) as i64).collect()
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

/// `dir/model.pot`.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join(MODEL_FILE)
}
