//! The Cranelift JIT for integer programs (`potc run --engine jit`). Every
//! cranelift import of the crate is in this folder.
//!
//! One program becomes one native function `run(input, output, scratch)`
//! computing one sample: the ops in program order, each lowered by
//! [`kernels`] into counted loops ([`loops`]) over `i32` buffers in the
//! scratch arena, the weights and shift tables baked in as the addresses of
//! buffers the [`JitProgram`] owns. Samples run in parallel, one scratch
//! arena per thread. The only `unsafe` call into generated code is
//! `Code::call`.

mod dot;
mod kernels;
mod loops;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rayon::prelude::*;

use crate::interp::integer::range;
use crate::ir::op::Op;
use crate::ir::{Elem, NodeId};
use crate::program::IntProgram;
use crate::quant::QuantSpec;
use kernels::{Buf, Dims};

/// The index and pointer type of generated code (x86-64, aarch64).
const IDX: types::Type = types::I64;

/// Why a program could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("Cranelift does not support this host: {0}")]
    Host(String),
    #[error("Cranelift settings: {0}")]
    Settings(String),
    #[error("code generation failed: {0}")]
    Codegen(String),
    #[error("the program cannot be compiled: {0}")]
    Program(String),
}

/// Code generation choices.
#[derive(Debug, Clone, Copy, Default)]
pub struct JitOptions {
    /// Cranelift's `opt_level = none` instead of `speed` (faster to compile).
    pub no_opt: bool,
    /// Keep the generated machine code's disassembly (`JitProgram::disasm`).
    pub disasm: bool,
    /// Generate code for a host without VNNI even on one with it: the dot
    /// products become widening multiplies and pairwise adds (the fallback
    /// other hosts get; tested against the interpreter).
    pub no_vnni: bool,
}

/// The generated entry point: `run(input, output, scratch)` on one sample.
type Entry = unsafe extern "C" fn(*const i32, *mut i32, *mut i32);

/// A compiled program: the native code and everything it points into.
pub struct JitProgram {
    /// Owns the code; freed on drop. Behind a mutex only so that the
    /// program can be shared by threads (they use `code`, never the module).
    module: Option<std::sync::Mutex<JITModule>>,
    code: Code,
    /// Buffers whose addresses the code holds (weights, biases, tables).
    /// Never touched again: their heap storage must not move or drop.
    _tables: Vec<Vec<i32>>,
    pub input_len: usize,
    pub output_len: usize,
    /// Wall time of code generation and linking.
    pub compile_time: Duration,
    /// The machine code as text, with `JitOptions::disasm`.
    pub disasm: Option<String>,
}

/// The entry point and the buffer sizes it relies on. Private and only
/// copied into closures that `JitProgram` methods run to completion, so it
/// never outlives the module that owns the code.
#[derive(Clone, Copy)]
struct Code {
    entry: Entry,
    input_len: usize,
    output_len: usize,
    scratch_len: usize,
}

impl Code {
    fn call(&self, x: &[i32], out: &mut [i32], scratch: &mut [i32]) {
        assert_eq!(x.len(), self.input_len, "input length");
        assert_eq!(out.len(), self.output_len, "output length");
        assert_eq!(scratch.len(), self.scratch_len, "scratch length");
        // SAFETY: the generated code reads exactly `input_len` i32 from `x`,
        // writes `output_len` to `out` and uses `scratch_len` in `scratch`
        // (every index is a compile-time function of the checked shapes, see
        // `Layout`), all asserted above; the tables it reads are owned by the
        // `JitProgram`, alive while `self` is (see `Code`); it neither
        // allocates, unwinds nor keeps any pointer.
        unsafe { (self.entry)(x.as_ptr(), out.as_mut_ptr(), scratch.as_mut_ptr()) }
    }
}

impl Drop for JitProgram {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            let m = m.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
            // SAFETY: `code` points into this module's memory and dies with
            // `self`; no copy of it outlives `self` (see `Code`).
            unsafe { m.free_memory() };
        }
    }
}

