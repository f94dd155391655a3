//! `potc report`: what a lowered program asks of hardware, op by op — types,
//! exponents (scales `2^e`), requantization shifts, accumulator widths needed
//! and configured, parameter and activation memory, MACs — and pictures of
//! the quantized weights and the training run (`plot`).

mod datapath;
pub mod plot;
pub mod source;
mod table;

pub use datapath::Datapath;

pub use table::render;

use serde::Serialize;

use crate::ir::op::{LayerQuant, Op};
use crate::ir::{Elem, NodeId};
use crate::program::IntProgram;
use crate::quant::accum::{int_layer_bound, max_magnitude, signed_bits};

/// One op of the program.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The value the op defines (`%name`).
    pub name: String,
    pub op: &'static str,
    /// Shapes of the operands, and of the result.
    pub input_shapes: Vec<Vec<usize>>,
    pub output_shape: Vec<usize>,
    /// The result's integer type, e.g. `u4`, `i8`, `i32`.
    pub output_type: String,
    /// The exponents of the result (one, or one per channel): value = int * 2^e.
    pub exponents: Option<Vec<i32>>,
    /// MAC layers: the weights' format, bits and exponents.
    pub weights: Option<WeightInfo>,
    /// `requant` / `shl`: the shift amounts (right for requant, left for shl).
    pub shifts: Option<Vec<i32>>,
    /// MAC layers: the accumulator bits the worst case needs (spec section 7)
    /// and the bits of its type.
    pub acc_bits_needed: Option<u32>,
    pub acc_bits: Option<u32>,
    /// Multiply-accumulates per sample (padding taps included, as hardware
    /// computes them).
    pub macs: u64,
    /// Parameter memory: weights at their bit width, biases at `bias_bits`.
    pub weight_memory_bits: u64,
    pub bias_memory_bits: u64,
    /// The result's size per sample at its type's width.
    pub activation_bits: u64,
    /// MAC layers, for `--target asic`: the operators a spatial datapath needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datapath: Option<Datapath>,
}

/// What the report counts: the operations a CPU executes (MACs), or also
/// the hardware a spatial ASIC datapath needs (see `datapath`).
pub use crate::eqsat::Target;

#[derive(Debug, Clone, Serialize)]
pub struct WeightInfo {
    pub format: &'static str,
    pub bits: u32,
    pub per_channel: bool,
    pub count: usize,
    /// Exponent of each weight row (`2^e` per integer step), or one for
    /// all rows; empty when the program's exponents do not define them.
    pub exponents: Vec<i32>,
    /// Bits that hold the largest bias magnitude, signed (0 without bias).
    pub bias_bits: u32,
}

/// Totals over the program.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub macs: u64,
    pub weight_memory_bits: u64,
    pub bias_memory_bits: u64,
    /// The largest single activation (a lower bound for activation memory).
    pub max_activation_bits: u64,
    /// `--target asic`: multipliers, adders, shifters and register bits over all layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datapath: Option<Datapath>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub labels: Vec<String>,
    pub layers: Vec<Row>,
    pub totals: Totals,
}

/// The report of a checked program (see `IntProgram::check`) for `target`.
pub fn report(p: &IntProgram, target: Target) -> Result<Report, String> {
    let g = &p.graph;
    let order = g.order().map_err(|_| "the graph has a cycle".to_string())?;
    let layers = order.into_iter().map(|id| row(p, id, target)).collect::<Result<Vec<_>, _>>()?;
    let datapath = (target == Target::Asic).then(|| {
        let all = layers.iter().filter_map(|r| r.datapath.as_ref());
        all.fold(Datapath::default(), |mut t, d| {
            t.multipliers += d.multipliers;
            t.adders += d.adders;
            t.shifters += d.shifters;
            t.register_bits += d.register_bits;
            t.adder_bits = t.adder_bits.max(d.adder_bits);
            t.multiplier_bits = [0, 1].map(|i| t.multiplier_bits[i].max(d.multiplier_bits[i]));
            t
        })
    });
    let sum = |f: fn(&Row) -> u64| layers.iter().map(f).sum();
    let totals = Totals {
        macs: sum(|r| r.macs),
        weight_memory_bits: sum(|r| r.weight_memory_bits),
        bias_memory_bits: sum(|r| r.bias_memory_bits),
        max_activation_bits: layers.iter().map(|r| r.activation_bits).max().unwrap_or(0),
        datapath,
    };
    Ok(Report { model: g.name.clone(), labels: p.labels.clone(), layers, totals })
}

