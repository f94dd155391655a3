//! `potc import`: an ONNX model (from `torch.onnx.export`) to `.pot` text
//! and a float checkpoint that `train --init`, `eval` and `print --weights` read.

use super::Failure;
use crate::ckpt::{write_atomic, Checkpoint, KEY_LABELS};
use crate::ir::{print, verify, Graph, NodeId};
use crate::onnx::{import as import_onnx, ImportSettings, Imported};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Flags of `potc import` (see `potc import --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct ImportOptions {
    /// The ONNX model (`torch.onnx.export`, either exporter, opset 13 or newer).
    pub onnx: String,
    /// The model text to write (`.pot`).
    #[arg(short = 'o', long = "out", value_name = "MODEL.pot")]
    pub out: String,
    /// The float checkpoint to write (default: `-o` with `.safetensors`).
    #[arg(long, value_name = "INIT.safetensors")]
    pub weights_out: Option<String>,
    /// The series length, where the file leaves it symbolic (a dynamic axis).
    #[arg(long, value_name = "L")]
    pub length: Option<usize>,
    /// The class labels in the network's output order, comma-separated, as
    /// the data files spell them (default: the data file's class order, as
    /// for a model trained from scratch).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// The model's name in the text (default: from the file name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Print one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

pub fn import(o: &ImportOptions) -> Result<String, Failure> {
    let start = Instant::now();
    let bytes = std::fs::read(&o.onnx)
        .map_err(|e| Failure(format!("{}: error: cannot read the file: {e}\n", o.onnx)))?;
    let settings = ImportSettings { name: model_name(o)?, length: o.length };
    let im =
        import_onnx(&bytes, &settings).map_err(|e| Failure(format!("{}: error: {e}\n", o.onnx)))?;
    verify(&im.graph).map_err(|e| {
        Failure(format!("{}: error: the imported network does not verify: {e}\n", o.onnx))
    })?;
    let weights = o.weights_out.clone().unwrap_or_else(|| {
        Path::new(&o.out).with_extension("safetensors").to_string_lossy().into_owned()
    });
    for path in [&o.out, &weights] {
        if Path::new(path).canonicalize().ok() == Path::new(&o.onnx).canonicalize().ok() {
            return Err(Failure(format!(
                "{path}: error: is the ONNX input; it would be overwritten\n"
            )));
        }
    }
    let text = model_text(&im, &o.onnx);
    write_atomic(Path::new(&o.out), |w| w.write_all(text.as_bytes()))
        .map_err(|e| Failure(format!("{}: error: cannot write the model: {e}\n", o.out)))?;
    checkpoint(&im, o.labels.as_deref())
        .save(Path::new(&weights))
        .map_err(|e| Failure(format!("error: {e}\n")))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(summary(o, &im, &weights, ms))
}

/// `--name`, else the ONNX file's stem made an identifier.
fn model_name(o: &ImportOptions) -> Result<String, Failure> {
    if let Some(n) = &o.name {
        if !crate::ir::graph::is_ident(n) {
            return Err(Failure(format!("error: --name {n:?} is not an identifier\n")));
        }
        return Ok(n.clone());
    }
    let stem = Path::new(&o.onnx).file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let name = if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name
    } else {
        format!("m_{name}")
    };
    Ok(if crate::ir::graph::is_ident(&name) { name } else { "imported".into() })
}

/// The canonical text with a comment above each op naming its ONNX node.
fn model_text(im: &Imported, onnx: &str) -> String {
    let by_name: HashMap<&str, NodeId> =
        im.graph.node_ids().map(|id| (im.graph.node(id).name.as_str(), id)).collect();
    let file = Path::new(onnx).file_name().map(|f| f.to_string_lossy()).unwrap_or_default();
    let mut out = format!(
        "// Imported by `potc import` from {file} ({}, opset {}).\n",
        if im.producer.is_empty() { "unknown producer" } else { &im.producer },
        im.opset
    );
    for line in print(&im.graph).lines() {
        let name = line.strip_prefix("  %").and_then(|l| l.split_once(" = ")).map(|(n, _)| n);
        if let Some(src) = name.and_then(|n| by_name.get(n)).and_then(|id| im.sources.get(id)) {
            out.push_str(&format!("  // from {src}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn checkpoint(im: &Imported, labels: Option<&[String]>) -> Checkpoint {
    let mut ck = Checkpoint::default();
    ck.set_model(&im.graph);
    for (name, dims, v) in &im.params {
        ck.insert_f32(name.clone(), dims.clone(), v.clone());
    }
    if let Some(l) = labels {
        ck.set_json(KEY_LABELS, l);
    }
    ck
}

fn summary(o: &ImportOptions, im: &Imported, weights: &str, ms: f64) -> String {
    let g: &Graph = &im.graph;
    let mut counts: Vec<(&str, usize)> = vec![];
    for id in g.order().unwrap_or_default().into_iter().filter(|id| !g.inputs().contains(id)) {
        let name = g.node(id).op.name();
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    let params: usize = im.params.iter().map(|(_, _, v)| v.len()).sum();
    if o.json {
        let ops: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(n, c)| (n.to_string(), (*c).into())).collect();
        let j = serde_json::json!({
            "model": g.name, "pot": o.out, "weights": weights, "ops": ops,
            "parameters": params, "opset": im.opset, "producer": im.producer,
            "import_ms": ms,
        });
        return format!("{j}\n");
    }
    let ops: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    format!(
        "imported model `{}` ({}; {params} parameters) from {} in {ms:.1} ms\nwrote {} and {weights}\n\
         next: potc train {} --init {weights} --quant w4a8 --train TRAIN --test TEST -o QAT.safetensors\n",
        g.name,
        ops.join(", "),
        o.onnx,
        o.out,
        o.out
    )
}
