//! The engines that run a checked integer program, side by side: the
//! reference interpreter ([`interp`]) and the Cranelift JIT ([`jit`]). Both
//! compute the same integers; [`Engine`] is what the commands need of
//! either (`potc run`, `potc bench`, `potc eval --mode int|jit`), and
//! [`engine`] builds one by its [`EngineKind`]. (The C export writes the
//! same program as source for another compiler, so it is an export,
//! `export::c`, not an engine.)

pub mod interp;
pub mod jit;

use std::time::Duration;

use crate::program::CheckedProgram;

/// An integer program ready to run.
pub trait Engine: Sync {
    /// The engine's name, as `--engine` spells it.
    fn name(&self) -> &'static str;

    /// Runs every sample of `x` (sample-major, the program's input integers)
    /// on the current rayon pool, whose threads set the parallelism, and
    /// returns the outputs (logits) sample-major.
    fn run(&self, x: &[i64]) -> Vec<i64>;

    /// How long building the engine took, for an engine that compiles.
    fn compile_time(&self) -> Option<Duration> {
        None
    }

    /// The generated machine code as text, when asked for with
    /// [`EngineOptions::disasm`] and the engine generates any.
    fn disasm(&self) -> Option<&str> {
        None
    }

    /// The family of MAC kernels, for an engine that has several.
    fn kernels(&self) -> Option<&'static str> {
        None
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Native code compiled by Cranelift (bit-exact with the interpreter).
    Jit,
    /// The integer reference interpreter.
    Interp,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Jit => "jit",
            EngineKind::Interp => "interp",
        }
    }
}

/// What the commands may ask of an engine when building it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Keep the generated machine code as text (the JIT; see [`Engine::disasm`]).
    pub disasm: bool,
    /// The JIT's MAC kernels (`--kernels`).
    pub kernels: jit::micro::KernelChoice,
}

/// Builds the engine `kind` for `p`. The error is a sentence for the user
/// (the JIT's start with `the JIT: `).
pub fn engine(
    kind: EngineKind,
    p: &CheckedProgram,
    opts: EngineOptions,
) -> Result<Box<dyn Engine>, String> {
    Ok(match kind {
        EngineKind::Interp if opts.kernels != jit::micro::KernelChoice::Auto => {
            return Err("--kernels chooses the JIT's kernels; the interpreter has none".into())
        }
        EngineKind::Interp => Box::new(interp::IntInterpreter::from_checked(p)?),
        EngineKind::Jit => {
            let kernels = jit::micro::Kernels::resolve(opts.kernels)?;
            let opts =
                jit::JitOptions { disasm: opts.disasm, kernels, ..jit::JitOptions::default() };
            Box::new(jit::JitProgram::compile(p, opts).map_err(|e| format!("the JIT: {e}"))?)
        }
    })
}

impl Engine for interp::IntInterpreter {
    fn name(&self) -> &'static str {
        EngineKind::Interp.name()
    }

    fn run(&self, x: &[i64]) -> Vec<i64> {
        interp::IntInterpreter::run(self, x)
    }
}

impl Engine for jit::JitProgram {
    fn name(&self) -> &'static str {
        EngineKind::Jit.name()
    }

    fn run(&self, x: &[i64]) -> Vec<i64> {
        jit::JitProgram::run(self, x)
    }

    fn compile_time(&self) -> Option<Duration> {
        Some(self.compile_time)
    }

    fn disasm(&self) -> Option<&str> {
        self.disasm.as_deref()
    }

    fn kernels(&self) -> Option<&'static str> {
        Some(self.kernels.name())
    }
}
