//! The Cranelift JIT for integer programs (`potc run --engine jit`). Every
//! cranelift import of the crate is in this folder.
//!
//! Each op of a program becomes one native function, a *step*
//! `step(input, output, scratch, from, to)`, lowered by [`kernels`] and
//! [`dot`] into counted loops ([`loops`]) over buffers in a scratch arena,
//! with the weights and shift tables baked in as the addresses of buffers
//! the [`JitProgram`] owns. A step whose outer loop splits (output channel
//! blocks of a convolution, channels of a requantization) computes only
//! `from..to` of it, so one sample can be spread over two threads; batches
//! run a sample per thread instead. The only `unsafe` call into generated
//! code is `Code::step`.

mod dot;
mod kernels;
mod loops;
pub mod micro;
mod requant;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, UserFuncName, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use rayon::prelude::*;

use crate::ir::op::Op;
use crate::ir::{Elem, NodeId};
use crate::program::{CheckedProgram, IntProgram};
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
    /// Keep the generated machine code's disassembly (`JitProgram::disasm`).
    pub disasm: bool,
    /// Generate code for a host without VNNI even on one with it: the dot
    /// products become widening multiplies and pairwise adds (the fallback
    /// other hosts get; tested against the interpreter).
    pub no_vnni: bool,
    /// The family of MAC kernels (resolved for this host: [`micro::Kernels::resolve`]).
    pub kernels: micro::Kernels,
}

/// A generated step: `(input, output, scratch, from, to)`.
type Step = unsafe extern "C" fn(*const i32, *mut i32, *mut i32, i64, i64);

/// A compiled program: the native code and everything it points into.
pub struct JitProgram {
    /// Owns the code; freed on drop. Behind a mutex only so that the
    /// program can be shared by threads (they use `code`, never the module).
    module: Option<std::sync::Mutex<JITModule>>,
    code: Code,
    /// Buffers whose addresses the code holds (weights, biases, tables).
    /// Never touched again: their heap storage must not move or drop.
    _tables: Vec<Vec<i32>>,
    /// The microkernels' specs and packed weights, likewise.
    _micro: Vec<micro::MicroConv>,
    /// The family of MAC kernels the code calls.
    pub kernels: micro::Kernels,
    /// Requantizations a microkernel computes as its convolution's epilogue.
    pub fused_requants: usize,
    pub input_len: usize,
    pub output_len: usize,
    /// Wall time of code generation and linking.
    pub compile_time: Duration,
    /// The machine code as text, with `JitOptions::disasm`.
    pub disasm: Option<String>,
    /// Scratch arenas `run` reuses.
    arenas: std::sync::Mutex<Vec<Scratch>>,
}

/// 64 bytes on a 64-byte boundary: the unit of scratch arenas and packed
/// weights. With the layout's buffers starting at multiples of 16 words,
/// every buffer starts on a cache line: a 64-byte vector access then
/// touches one line, not two, and the two threads that split a step write
/// whole lines of their own. Unaligned, which depended on where the
/// allocator put the arena, batch-1 latency at L = 24 alternated between
/// 19 and 35 us from process to process.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
pub struct Line([i32; 16]);

impl Line {
    /// `bytes` in lines (little-endian words, the tail zero).
    pub fn of_bytes(bytes: &[u8]) -> Vec<Line> {
        let mut lines = vec![Line::default(); bytes.len().div_ceil(64)];
        for (line, chunk) in lines.iter_mut().zip(bytes.chunks(64)) {
            for (word, q) in line.0.iter_mut().zip(chunk.chunks(4)) {
                let mut le = [0u8; 4];
                le[..q.len()].copy_from_slice(q);
                *word = i32::from_le_bytes(le);
            }
        }
        lines
    }
}

/// Words for one sample's intermediate values, on cache lines.
pub struct Scratch {
    lines: Vec<Line>,
    len: usize,
}

impl Scratch {
    fn new(len: usize) -> Scratch {
        Scratch { lines: vec![Line::default(); len.div_ceil(16)], len }
    }

    fn words(&mut self) -> &mut [i32] {
        // SAFETY: a Line is 16 i32 and nothing else (repr(C), no padding),
        // so `lines` is 16 * lines.len() >= len initialized i32 in one
        // allocation, borrowed mutably for the slice's lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<i32>(), self.len) }
    }
}