impl JitProgram {
    /// Compiles `p` (checked by `IntProgram::check`, as loading does) for
    /// the host.
    pub fn compile(p: &IntProgram, opts: JitOptions) -> Result<JitProgram, JitError> {
        let started = Instant::now();
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| JitError::Settings(format!("{k} = {v}: {e}")))
        };
        set(&mut flags, "opt_level", if opts.no_opt { "none" } else { "speed" })?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        let mut host = cranelift_native::builder().map_err(|e| JitError::Host(e.to_string()))?;
        if opts.no_vnni && cfg!(target_arch = "x86_64") {
            for f in ["has_avx_vnni", "has_avx512vnni"] {
                host.set(f, "false").map_err(|e| JitError::Settings(format!("{f}: {e}")))?;
            }
        }
        let isa = host
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Settings(e.to_string()))?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let mut ctx = module.make_context();
        for _ in 0..3 {
            ctx.func.signature.params.push(AbiParam::new(IDX));
        }
        let id = module
            .declare_function("run", Linkage::Export, &ctx.func.signature)
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let mut layout = Layout::of(p)?;
        let tables = emit(&mut b, p, &mut layout)?;
        b.finalize(module.target_config());
        ctx.set_disasm(opts.disasm);
        module.define_function(id, &mut ctx).map_err(|e| JitError::Codegen(format!("{e:?}")))?;
        let disasm = ctx.compiled_code().and_then(|c| c.vcode.clone());
        module.clear_context(&mut ctx);
        module.finalize_definitions().map_err(|e| JitError::Codegen(e.to_string()))?;
        let code = module.get_finalized_function(id);
        // SAFETY: `code` is the finalized function just defined with the
        // signature of `Entry` (three pointer-sized arguments, no result,
        // the host's default calling convention, which `extern "C"` is).
        let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
        let code = Code {
            entry,
            input_len: layout.input_len,
            output_len: layout.output_len,
            scratch_len: layout.scratch_len,
        };
        Ok(JitProgram {
            module: Some(std::sync::Mutex::new(module)),
            code,
            _tables: tables,
            input_len: layout.input_len,
            output_len: layout.output_len,
            compile_time: started.elapsed(),
            disasm,
        })
    }

    /// A scratch arena for `Code::call`.
    pub fn scratch(&self) -> Vec<i32> {
        vec![0; self.code.scratch_len]
    }

    /// Runs one sample: `x` holds `input_len` integers of the input type,
    /// `out` receives `output_len`; panics on other lengths.
    pub fn run_one(&self, x: &[i32], out: &mut [i32], scratch: &mut [i32]) {
        self.code.call(x, out, scratch);
    }

    /// Runs every sample of `x` (sample-major), in parallel over the current
    /// rayon pool, and returns the outputs sample-major.
    pub fn run(&self, x: &[i64]) -> Vec<i64> {
        let code = self.code;
        let n = x.len() / code.input_len.max(1);
        let mut out = vec![0i32; n * code.output_len];
        out.par_chunks_mut(code.output_len.max(1)).enumerate().for_each_init(
            || (vec![0i32; code.scratch_len], vec![0i32; code.input_len]),
            |(scratch, xi), (i, o)| {
                for (d, &v) in xi.iter_mut().zip(&x[i * code.input_len..]) {
                    *d = v as i32;
                }
                code.call(xi, o, scratch);
            },
        );
        out.into_iter().map(i64::from).collect()
    }
}

