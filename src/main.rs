//! The `potc` command line: parses flags and calls the library. Exit status:
//! 0 on success, 1 on a user error (bad file, bad flag, bad data).

use clap::{Args, Parser, Subcommand};
use potc::driver::{
    self, BenchOptions, EvalOptions, ExportOptions, Failure, ImportOptions, LowerOptions,
    ReportOptions, RunOptions, TrainOptions,
};
use std::io::Write;
use std::process::ExitCode;

// Training allocates large per-step buffers; glibc's malloc returns them to
// the OS and the kernel zeroes fresh pages every step (a quarter of the time,
// measured with perf). mimalloc keeps and reuses them.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// potc compiles Conv1d/BatchNorm networks written in `.pot` text, trains them
/// under power-of-two quantization, and lowers them to integer-only programs.
#[derive(Parser)]
#[command(name = "potc", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and verify a model: syntax, names, attributes, shapes and types.
    ///
    /// Prints a one-line summary on success. Mistakes are reported as
    /// `file:line:col: error: message` with the source line and a caret.
    Check(CheckArgs),
    /// Print a model's IR in canonical form, after the named passes.
    ///
    /// The output parses back to the same graph (`potc print` is idempotent).
    /// List the passes with `potc passes`.
    Print(PrintArgs),
    /// List the passes that `--passes` can name, or describe one.
    Passes(PassesArgs),
    /// Import a network exported to ONNX from PyTorch: `.pot` text and float weights.
    ///
    /// Reads `torch.onnx.export` files of either exporter (opset 13 and newer):
    /// Conv (1-D), BatchNormalization, Relu, Add, MaxPool, AveragePool,
    /// GlobalAveragePool, ReduceMean over time, Flatten, Gemm, MatMul (+ Add),
    /// Dropout, Identity, zero Pad before a Conv, and the reshapes that flatten
    /// or add and drop unit axes; shape arithmetic is folded away. The batch
    /// axis is dropped. Writes the model text (a comment above each op names
    /// its ONNX node) and a float checkpoint for `train --init`, `eval --mode
    /// float` and `print --weights`. Anything else is an error naming the node.
    Import(ImportOptions),
    /// Train a model on a data set: in float, or quantization-aware with `--quant`.
    ///
    /// Progress goes to standard error; with `--json`, standard output holds one
    /// JSON object: test_accuracy, train_seconds, samples_per_second (median over
    /// the epochs after the first), epochs, warnings. Under --quant, warnings
    /// (clipped weights or activations, unused levels, dead batch-norm
    /// channels, each with its fix) go to standard error after calibration
    /// and after training.
    Train(TrainOptions),
    /// Accuracy of a trained model on a data set, in the named arithmetic.
    ///
    /// `--mode fake-quant` adds each layer's SQNR in dB against the float
    /// network (a table after the accuracy; `sqnr_db` in --json) and warns of
    /// clipped weights or activations, unused levels and dead batch-norm
    /// channels (standard error; `warnings` in --json, empty when all is well).
    Eval(EvalOptions),
    /// Lower a model trained with --quant to its integer-only program.
    ///
    /// Writes the directory OUT with `model.pot` (integer IR: int_conv1d,
    /// int_linear, requant, shl, ...) and `weights.safetensors` (i32 tensors:
    /// weights, biases, shift amounts, and `<value>.exp`, each value's
    /// power-of-two exponent) and `source.safetensors` (the float weights as
    /// rounded and the training history, for `potc report --plot`). Refuses a
    /// layer whose accumulator can overflow --acc-bits, naming it.
    Lower(LowerOptions),
    /// Run a lowered program on a data set with integer arithmetic only.
    ///
    /// Quantizes the data at the boundary (round half up, clamp) as the
    /// simulation does. With --json: accuracy, n, mode, engine and
    /// logits_sha256 (the output integers as little-endian i32), which equals
    /// `potc eval --mode fake-quant`'s for the checkpoint it was lowered from.
    Run(RunOptions),
    /// Inference speed of a lowered program on random inputs of its shape.
    ///
    /// Median time per batch over --seconds of runs and the samples/s it
    /// gives; the batch's samples run in parallel over --threads. With
    /// --json: engine, batch, threads, latency_us_median, samples_per_second,
    /// macs_per_sample, gmac_per_second (and for the JIT compile_ms and
    /// kernels, the family of MAC kernels `--kernels` chose).
    Bench(BenchOptions),
    /// What a lowered program asks of hardware, op by op.
    ///
    /// A table of every op: shape, integer type, scale (2^e), weight format,
    /// bits and scale, requantization shifts, accumulator bits needed (the
    /// worst case of spec section 7) and configured, parameter bits, MACs per
    /// sample; with totals. --json prints the same as one object; --plot DIR
    /// draws each layer's weight histogram over its quantization grid and
    /// the training curves (SVG).
    Report(ReportOptions),
    /// Write hand-off files for hardware from a lowered program.
    ///
    /// `--format c`: a C99 header and source computing the program's integers
    /// with fixed-width types and shifts only, plus a `main` that runs the data
    /// file written from --data. `--format vectors`: every op's input and
    /// output integers for --samples samples, as `.npz`, `$readmemh` hex files
    /// and `manifest.json`, for a hardware test bench. `--format onnx`: the
    /// integer program as an ONNX model whose int32 outputs in ONNX Runtime
    /// equal `potc run`'s bit for bit (`-o MODEL.onnx`). `--format qonnx`:
    /// the quantized model in the QONNX dialect for FINN and hls4ml, whose
    /// float outputs equal the fake-quant logits (`-o MODEL.onnx`).
    Export(ExportOptions),
}