/// The steps and the buffer sizes they rely on. Private, and borrowed only
/// by `JitProgram` methods, so it never outlives the module that owns the code.
struct Code {
    /// Each step with the length of its splittable range (1: not split).
    steps: Vec<(Step, usize)>,
    /// The steps as the work units of a sample split over two threads.
    units: Vec<Unit>,
    input_len: usize,
    output_len: usize,
    scratch_len: usize,
}

/// The three buffers of one sample, shared by the threads that split a step.
#[derive(Clone, Copy)]
struct Buffers(*const i32, *mut i32, *mut i32);

// SAFETY: the pointers are only passed to steps (see `Code::step`), whose
// concurrent halves write disjoint parts of the buffers.
unsafe impl Send for Buffers {}
// SAFETY: as for `Send`: shared use only passes the pointers to steps, whose
// concurrent halves write disjoint parts of the buffers.
unsafe impl Sync for Buffers {}

impl Code {
    /// Runs step `i` over `from..to` of its range.
    fn step(&self, i: usize, buf: Buffers, from: usize, to: usize) {
        let (step, len) = self.steps[i];
        assert!(from <= to && to <= len, "step range");
        // SAFETY: `buf` holds `input_len`, `output_len` and `scratch_len`
        // i32 (asserted in `call`, which made it); the generated code touches
        // no other memory but the tables the `JitProgram` owns, at indices
        // that are compile-time functions of the shapes of the
        // `CheckedProgram` it was compiled from (see `Layout`), whose checks
        // sized every table; it neither allocates, unwinds nor keeps a pointer. For
        // `from..to` inside the range, a step writes only the part of its
        // output that range names, and reads values earlier steps finished,
        // so two threads running disjoint ranges of one step do not race.
        unsafe { step(buf.0, buf.1, buf.2, from as i64, to as i64) }
    }

    /// One sample through every step; with `split`, each splittable step's
    /// range is halved between two threads ([`Code::call_split`]).
    fn call(&self, x: &[i32], out: &mut [i32], scratch: &mut [i32], split: bool) {
        assert_eq!(x.len(), self.input_len, "input length");
        assert_eq!(out.len(), self.output_len, "output length");
        assert_eq!(scratch.len(), self.scratch_len, "scratch length");
        let buf = Buffers(x.as_ptr(), out.as_mut_ptr(), scratch.as_mut_ptr());
        if split {
            self.call_split(buf);
        } else {
            for (i, &(_, len)) in self.steps.iter().enumerate() {
                self.step(i, buf, 0, len);
            }
        }
    }

    /// The steps as work units, in order, claimed one at a time by two
    /// rayon tasks: a splittable step is two units (its halves), any other
    /// one. A unit starts once every unit of the earlier steps is done;
    /// the only waits are for units another task is running, so a task
    /// that starts late (or never: `join` then runs it after the first,
    /// finding nothing left) costs no deadlock and no idle step. One `join`
    /// a sample instead of one a step: the helper is woken once.
    fn call_split(&self, buf: Buffers) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let work = || loop {
            let u = next.fetch_add(1, Ordering::Relaxed);
            let Some(&Unit { step, from, to, first }) = self.units.get(u) else { break };
            // Acquire: the earlier steps' writes, released by their units.
            // Spin (a unit lasts microseconds), yielding now and then in
            // case the other task's thread waits for this CPU.
            let mut spins = 0u32;
            while done.load(Ordering::Acquire) < first {
                spins += 1;
                if spins.is_multiple_of(4096) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            self.step(step, buf, from, to);
            done.fetch_add(1, Ordering::Release);
        };
        rayon::join(work, work);
    }
}

/// A unit of [`Code::call_split`]: range `from..to` of step `step`, whose
/// first unit is number `first`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    step: usize,
    from: usize,
    to: usize,
    first: usize,
}