/// Where each value lives: the input in the input buffer, every other value
/// in the scratch arena (flatten shares its operand's buffer).
struct Layout {
    order: Vec<NodeId>,
    at: HashMap<NodeId, (Region, i64)>,
    /// Convolutions the vector kernel runs, with their packed input's
    /// offset in the scratch arena (in i32 words).
    dot: HashMap<NodeId, (dot::DotConv, i64)>,
    input_len: usize,
    output_len: usize,
    scratch_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Region {
    Input,
    Scratch,
}

impl Layout {
    fn of(p: &IntProgram) -> Result<Layout, JitError> {
        let g = &p.graph;
        let order = g.order().map_err(|_| JitError::Program("a cycle".into()))?;
        let input = g.inputs()[0];
        let out = g.output().ok_or_else(|| JitError::Program("no return".into()))?;
        let mut at = HashMap::new();
        let mut dots = HashMap::new();
        let mut next = 0i64;
        for &id in &order {
            let node = g.node(id);
            let mut len = node.ty.elements() as i64;
            if let Op::IntConv1d(c) = &node.op {
                let x = &g.node(g.operands(id)[0]).ty;
                let (ch, l) = (x.shape[0], x.shape[1]);
                let w = &p.tensors[&format!("{}.w", node.name)].1;
                let b = p.tensors.get(&format!("{}.b", node.name)).map(|(_, v)| v.as_slice());
                if let Elem::Int { signed, bits } = x.elem {
                    if let Some(dc) = dot::DotConv::plan(c, ch, w, b, signed, bits) {
                        let bytes = dot::packed_rows(c, l) * dot::row_bytes(&dc);
                        len = (dc.co_pad * node.ty.shape[1]) as i64;
                        dots.insert(id, (dc, next));
                        next += bytes.div_ceil(4) as i64;
                    }
                }
            }
            let slot = if id == input {
                (Region::Input, 0)
            } else if node.op == Op::Flatten {
                at[&g.operands(id)[0]]
            } else {
                let s = (Region::Scratch, next);
                next += len;
                s
            };
            at.insert(id, slot);
        }
        if next > i32::MAX as i64 / 4 {
            return Err(JitError::Program(format!("{next} scratch elements exceed 2 GiB")));
        }
        Ok(Layout {
            order,
            at,
            dot: dots,
            input_len: g.node(input).ty.elements() as usize,
            output_len: g.node(out).ty.elements() as usize,
            scratch_len: next as usize,
        })
    }
}

/// Emits the body of `run`; returns the tables whose addresses it holds.
fn emit(
    b: &mut FunctionBuilder,
    p: &IntProgram,
    layout: &mut Layout,
) -> Result<Vec<Vec<i32>>, JitError> {
    let g = &p.graph;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let [input, output, scratch] = b.block_params(entry)[..] else {
        return Err(JitError::Codegen("the entry block has three parameters".into()));
    };
    let buf = |id: NodeId| {
        let (region, offset) = layout.at[&id];
        Buf { base: if region == Region::Input { input } else { scratch }, offset }
    };
    let tensor = |name: String| -> Result<Vec<i32>, JitError> {
        p.tensors
            .get(&name)
            .map(|(_, v)| v.clone())
            .ok_or(JitError::Program(format!("no tensor `{name}`")))
    };
    let mut tables: Vec<Vec<i32>> = vec![];
    for &id in &layout.order.clone() {
        let node = g.node(id);
        let args = g.operands(id);
        let Some(&a) = args.first() else { continue };
        let at = &g.node(a).ty;
        let d = Dims {
            c: at.shape[0],
            l: at.shape.get(1).copied().unwrap_or(1),
            co: node.ty.shape[0],
            lo: node.ty.shape.get(1).copied().unwrap_or(1),
        };
        let (x, y) = (buf(a), buf(id));
        let n = node.ty.elements() as usize;
        let (lo, hi) = range(node.ty.elem)
            .ok_or_else(|| JitError::Program(format!("`%{}` is f32", node.name)))?;
        // Tables are moved into `tables` after the kernel took their
        // addresses: moving a Vec does not move its heap buffer.
        match &node.op {
            Op::IntConv1d(c) if layout.dot.contains_key(&id) => {
                let (dc, packed) = layout.dot.remove(&id).expect("planned");
                let (left, _) = c.padding.amounts(c.kernel, c.dilation);
                let xp = b.ins().iadd_imm_s(scratch, packed * 4);
                dot::pack(b, x, d.c, d.l, xp, dot::packed_rows(c, d.l), left, &dc);
                dot::conv(b, c, d.lo, xp, y, &dc);
                tables.extend([dc.weights, dc.bias]);
            }
            Op::IntConv1d(c) => {
                let w = tensor(format!("{}.w", node.name))?;
                let bias = if c.bias { Some(tensor(format!("{}.b", node.name))?) } else { None };
                kernels::conv1d(b, c, d, x, y, &w, bias.as_deref());
                tables.push(w);
                tables.extend(bias);
            }
            Op::IntLinear(l) => {
                let w = tensor(format!("{}.w", node.name))?;
                let bias = if l.bias { Some(tensor(format!("{}.b", node.name))?) } else { None };
                kernels::linear(b, d, x, y, &w, bias.as_deref());
                tables.push(w);
                tables.extend(bias);
            }
            Op::Requant(q) => {
                let spec = QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
                let t = kernels::requant_tables(&tensor(format!("{}.shift", node.name))?);
                kernels::shift_clamp(b, d, x, y, &t, spec.qmin(), spec.qmax());
                tables.extend([t.left, t.right, t.add_lo, t.add_hi]);
            }
            Op::Shl => {
                let left: Vec<i32> = tensor(format!("{}.shift", node.name))?
                    .iter()
                    .map(|&s| s.clamp(0, 32))
                    .collect();
                let zeros = vec![0; left.len()];
                let t = kernels::ShiftTables {
                    left,
                    right: zeros.clone(),
                    add_lo: zeros.clone(),
                    add_hi: zeros,
                };
                kernels::shift_clamp(b, d, x, y, &t, lo, hi);
                tables.extend([t.left, t.right, t.add_lo, t.add_hi]);
            }
            Op::Add => kernels::add(b, n, x, buf(args[1]), y, lo, hi),
            Op::Relu => kernels::relu(b, n, x, y),
            Op::GlobalSumPool => kernels::sum_pool(b, d, x, y),
            Op::MaxPool1d(pool) => kernels::max_pool(b, pool, d, x, y),
            Op::Flatten => {}
            op => {
                return Err(JitError::Program(format!(
                    "`%{}`: {} is not an integer op",
                    node.name,
                    op.name()
                )))
            }
        }
        if !matches!(node.ty.elem, Elem::Int { .. }) {
            return Err(JitError::Program(format!("`%{}` is not an integer value", node.name)));
        }
    }
    let out = g.output().ok_or_else(|| JitError::Program("no return".into()))?;
    kernels::copy(b, layout.output_len, buf(out), Buf { base: output, offset: 0 });
    b.ins().return_(&[]);
    Ok(tables)
}
