//! `potc export`: hand-off files for hardware from a program directory.

use std::path::Path;

use super::lower::{load_data, load_program, quantized_input};
use super::Failure;
use crate::export::{self, Samples};
use crate::program::IntProgram;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// C99 header and source (fixed-width integers, shifts only) and a `main`
    /// that runs a data file; build with `make` or `cc -O2 *.c`.
    C,
    /// Every op's input and output integers for a few samples: `.npz`,
    /// `$readmemh` hex files and `manifest.json`.
    Vectors,
    /// The integer program as an ONNX model (standard ops, opset 18) that
    /// ONNX Runtime runs bit-exactly: float series `input` [N, C, L] in
    /// (quantized in the graph as `potc run` does), int32 `logits` out;
    /// labels and exponents as metadata. `-o` names the `.onnx` file.
    Onnx,
    /// The quantized model in the QONNX dialect (float Conv/Gemm/Add/pooling
    /// with a `Quant` on every weight and activation, scales 2^e), for FINN
    /// and hls4ml: float series `input` [1, C, L] in, float `logits` out,
    /// equal to the fake-quant logits. `-o` names the `.onnx` file.
    Qonnx,
}

/// Flags of `potc export` (see `potc export --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct ExportOptions {
    /// A program directory written by `potc lower`.
    pub program: String,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The directory to write into (created if missing); for `onnx` and
    /// `qonnx`, the model file.
    #[arg(short = 'o', long = "out", value_name = "DIR|MODEL.onnx")]
    pub out: String,
    /// A data set (`.ts`, `.tsv`, `.npz`) to quantize and ship with the files:
    /// the C `main`'s input file, or the vectors' samples. Without it, the C
    /// export has no data file and the vectors use seeded random inputs.
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Samples in the test vectors (the first N of --data).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: u64,
}

pub fn export(o: &ExportOptions) -> Result<String, Failure> {
    let program = load_program(&o.program)?;
    if matches!(o.format, ExportFormat::Onnx | ExportFormat::Qonnx) {
        if o.data.is_some() {
            return Err(Failure("error: --data goes with the c and vectors formats; an ONNX model reads its data when run\n".into()));
        }
        let path = Path::new(&o.out);
        match o.format {
            ExportFormat::Onnx => export::onnx::write(&program, path),
            _ => export::qonnx::write(&program, path, 1),
        }
        .map_err(|e| Failure(format!("error: {e}\n")))?;
        eprintln!("wrote {}", path.display());
        return Ok(String::new());
    }
    let data = match &o.data {
        Some(path) => Some(quantized_data(&program, path)?),
        None => None,
    };
    let dir = Path::new(&o.out);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure(format!("{}: error: cannot create the directory: {e}\n", o.out)))?;
    let written = match o.format {
        ExportFormat::C => export::c::write(&program, dir, data.as_ref()),
        ExportFormat::Onnx | ExportFormat::Qonnx => unreachable!("written above"),
        ExportFormat::Vectors => {
            // The samples written: --samples, or fewer when the data holds fewer.
            let n = data.as_ref().map_or(o.samples, |d| o.samples.min(d.n as u64));
            export::vectors::check_samples(&program, n)
                .map_err(|e| Failure(format!("error: {e}\n")))?;
            let n = n as usize;
            let samples = match data {
                Some(d) => first(d, n, program.input_type().elements() as usize),
                None => Samples {
                    x: program.random_input(n, 0),
                    y: vec![],
                    n,
                    source: "random (seed 0)".into(),
                },
            };
            export::vectors::write(&program, dir, &samples)
        }
    }
    .map_err(|e| Failure(format!("error: {e}\n")))?;
    eprintln!("wrote {} files to {}", written.len(), dir.display());
    Ok(String::new())
}

/// The data set's samples as the program's input integers.
fn quantized_data(p: &IntProgram, path: &str) -> Result<Samples, Failure> {
    let ds = load_data(p, path)?;
    Ok(Samples { x: quantized_input(p, &ds)?, y: ds.y, n: ds.n, source: path.to_string() })
}

/// The first `n` samples.
fn first(mut s: Samples, n: usize, len: usize) -> Samples {
    let n = n.min(s.n);
    s.x.truncate(n * len);
    s.y.truncate(n);
    s.n = n;
    s
}