/// The units of `steps`: the two halves of a splittable step, else the step.
fn split_units(steps: &[(Step, usize)]) -> Vec<Unit> {
    let mut units = vec![];
    for (step, &(_, len)) in steps.iter().enumerate() {
        let first = units.len();
        let unit = |from, to| Unit { step, from, to, first };
        if len >= 2 {
            units.extend([unit(0, len / 2), unit(len / 2, len)]);
        } else {
            units.push(unit(0, len));
        }
    }
    units
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

/// The parameters of a step, as values of the function being built.
struct Params {
    input: Value,
    output: Value,
    scratch: Value,
    from: Value,
    to: Value,
}

/// Defines the steps of one module.
struct Steps<'m> {
    module: &'m mut JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    sig: Signature,
    defined: Vec<(FuncId, usize)>,
    /// Name and machine-code size of each step, for profilers.
    symbols: Vec<(String, usize)>,
    disasm: Option<String>,
}

impl Steps<'_> {
    /// Defines a step named `name` whose range has `len` parts.
    fn define(
        &mut self,
        name: &str,
        len: usize,
        body: impl FnOnce(&mut FunctionBuilder, &Params) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        let err = |e: cranelift_module::ModuleError| JitError::Codegen(format!("{name}: {e:?}"));
        let id = self.module.declare_function(name, Linkage::Local, &self.sig).map_err(err)?;
        self.ctx.func.signature = self.sig.clone();
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let [input, output, scratch, from, to] = b.block_params(entry)[..] else {
            return Err(JitError::Codegen("a step has five parameters".into()));
        };
        body(&mut b, &Params { input, output, scratch, from, to })?;
        b.ins().return_(&[]);
        b.finalize(self.module.target_config());
        self.ctx.set_disasm(self.disasm.is_some());
        self.module.define_function(id, &mut self.ctx).map_err(err)?;
        let size = self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        self.symbols.push((name.to_string(), size));
        if let (Some(text), Some(code)) = (&mut self.disasm, self.ctx.compiled_code()) {
            text.push_str(&format!("; {name}\n{}\n", code.vcode.as_deref().unwrap_or("")));
        }
        self.module.clear_context(&mut self.ctx);
        self.defined.push((id, len.max(1)));
        Ok(())
    }
}

impl JitProgram {
    /// Compiles `p` for the host. Only a [`CheckedProgram`] is accepted:
    /// the generated code indexes the tables by the shapes the checks proved.
    pub fn compile(p: &CheckedProgram, opts: JitOptions) -> Result<JitProgram, JitError> {
        let p: &IntProgram = p.program();
        let started = Instant::now();
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| JitError::Settings(format!("{k} = {v}: {e}")))
        };
        set(&mut flags, "opt_level", "speed")?;
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
        let mut sig = module.make_signature();
        sig.params.extend([AbiParam::new(IDX); 5]);
        let mut layout = Layout::of(p, opts.kernels)?;
        let mut steps = Steps {
            ctx: module.make_context(),
            module: &mut module,
            fctx: FunctionBuilderContext::new(),
            sig,
            defined: vec![],
            symbols: vec![],
            disasm: opts.disasm.then(String::new),
        };
        let tables = emit(&mut steps, p, &mut layout)?;
        let fused_requants = layout.requant_into.len();
        let micro = layout.micro.drain().map(|(_, m)| m).collect();
        let (defined, disasm) = (std::mem::take(&mut steps.defined), steps.disasm.take());
        let symbols = std::mem::take(&mut steps.symbols);
        drop(steps);
        module.finalize_definitions().map_err(|e| JitError::Codegen(e.to_string()))?;
        if std::env::var_os("POTC_PERF_MAP").is_some() {
            perf_map(&module, &defined, &symbols);
        }
        let steps: Vec<(Step, usize)> = defined
            .into_iter()
            .map(|(id, len)| {
                let code = module.get_finalized_function(id);
                // SAFETY: `code` is a finalized function defined with the
                // signature of `Step` (five pointer-sized arguments, no
                // result, the host's default calling convention, which
                // `extern "C"` is).
                (unsafe { std::mem::transmute::<*const u8, Step>(code) }, len)
            })
            .collect();
        let code = Code {
            units: split_units(&steps),
            steps,
            input_len: layout.input_len,
            output_len: layout.output_len,
            scratch_len: layout.scratch_len,
        };
        Ok(JitProgram {
            module: Some(std::sync::Mutex::new(module)),
            code,
            _tables: tables,
            _micro: micro,
            kernels: opts.kernels,
            fused_requants,
            input_len: layout.input_len,
            output_len: layout.output_len,
            compile_time: started.elapsed(),
            disasm,
            arenas: Default::default(),
        })
    }

    /// A scratch arena for [`JitProgram::run_one`].
    pub fn scratch(&self) -> Scratch {
        Scratch::new(self.code.scratch_len)
    }

    /// Runs one sample: `x` holds `input_len` integers of the input type,
    /// `out` receives `output_len`; panics on other lengths. The sample's
    /// layers are split over the current rayon pool.
    pub fn run_one(&self, x: &[i32], out: &mut [i32], scratch: &mut Scratch) {
        let split = rayon::current_num_threads() > 1;
        self.code.call(x, out, scratch.words(), split);
    }

    /// Runs every sample of `x` (sample-major) and returns the outputs
    /// sample-major: one sample split over the rayon pool, or many samples
    /// in parallel, one per thread.
    pub fn run(&self, x: &[i64]) -> Vec<i64> {
        let code = &self.code;
        let (k, m) = (code.input_len.max(1), code.output_len.max(1));
        let n = x.len() / k;
        let threads = rayon::current_num_threads();
        let split = n == 1 && threads > 1;
        let mut out = vec![0i32; n * code.output_len];
        // One contiguous run of samples per thread, each with a scratch arena
        // from the pool: arenas are reused across calls, not allocated and
        // zeroed each time. Steps write every word they read before reading
        // it, except the packed padding channels, which only ever meet zero
        // weights.
        let per = n.div_ceil(threads).max(1);
        out.par_chunks_mut(per * m).zip(x.par_chunks(per * k)).for_each(|(outs, xs)| {
            let mut scratch =
                self.arenas.lock().ok().and_then(|mut a| a.pop()).unwrap_or_else(|| self.scratch());
            let mut xi = vec![0i32; code.input_len];
            for (o, xv) in outs.chunks_mut(m).zip(xs.chunks(k)) {
                xi.iter_mut().zip(xv).for_each(|(d, &v)| *d = v as i32);
                code.call(&xi, o, scratch.words(), split);
            }
            if let Ok(mut a) = self.arenas.lock() {
                a.push(scratch);
            }
        });
        out.into_iter().map(i64::from).collect()
    }
}

