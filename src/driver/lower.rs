//! `potc lower` (a QAT checkpoint to an integer program directory) and
//! `potc run` (a program directory on a data set, in an integer engine).

use std::path::Path;

use super::eval::logits_sha256;
use super::model_data::pool;
use super::quantized::inference_model;
use super::{load_float_model, load_model, Failure};
use crate::backend::jit::micro::KernelChoice;
use crate::backend::{engine, EngineKind, EngineOptions};
use crate::ckpt::{Checkpoint, KEY_HISTORY, KEY_INPUT_SHAPE};
use crate::data;
use crate::eqsat::Target;
use crate::interp::kernels::loss::argmax;
use crate::ir::op::Op;
use crate::ir::{print, Graph, Type};
use crate::pass::{IntStore, ParamStore, PassContext, PassManager, PassReport};
use crate::passes::registry;
use crate::program::{model_path, CheckedProgram, IntProgram};
use crate::report::source::Source;

/// The passes from the quantized float model to the integer program.
pub const LOWER_PIPELINE: &str = "lower-int,fuse-requant,select-datapath";

/// Flags of `potc lower` (see `potc lower --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct LowerOptions {
    /// The model text (`.pot`).
    pub model: String,
    /// A checkpoint trained with `--quant`.
    #[arg(long, value_name = "CKPT")]
    pub weights: String,
    /// The program directory to write: `model.pot` and `weights.safetensors`.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: String,
    /// Accumulator width of the MAC layers (a layer's `acc_bits` wins);
    /// lowering refuses a layer whose worst case needs more.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(2..=32))]
    pub acc_bits: u32,
    /// Print the IR after quantization and after each lowering pass (with
    /// the equality-saturation report) on standard output.
    #[arg(long)]
    pub print_after_all: bool,
    /// What the program is for, which decides each integer layer's
    /// datapath by extraction: `cpu`, multiply (one lane of a dot-product
    /// instruction); `asic`, `datapath = shift_add` on every layer whose
    /// weights are all cheaper as signed sums of shifts (7x = (x << 3) - x)
    /// than as multiplications. The integers are the same either way.
    #[arg(long, value_enum, default_value_t = Target::Cpu)]
    pub target: Target,
}

/// A trained model lowered: the program, the `--print-after-all` text, and
/// the float weights and history `potc report --plot` draws.
pub struct Lowered {
    pub program: CheckedProgram,
    pub printed: String,
    pub source: Source,
}

/// The integer program of a trained model.
pub fn lower_model(
    model: &Graph,
    ck: &Checkpoint,
    ck_path: &Path,
    acc_bits: usize,
    target: Target,
    print_after_all: bool,
) -> Result<Lowered, Failure> {
    let typed = trained_shape(model, ck, ck_path)?;
    let (mut g, quant, mut store) = inference_model(ck, &typed, ck_path)?;
    if quant.is_none() {
        return Err(Failure(format!(
            "{}: a float checkpoint; `potc lower` needs one trained with --quant\n",
            ck_path.display()
        )));
    }
    let mut text = String::new();
    if print_after_all {
        text += "// *** IR after quantization (canonicalize,fold-bn,insert-fake-quant) ***\n";
        text += &print(&g);
    }
    let source = source_of(&g, &store, ck, ck_path)?;
    let ints = lower_graph(&mut g, &mut store, acc_bits, target, |r| {
        if print_after_all {
            let note = if r.changed { "" } else { " (no change)" };
            text += &format!("\n// *** IR after {}{note} ***\n", r.pass.name());
            for n in &r.notes {
                text += &format!("// {n}\n");
            }
            text += &print(r.graph);
        }
    })
    .map_err(|e| Failure(format!("error: lowering model `{}`: {e}\n", model.name)))?;
    let labels = crate::train::checkpoint::labels(ck).map_err(|e| e.in_file(ck_path))?;
    let program = IntProgram { graph: g, tensors: ints, labels };
    // Lowering keeps every checked range but those set by the trained
    // thresholds: a shift or an exponent out of range comes from them.
    let program = program.checked().map_err(|e| {
        Failure(format!(
            "{}: error: its thresholds give an integer program out of range: {e}; \
             retrain with thresholds in a sensible range\n",
            ck_path.display()
        ))
    })?;
    Ok(Lowered { program, printed: text, source })
}

