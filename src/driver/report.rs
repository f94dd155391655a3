//! `potc report`: the per-op table of a lowered program, and its plots.

use std::path::Path;

use super::lower::load_program;
use super::plot::training_curves;
use super::Failure;
use crate::report::plot::{layers, weight_histograms};
use crate::report::source::Source;
use crate::report::{render, report as build, Target};

/// Flags of `potc report` (see `potc report --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct ReportOptions {
    /// A program directory written by `potc lower`.
    pub program: String,
    /// Print one JSON object on standard output (layers and totals).
    #[arg(long)]
    pub json: bool,
    /// Draw SVGs into DIR: each MAC layer's float weights over its
    /// quantization grid (`<layer>.weights.svg`), and the training curves
    /// (`training.svg`), from the `source.safetensors` that `potc lower` keeps.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<String>,
    /// What to count: `cpu`, the operations a CPU executes (MACs); `asic`,
    /// also each MAC layer's spatial datapath (one operator per weight, one
    /// output step per cycle), each weight's operators chosen by equality
    /// saturation under an area cost: a weight 0 is nothing, ±2^k a shift,
    /// 7 = 8 - 1 a shift and an adder (signed digits), a multiplier only
    /// where no shift-add form is cheaper; adders and shifters with their
    /// widths, and register bits (`datapath` in --json).
    #[arg(long, value_enum, default_value_t = Target::Cpu)]
    pub target: Target,
}

pub fn report(o: &ReportOptions) -> Result<String, Failure> {
    let program = load_program(&o.program)?;
    let r =
        build(&program, o.target).map_err(|e| Failure(format!("{}: error: {e}\n", o.program)))?;
    if let Some(dir) = &o.plot {
        let dir = Path::new(dir);
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure(format!("{}: error: cannot create the directory: {e}\n", dir.display()))
        })?;
        let src_path = Source::path(Path::new(&o.program));
        if !src_path.exists() {
            return Err(Failure(format!(
                "{}: error: missing; --plot draws from the float weights `potc lower` keeps there \
                 (lower the checkpoint again)\n",
                src_path.display()
            )));
        }
        let source = Source::load(Path::new(&o.program)).map_err(|e| Failure(format!("{e}\n")))?;
        let plotted = layers(&r.layers, &source, &program.tensors)
            .map_err(|e| Failure(format!("{}: error: {e}\n", o.program)))?;
        let mut written =
            weight_histograms(&plotted, dir).map_err(|e| Failure(format!("error: {e}\n")))?;
        if source.history.is_empty() {
            eprintln!("note: no training history in {} (trained 0 epochs?)", src_path.display());
        } else {
            let path = dir.join("training.svg");
            training_curves(&source.history, &path)?;
            written.push(path);
        }
        for f in &written {
            eprintln!("wrote {}", f.display());
        }
    }
    Ok(if o.json {
        serde_json::to_string(&r).map_err(|e| Failure(format!("error: {e}\n")))? + "\n"
    } else {
        render(&r)
    })
}