fn row(p: &IntProgram, id: NodeId, target: Target) -> Result<Row, String> {
    let g = &p.graph;
    let node = g.node(id);
    let operands = g.operands(id);
    let tensor = |slot: &str| p.tensors.get(&format!("{}.{slot}", node.name)).map(|(_, v)| v);
    let exponents = tensor("exp").cloned();
    let elem_bits = |e: Elem| match e {
        Elem::Int { bits, .. } => u64::from(bits),
        Elem::F32 => 32,
    };
    let mut r = Row {
        name: node.name.clone(),
        op: node.op.name(),
        input_shapes: operands.iter().map(|&o| g.node(o).ty.shape.clone()).collect(),
        output_shape: node.ty.shape.clone(),
        output_type: node.ty.elem.to_string(),
        exponents,
        weights: None,
        shifts: None,
        acc_bits_needed: None,
        acc_bits: None,
        macs: 0,
        weight_memory_bits: 0,
        bias_memory_bits: 0,
        activation_bits: node.ty.elements() * elem_bits(node.ty.elem),
        datapath: None,
    };
    let (q, rows, macs) = match &node.op {
        Op::IntConv1d(c) => {
            let (cin, lout) = (g.node(operands[0]).ty.shape[0], node.ty.shape[1]);
            let per = (cin / c.groups * c.kernel) as u64;
            (&c.quant, c.out_channels, c.out_channels as u64 * per * lout as u64)
        }
        Op::IntLinear(l) => {
            let n = g.node(operands[0]).ty.elements();
            (&l.quant, l.out_features, l.out_features as u64 * n)
        }
        Op::Requant(_) | Op::Shl => {
            r.shifts = tensor("shift").cloned();
            return Ok(r);
        }
        _ => return Ok(r),
    };
    let w = tensor("w").ok_or_else(|| format!("`%{}` has no weights", node.name))?;
    let b = tensor("b");
    let x = g.node(operands[0]).ty.elem;
    let (_, worst) = int_layer_bound(w, b.map(|b| b.as_slice()), rows, max_magnitude(x));
    let need = signed_bits(u64::try_from(worst).unwrap_or(u64::MAX));
    r.acc_bits_needed = Some(need);
    r.acc_bits = Some(elem_bits(node.ty.elem) as u32);
    r.macs = macs;
    let info = weight_info(p, id, q, w, b.map(|b| b.as_slice()));
    r.weight_memory_bits = w.len() as u64 * u64::from(info.bits);
    r.bias_memory_bits = b.map_or(0, |b| b.len() as u64 * u64::from(info.bias_bits));
    if target == Target::Asic {
        let x_bits = elem_bits(x) as u32;
        r.datapath = Some(datapath::datapath(w, rows, b.is_some(), x_bits, info.bits, need));
    }
    r.weights = Some(info);
    Ok(r)
}

fn weight_info(
    p: &IntProgram,
    id: NodeId,
    q: &LayerQuant,
    w: &[i32],
    b: Option<&[i32]>,
) -> WeightInfo {
    let g = &p.graph;
    let exp = |n: NodeId| p.tensors.get(&format!("{}.exp", g.node(n).name)).map(|(_, v)| v.clone());
    // A MAC's result has exponent w_exp + x_exp per row.
    let (out, x) = (exp(id).unwrap_or_default(), exp(g.operands(id)[0]).unwrap_or_default());
    // Known only for one input exponent and one output exponent per row or
    // for all (the loader bounds them, so the difference fits).
    let rows = g.node(id).ty.shape[0];
    let exponents = match x[..] {
        [xe] if out.len() == 1 || out.len() == rows => {
            out.iter().map(|&e| e.saturating_sub(xe)).collect()
        }
        _ => vec![],
    };
    // Shift-format weights count codes, not magnitude bits.
    let bits = match q.w_bits {
        Some(b) => b as u32,
        None if q.format().shifts() => q.weight_bits() as u32,
        None => signed_bits(max_abs(w)),
    };
    let bias_bits = b.map_or(0, |b| signed_bits(max_abs(b)));
    WeightInfo {
        format: q.format().name(),
        bits,
        per_channel: q.w_per_channel,
        count: w.len(),
        exponents,
        bias_bits,
    }
}

fn max_abs(v: &[i32]) -> u64 {
    v.iter().map(|x| u64::from(x.unsigned_abs())).max().unwrap_or(0)
}