/// Appends each step to `/tmp/perf-<pid>.map`, so that `perf report` names
/// the steps of generated code (set `POTC_PERF_MAP=1`). Best effort: a
/// profiling aid, never an error.
fn perf_map(module: &JITModule, defined: &[(FuncId, usize)], symbols: &[(String, usize)]) {
    use std::io::Write;
    let path = format!("/tmp/perf-{}.map", std::process::id());
    let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    for ((id, _), (name, size)) in defined.iter().zip(symbols) {
        let addr = module.get_finalized_function(*id) as usize;
        let _ = writeln!(f, "{addr:x} {size:x} potc_step_{name}");
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
    /// Per vector convolution: left padding, packed rows, input length.
    pack_geometry: HashMap<NodeId, (usize, usize, usize)>,
    /// Requantizations whose only reader is a vector convolution: they
    /// write its packed input directly (value: the convolution).
    fused: HashMap<NodeId, NodeId>,
    /// Vector convolutions a microkernel computes (not `xmm`).
    micro: HashMap<NodeId, micro::MicroConv>,
    /// Microkernel convolutions that apply the requantization reading them
    /// and write what reads it: the steps of both are theirs.
    requant_into: HashMap<NodeId, Epilogue>,
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
    fn of(p: &IntProgram, kernels: micro::Kernels) -> Result<Layout, JitError> {
        let g = &p.graph;
        let order = g.order().map_err(|_| JitError::Program("a cycle".into()))?;
        let input = g.inputs()[0];
        let out = g.output().ok_or_else(|| JitError::Program("no return".into()))?;
        let mut at = HashMap::new();
        let mut dots = HashMap::new();
        let mut geometry = HashMap::new();
        let mut micros = HashMap::new();
        let mut next = 0i64;
        for &id in &order {
            let node = g.node(id);
            let mut len = node.ty.elements() as i64;
            if let Op::IntConv1d(c) = &node.op {
                let x = &g.node(g.operands(id)[0]).ty;
                let (ch, l) = (x.shape[0], x.shape[1]);
                let w = &p.tensors[&format!("{}.w", node.name)].1;
                // Only a layer declared with a bias has one, as in the other engines.
                let b = c
                    .bias
                    .then(|| p.tensors.get(&format!("{}.b", node.name)).map(|(_, v)| v.as_slice()))
                    .flatten();
                if let Elem::Int { signed, bits } = x.elem {
                    let tile = kernels.tile(c.out_channels);
                    if let Some(dc) = dot::DotConv::plan(c, ch, w, b, (signed, bits), tile) {
                        let bytes = dot::packed_rows(c, l) * dot::row_bytes(&dc);
                        len = (dc.co_pad * node.ty.shape[1]) as i64;
                        let (left, _) = c.padding.amounts(c.kernel, c.dilation);
                        geometry.insert(id, (left, dot::packed_rows(c, l), l));
                        let lo = node.ty.shape[1];
                        let mut slack = 0;
                        if let Some(m) = micro::MicroConv::new(kernels, c, &dc, w, lo) {
                            micros.insert(id, m);
                            slack = micro::SLACK;
                        }
                        next = on_line(next);
                        dots.insert(id, (dc, next));
                        next += (bytes + slack).div_ceil(4) as i64;
                    }
                }
            }
            let slot = if id == input {
                (Region::Input, 0)
            } else if node.op.meaning().view {
                at[&g.operands(id)[0]]
            } else {
                next = on_line(next);
                let s = (Region::Scratch, next);
                next += len;
                s
            };
            at.insert(id, slot);
        }
        let mut fused = HashMap::new();
        for &conv in dots.keys() {
            let a = g.operands(conv)[0];
            if matches!(g.node(a).op, Op::Requant(_))
                && g.users(a) == [conv]
                && g.output() != Some(a)
            {
                fused.insert(a, conv);
            }
        }
        let requant_into = epilogues(p, &fused, &dots, &geometry, &mut micros);
        if next > i32::MAX as i64 / 4 {
            return Err(JitError::Program(format!("{next} scratch elements exceed 2 GiB")));
        }
        Ok(Layout {
            order,
            at,
            dot: dots,
            pack_geometry: geometry,
            fused,
            micro: micros,
            requant_into,
            input_len: g.node(input).ty.elements() as usize,
            output_len: g.node(out).ty.elements() as usize,
            scratch_len: next as usize,
        })
    }
}

/// `words` rounded up to a whole [`Line`].
fn on_line(words: i64) -> i64 {
    (words + 15) & !15
}

/// Where a microkernel that requantizes its sums writes them.
#[derive(Debug, Clone, Copy)]
enum Epilogue {
    /// The packed input of this vector convolution (which reads the
    /// requantization).
    Packed(NodeId),
    /// The output of this global sum pool (which reads the requantization),
    /// summed over time.
    Sum(NodeId),
}

/// The convolutions whose microkernel takes over the requantization that
/// alone reads them, and where it writes: into the packed input of the
/// vector convolution that alone reads the requantization (`fused`), or
/// summed into the global sum pool that alone reads it. The microkernel
/// decides whether it can ([`micro::MicroConv::fuse_requant`]).
fn epilogues(
    p: &IntProgram,
    fused: &HashMap<NodeId, NodeId>,
    dots: &HashMap<NodeId, (dot::DotConv, i64)>,
    geometry: &HashMap<NodeId, (usize, usize, usize)>,
    micros: &mut HashMap<NodeId, micro::MicroConv>,
) -> HashMap<NodeId, Epilogue> {
    let g = &p.graph;
    let mut out = HashMap::new();
    for (&conv, m) in micros.iter_mut() {
        let users = g.users(conv);
        let [rq] = users[..] else { continue };
        let Op::Requant(q) = &g.node(rq).op else { continue };
        let readers = g.users(rq);
        if g.output() == Some(conv) || g.output() == Some(rq) || readers.len() != 1 {
            continue;
        }
        let spec = QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
        let mut into = micro::RequantInto {
            shifts: p.tensors[&format!("{}.shift", g.node(rq).name)].1.clone(),
            lo: spec.qmin() as i32,
            hi: spec.qmax() as i32,
            offset: 0,
            dest: micro::Dest::Sum,
        };
        let epilogue = match (fused.get(&rq), &g.node(readers[0]).op) {
            (Some(&reader), _) => {
                let dc = &dots[&reader].0;
                into.offset = dc.offset;
                into.dest = micro::Dest::Packed {
                    row_bytes: dot::row_bytes(dc),
                    left: geometry[&reader].0,
                    groups4: dc.c4 / 4,
                };
                Epilogue::Packed(reader)
            }
            (None, Op::GlobalSumPool) => Epilogue::Sum(readers[0]),
            _ => continue,
        };
        if m.fuse_requant(into) {
            out.insert(conv, epilogue);
        }
    }
    out
}

/// Defines the steps of `p` in program order; returns the tables whose
/// addresses they hold.
fn emit(steps: &mut Steps, p: &IntProgram, layout: &mut Layout) -> Result<Vec<Vec<i32>>, JitError> {
    let g = &p.graph;
    let at = layout.at.clone();
    let buf = move |id: NodeId, ps: &Params| {
        let (region, offset) = at[&id];
        Buf { base: if region == Region::Input { ps.input } else { ps.scratch }, offset }
    };
    let tensor = |name: String| -> Result<Vec<i32>, JitError> {
        p.tensors
            .get(&name)
            .map(|(_, v)| v.clone())
            .ok_or(JitError::Program(format!("no tensor `{name}`")))
    };
    let mut tables: Vec<Vec<i32>> = vec![];
    for (i, &id) in layout.order.clone().iter().enumerate() {
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
        if !matches!(node.ty.elem, Elem::Int { .. }) {
            return Err(JitError::Program(format!("`%{}` is not an integer value", node.name)));
        }
        let n = node.ty.elements() as usize;
        let (lo, hi) = node
            .ty
            .elem
            .range()
            .ok_or_else(|| JitError::Program(format!("`%{}` is f32", node.name)))?;
        let name = format!("{i}_{}", node.op.name());
        // Tables are moved into `tables` after a kernel took their addresses:
        // moving a Vec does not move its heap buffer.
        match &node.op {
            Op::IntConv1d(c) if layout.dot.contains_key(&id) => {
                let (dc, _) = &layout.dot[&id];
                let fused = layout.fused.contains_key(&a);
                steps.define(&format!("{name}_pack"), 1, |b, ps| {
                    let at = packed(layout, id, ps, b);
                    if fused {
                        dot::fill_padding(b, at, dc);
                    } else {
                        dot::pack(b, buf(a, ps), d.c, at, dc);
                    }
                    Ok(())
                })?;
                let micro = layout.micro.get(&id);
                let into = layout.requant_into.get(&id).copied();
                steps.define(&name, dot::tiles(dc), |b, ps| {
                    let at = packed(layout, id, ps, b);
                    let y = match into {
                        Some(Epilogue::Packed(reader)) => {
                            Buf { base: packed(layout, reader, ps, b).base, offset: 0 }
                        }
                        Some(Epilogue::Sum(pool)) => buf(pool, ps),
                        None => buf(id, ps),
                    };
                    match micro {
                        Some(m) => call_micro(b, m, at.base, y, ps),
                        None => dot::conv(b, c, d.lo, at.base, buf(id, ps), dc, ps.from, ps.to),
                    }
                    Ok(())
                })?;
            }
            Op::IntConv1d(c) => {
                let w = tensor(format!("{}.w", node.name))?;
                let bias = if c.bias { Some(tensor(format!("{}.b", node.name))?) } else { None };
                steps.define(&name, 1, |b, ps| {
                    kernels::conv1d(b, c, d, buf(a, ps), buf(id, ps), &w, bias.as_deref());
                    Ok(())
                })?;
                tables.push(w);
                tables.extend(bias);
            }
            Op::IntLinear(l) => {
                let w = tensor(format!("{}.w", node.name))?;
                let bias = if l.bias { Some(tensor(format!("{}.b", node.name))?) } else { None };
                steps.define(&name, 1, |b, ps| {
                    kernels::linear(b, d, buf(a, ps), buf(id, ps), &w, bias.as_deref());
                    Ok(())
                })?;
                tables.push(w);
                tables.extend(bias);
            }
            // Computed by the microkernel of the convolution it reads.
            Op::Requant(_) if layout.requant_into.contains_key(&a) => {}
            Op::GlobalSumPool
                if g.operands(a).first().is_some_and(|conv| {
                    matches!(layout.requant_into.get(conv), Some(Epilogue::Sum(_)))
                }) => {}
            Op::Requant(_) | Op::Shl => {
                let shifts = tensor(format!("{}.shift", node.name))?;
                let (t, lo, hi) = match &node.op {
                    Op::Requant(q) => {
                        let spec =
                            QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
                        (requant::requant_tables(&shifts), spec.qmin(), spec.qmax())
                    }
                    _ => (requant::shl_tables(&shifts), lo, hi),
                };
                let into = layout.fused.get(&id).copied();
                let parts = match into {
                    Some(conv) => layout.dot[&conv].0.c4 / 4,
                    None => d.c,
                };
                steps.define(&name, parts, |b, ps| {
                    let sink = match into {
                        Some(conv) => {
                            requant::Sink::Packed(packed(layout, conv, ps, b), &layout.dot[&conv].0)
                        }
                        None => requant::Sink::Buf(buf(id, ps)),
                    };
                    requant::shift_clamp(b, d, buf(a, ps), sink, &t, lo, hi, ps.from, ps.to);
                    Ok(())
                })?;
                tables.extend([t.left, t.right, t.add_lo, t.add_hi]);
            }
            Op::Add(_) => {
                let z = args[1];
                steps.define(&name, 1, |b, ps| {
                    kernels::add(b, n, buf(a, ps), buf(z, ps), buf(id, ps), lo, hi);
                    Ok(())
                })?
            }
            Op::Relu => steps.define(&name, 1, |b, ps| {
                kernels::relu(b, n, buf(a, ps), buf(id, ps));
                Ok(())
            })?,
            Op::GlobalSumPool => {
                let (xlo, xhi) = at.elem.range().unwrap_or((i64::MIN, i64::MAX));
                let bound = xlo.unsigned_abs().max(xhi.unsigned_abs()).min(i64::MAX as u64);
                steps.define(&name, 1, |b, ps| {
                    kernels::sum_pool(b, d, buf(a, ps), buf(id, ps), bound as i64);
                    Ok(())
                })?
            }
            Op::MaxPool1d(pool) => steps.define(&name, 1, |b, ps| {
                kernels::max_pool(b, pool, d, buf(a, ps), buf(id, ps));
                Ok(())
            })?,
            Op::Flatten => {}
            op => {
                return Err(JitError::Program(format!(
                    "`%{}`: {} is not an integer op",
                    node.name,
                    op.name()
                )))
            }
        }
    }
    let out = g.output().ok_or_else(|| JitError::Program("no return".into()))?;
    let len = layout.output_len;
    steps.define("output", 1, |b, ps| {
        kernels::copy(b, len, buf(out, ps), Buf { base: ps.output, offset: 0 });
        Ok(())
    })?;
    for (_, (dc, _)) in layout.dot.drain() {
        tables.extend([dc.weights, dc.bias]);
    }
    Ok(tables)
}

/// A call of microkernel `m` on the packed input `xp` into `y`, for the
/// step's range of output-channel tiles (the contract is in `micro`).
fn call_micro(b: &mut FunctionBuilder, m: &micro::MicroConv, xp: Value, y: Buf, ps: &Params) {
    let mut sig = Signature::new(b.func.signature.call_conv);
    sig.params.extend([AbiParam::new(IDX); 5]);
    let sig = b.import_signature(sig);
    let entry = b.ins().iconst(IDX, m.entry as i64);
    let spec = b.ins().iconst(IDX, &*m.spec as *const micro::ConvSpec as i64);
    let yp = b.ins().iadd_imm_s(y.base, y.offset * 4);
    b.ins().call_indirect(sig, entry, &[spec, xp, yp, ps.from, ps.to]);
}

/// The packed input of vector convolution `conv`, in the step being built.
fn packed(layout: &Layout, conv: NodeId, ps: &Params, b: &mut FunctionBuilder) -> dot::Packed {
    let (_, offset) = layout.dot[&conv];
    let (left, rows, l) = layout.pack_geometry[&conv];
    dot::Packed { base: b.ins().iadd_imm_s(ps.scratch, offset * 4), left, rows, l }
}