#[derive(Args)]
struct CheckArgs {
    /// The model text (`.pot`).
    model: String,
}

#[derive(Args)]
struct PrintArgs {
    /// The model text (`.pot`).
    model: String,
    /// Comma-separated pipeline to run before printing, e.g. `canonicalize`.
    #[arg(long, value_name = "a,b,c", default_value = "")]
    passes: String,
    /// Print the IR after parsing and after every pass, each under a
    /// `// *** IR after <pass> ***` header.
    #[arg(long)]
    print_after_all: bool,
    /// Quantization for `insert-fake-quant`: `w<bits>a<bits>`, e.g. w4a8 (default w8a8).
    #[arg(long, value_name = "SPEC")]
    quant: Option<String>,
    /// A checkpoint of the model: checked against it, carried through the
    /// passes (fold-bn folds it), and summarised after the IR.
    #[arg(long, value_name = "CKPT")]
    weights: Option<String>,
    /// What `select-datapath` chooses for: `cpu` (multiply) or `asic`
    /// (shift-add where cheaper), as `potc lower --target`.
    #[arg(long, value_enum, default_value_t = potc::eqsat::Target::Cpu)]
    target: potc::eqsat::Target,
}

#[derive(Args)]
struct PassesArgs {
    /// A pass to describe in full (summary, semantics, before/after example).
    name: Option<String>,
}

fn run(cli: Cli) -> Result<String, Failure> {
    match cli.command {
        Command::Check(a) => driver::check(&a.model),
        Command::Print(a) => driver::print_model(
            &a.model,
            &a.passes,
            a.print_after_all,
            a.quant.as_deref().map(driver::parse_quant).transpose()?,
            a.weights.as_deref(),
            a.target,
        ),
        Command::Passes(a) => driver::describe_passes(a.name.as_deref()),
        Command::Import(o) => driver::import(&o),
        Command::Train(o) => driver::train(&o),
        Command::Eval(o) => driver::eval(&o),
        Command::Lower(o) => driver::lower(&o),
        Command::Run(o) => driver::run(&o),
        Command::Bench(o) => driver::bench(&o),
        Command::Export(o) => driver::export(&o),
        Command::Report(o) => driver::report(&o),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; every bad flag is a user error (1).
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `potc print m.pot | head`) is not an error.
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            ExitCode::SUCCESS
        }
        Err(Failure(message)) => {
            eprint!("{message}");
            ExitCode::from(1)
        }
    }
}