/// Runs [`LOWER_PIPELINE`] on a quantized graph `g` whose (folded) float
/// parameters are `store`: `g` becomes the integer program's graph, and
/// the result holds its tensors. `after` sees each pass's report.
pub fn lower_graph(
    g: &mut Graph,
    store: &mut ParamStore,
    acc_bits: usize,
    target: Target,
    after: impl FnMut(PassReport<'_>),
) -> Result<IntStore, String> {
    let mut ints = IntStore::new();
    let mut cx = PassContext {
        weights: Some(store),
        ints: Some(&mut ints),
        acc_bits: Some(acc_bits),
        target,
        ..Default::default()
    };
    let registry = registry();
    let pipeline = registry.pipeline(LOWER_PIPELINE).map_err(|e| e.to_string())?;
    PassManager { allow_meaning_changes: false }
        .run(&pipeline, g, &mut cx, after)
        .map_err(|e| e.to_string())?;
    IntProgram::retain_expected(&mut ints, g);
    Ok(ints)
}

/// Each quantized MAC layer's float weights as `lower-int` rounds them (the
/// `1/L` of a folded average applied), and the checkpoint's history.
fn source_of(
    g: &Graph,
    store: &ParamStore,
    ck: &Checkpoint,
    path: &Path,
) -> Result<Source, Failure> {
    let mut source = Source::default();
    for id in g.order().map_err(|_| Failure("error: the graph has a cycle\n".into()))? {
        let node = g.node(id);
        let divisor = match &node.op {
            Op::Conv1d(c) if c.quant.w_bits.is_some() => 1.0,
            Op::Linear(l) if l.quant.w_bits.is_some() => l.input_divisor.unwrap_or(1) as f32,
            _ => continue,
        };
        let name = format!("{}.w", node.name);
        if let Some((shape, w)) = store.get(&name) {
            let w = w.iter().map(|v| v / divisor).collect();
            source.weights.insert(name, (shape.clone(), w));
        }
    }
    source.history = ck.json(KEY_HISTORY).map_err(|e| e.in_file(path))?.unwrap_or_default();
    Ok(source)
}

/// The model typed for the input it was trained on.
fn trained_shape(model: &Graph, ck: &Checkpoint, path: &Path) -> Result<Graph, Failure> {
    let Some([c, l]) = ck.json::<[usize; 2]>(KEY_INPUT_SHAPE).map_err(|e| e.in_file(path))? else {
        return Ok(model.clone());
    };
    let mut typed = model.clone();
    if typed.node(typed.inputs()[0]).ty.shape != [c, l] {
        typed.retype_input(0, Type::f32(vec![c, l])).map_err(|e| {
            Failure(format!(
                "{}: trained on [{c}, {l}], which the model cannot take: {e}\n",
                path.display()
            ))
        })?;
    }
    Ok(typed)
}

pub fn lower(o: &LowerOptions) -> Result<String, Failure> {
    let started = std::time::Instant::now();
    let (_, model) = load_float_model(&o.model)?;
    let path = Path::new(&o.weights);
    let ck = Checkpoint::load(path)?;
    let Lowered { program, printed: text, source } =
        lower_model(&model, &ck, path, o.acc_bits as usize, o.target, o.print_after_all)?;
    let out = Path::new(&o.out);
    program.save(out).map_err(|e| Failure(format!("error: {e}\n")))?;
    source.save(out).map_err(|e| Failure(format!("error: {e}\n")))?;
    let ops = program.graph.len() - program.graph.inputs().len();
    eprintln!(
        "lowered `{}` to {} ({ops} integer ops) in {:.1} ms",
        model.name,
        out.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(text)
}

/// Flags of `potc run` (see `potc run --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    /// A program directory written by `potc lower`.
    pub program: String,
    /// The data set: `.ts`, `.tsv` or `.npz`.
    #[arg(long, value_name = "DATA")]
    pub data: String,
    /// The engine that runs the integers.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    pub engine: EngineKind,
    /// The JIT's MAC kernels; a family the CPU lacks is an error.
    #[arg(long, value_enum, default_value_t = KernelChoice::Auto)]
    pub kernels: KernelChoice,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

/// Reads a program directory.
pub fn load_program(dir: &str) -> Result<CheckedProgram, Failure> {
    let path = model_path(Path::new(dir));
    if !Path::new(dir).is_dir() {
        return Err(Failure(format!(
            "{dir}: error: not a program directory (write one with `potc lower`)\n"
        )));
    }
    let (_, graph) = load_model(&path.display().to_string())?;
    IntProgram::load(Path::new(dir), graph).map_err(|e| Failure(format!("{e}\n")))
}

/// A data file, its labels mapped to class indices as in training.
pub fn load_data(p: &IntProgram, path: &str) -> Result<data::Dataset, Failure> {
    let ds = data::load(Path::new(path))?;
    Ok(if p.labels.is_empty() { ds } else { ds.with_labels(&p.labels)? })
}

/// The series of `ds` as the program's input integers: the shape checked,
/// then `q(x)` of the input quantizer.
pub fn quantized_input(p: &IntProgram, ds: &data::Dataset) -> Result<Vec<i64>, Failure> {
    let input = p.input_type();
    if input.shape != [ds.channels, ds.length] {
        return Err(Failure(format!(
            "{}: the series are [{}, {}], the program takes {}\n",
            ds.path, ds.channels, ds.length, input
        )));
    }
    Ok(p.quantize_input(&ds.x))
}

/// The outputs of a program on a data set, sample-major.
pub fn run_program(
    p: &CheckedProgram,
    ds: &data::Dataset,
    threads: usize,
    kind: EngineKind,
    kernels: KernelChoice,
) -> Result<Vec<i64>, Failure> {
    let x = quantized_input(p, ds)?;
    let pool = pool(threads)?;
    let opts = EngineOptions { kernels, ..EngineOptions::default() };
    let engine = engine(kind, p, opts).map_err(|e| Failure(format!("error: {e}\n")))?;
    Ok(pool.install(|| engine.run(&x)))
}

/// Accuracy and output integers of a program on a data set.
pub struct RunReport {
    pub accuracy: f64,
    pub n: usize,
    pub ints: Vec<i64>,
    pub exponent: Option<i32>,
}

impl RunReport {
    /// The JSON `eval --mode int|jit` prints (`run` adds the engine).
    pub fn json(&self, mode: &str) -> serde_json::Value {
        let mut out = serde_json::json!({
            "accuracy": self.accuracy,
            "n": self.n,
            "mode": mode,
            "logits_sha256": logits_sha256(&self.ints),
        });
        if let Some(e) = self.exponent {
            out["logits_exponent"] = e.into();
        }
        out
    }
}

/// Runs `program` on the data file at `data` (labels mapped as in training).
pub fn run_report(
    program: &CheckedProgram,
    data: &str,
    threads: usize,
    engine: EngineKind,
    kernels: KernelChoice,
) -> Result<RunReport, Failure> {
    let ds = load_data(program, data)?;
    let ints = run_program(program, &ds, threads, engine, kernels)?;
    let k = ints.len() / ds.n.max(1);
    let correct = (0..ds.n)
        .filter(|&i| {
            let row: Vec<f64> = ints[i * k..][..k].iter().map(|&v| v as f64).collect();
            argmax(&row) == ds.y[i]
        })
        .count();
    let accuracy = correct as f64 / ds.n.max(1) as f64;
    Ok(RunReport { accuracy, n: ds.n, ints, exponent: program.output_exponent() })
}

pub fn run(o: &RunOptions) -> Result<String, Failure> {
    let program = load_program(&o.program)?;
    let report = run_report(&program, &o.data, o.threads, o.engine, o.kernels)?;
    Ok(if o.json {
        let mut out = report.json("int");
        out["engine"] = o.engine.name().into();
        out.to_string() + "\n"
    } else {
        format!(
            "accuracy {:.4} on {} samples (int, {})\n",
            report.accuracy,
            report.n,
            o.engine.name()
        )
    })
}
