//! The network ops: each ONNX node on a network tensor becomes a potc op,
//! an alias of its input (a reshape potc does not need, identity), or an
//! error saying why potc cannot express it.

use super::fold::axis;
use super::tensor::{Const, Data};
use super::{Batch, ImportError, Importer, NodeAt, Val};
use crate::ir::op::{BatchNorm, Conv1d, Dropout, LayerQuant, Linear, Padding, Pool1d, F64};
use crate::ir::{NodeId, Op};
use ordered_float::OrderedFloat;

/// The values node `at` computes from `ins`.
pub fn translate(
    im: &mut Importer,
    at: &NodeAt,
    ins: &[Option<Val>],
) -> Result<Vec<Val>, ImportError> {
    let out = match at.op() {
        "Conv" => conv(im, at, ins)?,
        "BatchNormalization" => batch_norm(im, at, ins)?,
        "Relu" => {
            at.only_attrs(&[])?;
            let (x, shape) = net(at, ins, 0)?;
            let id = im.add(at, "relu", Op::Relu, &[x])?;
            Val::Net { id, shape }
        }
        "Add" => add(im, at, ins)?,
        "MaxPool" | "AveragePool" => pool(im, at, ins)?,
        "GlobalAveragePool" => {
            at.only_attrs(&[])?;
            let (x, [c, _]) = series(im, at, ins)?;
            let id = im.add(at, "gap", Op::GlobalAvgPool(Default::default()), &[x])?;
            Val::Net { id, shape: vec![c, 1] }
        }
        "ReduceMean" => reduce_mean(im, at, ins)?,
        "Flatten" => {
            at.only_attrs(&["axis"])?;
            let (x, shape) = net(at, ins, 0)?;
            if axis_incl_end(at.int("axis", 1)?, shape.len() + 1) != Some(1) {
                return Err(at.err("potc flattens everything but the batch axis (axis = 1)"));
            }
            reshaped(im, at, x, vec![shape.iter().product()])?
        }
        "Reshape" => {
            at.only_attrs(&["allowzero"])?;
            let (x, shape) = net(at, ins, 0)?;
            let target = match ins.get(1) {
                Some(Some(Val::Const(c))) => match &c.data {
                    Data::Int(v) => v.clone(),
                    Data::F32(_) => return Err(at.err("the target shape is not integers")),
                },
                _ => return Err(at.err("the target shape is not a constant")),
            };
            let allowzero = at.int("allowzero", 0)? != 0;
            let to = net_reshape(&shape, im.batch, &target, allowzero).map_err(|e| at.err(e))?;
            reshaped(im, at, x, to)?
        }
        "Squeeze" | "Unsqueeze" => {
            at.only_attrs(&[])?;
            let (x, shape) = net(at, ins, 0)?;
            let axes = match ins.get(1) {
                Some(Some(Val::Const(c))) => {
                    Some(c.known_ints().map_err(|e| at.err(format!("the axes {e}")))?)
                }
                Some(Some(Val::Net { .. })) => return Err(at.err("the axes are not constant")),
                _ => None,
            };
            let to = net_squeeze(at.op(), &shape, im.batch, axes).map_err(|e| at.err(e))?;
            reshaped(im, at, x, to)?
        }
        "Gemm" => gemm(im, at, ins)?,
        "MatMul" => matmul(im, at, ins)?,
        "Dropout" => dropout(im, at, ins)?,
        "Pad" => pad(im, at, ins)?,
        "Identity" => {
            at.only_attrs(&[])?;
            let (id, shape) = net(at, ins, 0)?;
            Val::Net { id, shape }
        }
        other => return Err(at.err(format!("{other} has no translation"))),
    };
    Ok(vec![out])
}

impl Importer {
    /// Adds `op` for node `at` under a name from its output, recording the source.
    fn add(
        &mut self,
        at: &NodeAt,
        base: &str,
        op: Op,
        operands: &[NodeId],
    ) -> Result<NodeId, ImportError> {
        let onnx = at.0.output.first().map_or("", String::as_str);
        let name = self.value_name(onnx, &at.0.name, base);
        let id = self.g.add_op(&name, op, operands).map_err(|e| at.err(e.to_string()))?;
        self.sources.insert(id, at.describe());
        Ok(id)
    }

    fn param(&mut self, id: NodeId, slot: &'static str, dims: Vec<usize>, v: Vec<f32>) {
        self.params.push((id, slot, dims, v));
    }
}

/// Input `i` as a network tensor: its op and ONNX shape.
fn net(at: &NodeAt, ins: &[Option<Val>], i: usize) -> Result<(NodeId, Vec<usize>), ImportError> {
    match ins.get(i) {
        Some(Some(Val::Net { id, shape })) => Ok((*id, shape.clone())),
        Some(Some(Val::Const(_))) => Err(at.err(format!(
            "input {i} is a constant where potc needs a tensor computed from the network input"
        ))),
        Some(Some(Val::Padded { .. })) => Err(at.err(format!(
            "input {i} is zero-padded by a Pad node; potc pads only as part of a Conv"
        ))),
        _ => Err(at.err(format!("input {i} is missing"))),
    }
}

/// Input `i` as a constant.
fn konst<'a>(at: &NodeAt, ins: &'a [Option<Val>], i: usize) -> Result<&'a Const, ImportError> {
    match ins.get(i) {
        Some(Some(Val::Const(c))) => Ok(c),
        Some(Some(Val::Net { .. } | Val::Padded { .. })) => Err(at.err(format!(
            "input {i} is computed from the network input; potc needs a constant (an initializer)"
        ))),
        _ => Err(at.err(format!("input {i} is missing"))),
    }
}

/// An optional constant input.
fn opt_konst<'a>(
    at: &NodeAt,
    ins: &'a [Option<Val>],
    i: usize,
) -> Result<Option<&'a Const>, ImportError> {
    match ins.get(i) {
        Some(Some(_)) => konst(at, ins, i).map(Some),
        _ => Ok(None),
    }
}

/// Input 0 as a series `[C, L]`, which potc holds with that very shape.
fn series(
    im: &Importer,
    at: &NodeAt,
    ins: &[Option<Val>],
) -> Result<(NodeId, [usize; 2]), ImportError> {
    let (x, shape) = net(at, ins, 0)?;
    let held = &im.g.node(x).ty.shape;
    match shape[..] {
        [c, l] if held[..] == [c, l] => Ok((x, [c, l])),
        _ => Err(at.err(format!(
            "{} takes a series [batch, channels, length]; its input is [batch, {}]",
            at.op(),
            dims(&shape)
        ))),
    }
}

/// Input 0 as a vector `[F]`.
fn vector(at: &NodeAt, ins: &[Option<Val>]) -> Result<(NodeId, usize), ImportError> {
    let (x, shape) = net(at, ins, 0)?;
    match shape[..] {
        [f] => Ok((x, f)),
        _ => Err(at.err(format!(
            "{} takes [batch, features] (flatten first); its input is [batch, {}]",
            at.op(),
            dims(&shape)
        ))),
    }
}

fn dims(d: &[usize]) -> String {
    d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// A per-axis attribute of a 1-D op: one value, or the default.
fn one(at: &NodeAt, name: &str, default: usize) -> Result<usize, ImportError> {
    match at.ints(name)?.as_deref() {
        None => Ok(default),
        Some(&[v]) if v > 0 => Ok(v as usize),
        Some(v) => Err(at.err(format!("`{name}` = {v:?}: a 1-D op takes one positive value"))),
    }
}

/// `(left, right)` zero padding from `pads` and `auto_pad`, for a window of
/// `span` steps moving by `stride` over `len` steps.
fn padding(
    at: &NodeAt,
    len: usize,
    span: usize,
    stride: usize,
) -> Result<(usize, usize), ImportError> {
    let auto = at.string("auto_pad", "NOTSET")?;
    match auto.as_str() {
        "NOTSET" => match at.ints("pads")?.as_deref() {
            None => Ok((0, 0)),
            Some(&[l, r]) if l >= 0 && r >= 0 => Ok((l as usize, r as usize)),
            Some(p) => {
                Err(at.err(format!("`pads` = {p:?}: a 1-D op takes [begin, end], both >= 0")))
            }
        },
        "VALID" => Ok((0, 0)),
        "SAME_UPPER" | "SAME_LOWER" => {
            // ONNX: the output has ceil(len / stride) steps; the odd zero goes
            // at the end (SAME_UPPER) or the beginning (SAME_LOWER).
            let out = len.div_ceil(stride);
            let total = ((out - 1) * stride + span).saturating_sub(len);
            let (small, big) = (total / 2, total - total / 2);
            Ok(if auto == "SAME_UPPER" { (small, big) } else { (big, small) })
        }
        other => Err(at.err(format!("`auto_pad` = {other} is not an ONNX padding mode"))),
    }
}

fn conv(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
    // Zeros a Pad node put before the convolution add to its own padding.
    let (ins, pre) = match ins.first() {
        Some(Some(Val::Padded { id, shape, left, right })) => {
            let mut ins = ins.to_vec();
            ins[0] = Some(Val::Net { id: *id, shape: shape.clone() });
            (ins, (*left, *right))
        }
        _ => (ins.to_vec(), (0, 0)),
    };
    let ins = ins.as_slice();
    let (x, [c, len]) = series(im, at, ins)?;
    let w = konst(at, ins, 1)?;
    let [m, cg, k] = w.dims[..] else {
        return Err(at.err(format!(
            "weights of shape {:?}: potc imports 1-D convolutions ([out, in/group, kernel])",
            w.dims
        )));
    };
    if one(at, "kernel_shape", k)? != k {
        return Err(at.err("`kernel_shape` differs from the weights' kernel"));
    }
    let (stride, dilation) = (one(at, "strides", 1)?, one(at, "dilations", 1)?);
    let groups = usize::try_from(at.int("group", 1)?).unwrap_or(0);
    if groups == 0 || c % groups != 0 || c / groups != cg || m % groups != 0 {
        return Err(at.err(format!(
            "weights {:?} with group {groups} do not fit {c} input channels",
            w.dims
        )));
    }
    let span = dilation * (k.max(1) - 1) + 1;
    let (left, right) = padding(at, len + pre.0 + pre.1, span, stride)?;
    let (left, right) = (left + pre.0, right + pre.1);
    let padding =
        if stride == 1 && left + right > 0 && Padding::Same.amounts(k, dilation) == (left, right) {
            Padding::Same
        } else {
            Padding::Explicit { left, right }
        };
    let b = opt_konst(at, ins, 2)?;
    let op = Op::Conv1d(Conv1d {
        out_channels: m,
        kernel: k,
        stride,
        padding,
        dilation,
        groups,
        bias: b.is_some(),
        quant: LayerQuant::default(),
    });
    let id = im.add(at, "conv", op, &[x])?;
    im.param(id, "w", w.dims.clone(), floats(at, w, "the weights")?);
    if let Some(b) = b {
        im.param(id, "b", vec![m], channel_vector(at, b, m, "the bias")?);
    }
    Ok(net_of(im, id))
}

/// The value of op `id` with potc's shape as its ONNX shape.
fn net_of(im: &Importer, id: NodeId) -> Val {
    Val::Net { id, shape: im.g.node(id).ty.shape.clone() }
}

fn floats(at: &NodeAt, c: &Const, what: &str) -> Result<Vec<f32>, ImportError> {
    let v = c.floats().map_err(|e| at.err(format!("{what} {e}")))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(at.err(format!("{what} hold a value that is not finite")));
    }
    Ok(v.to_vec())
}

/// A per-channel constant of `n` values (a single value is repeated).
fn channel_vector(at: &NodeAt, c: &Const, n: usize, what: &str) -> Result<Vec<f32>, ImportError> {
    let v = floats(at, c, what)?;
    let shape_ok = c.dims.iter().filter(|&&d| d != 1).count() <= 1;
    match v.len() {
        len if len == n && shape_ok => Ok(v),
        1 => Ok(vec![v[0]; n]),
        _ => Err(at.err(format!("{what} has shape {:?}; potc needs {n} values", c.dims))),
    }
}

fn batch_norm(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["epsilon", "momentum", "training_mode"])?;
    if at.int("training_mode", 0)? != 0 {
        return Err(at.err("potc imports the inference form (training_mode = 0)"));
    }
    let (x, shape) = net(at, ins, 0)?;
    let held = im.g.node(x).ty.shape.clone();
    if held != shape || shape.is_empty() || shape.len() > 2 {
        return Err(at.err(format!(
            "batch norm of [batch, {}]: potc normalizes [batch, channels] or [batch, channels, length]",
            dims(&shape)
        )));
    }
    let c = shape[0];
    let mut stats = vec![];
    for (i, what) in [(1, "the scale"), (2, "the bias"), (3, "the mean"), (4, "the variance")] {
        stats.push(channel_vector(at, konst(at, ins, i)?, c, what)?);
    }
    let eps = at.float("epsilon", 1e-5)?;
    if stats[3].iter().any(|&v| (v + eps).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)) {
        return Err(at.err("a variance plus epsilon is not positive"));
    }
    // ONNX's momentum weighs the running value, PyTorch's (potc's) the new one.
    let momentum = 1.0 - decimal(at.float("momentum", 0.9)?);
    let op = Op::BatchNorm(BatchNorm { eps: decimal(eps).into(), momentum: round7(momentum) });
    let id = im.add(at, "bn", op, &[x])?;
    for (slot, v) in ["gamma", "beta", "mean", "var"].into_iter().zip(stats) {
        im.param(id, slot, vec![c], v);
    }
    Ok(Val::Net { id, shape })
}

/// An f32 attribute as the decimal it was written as (`1e-5`, not
/// `9.999999747378752e-6`): the shortest decimal that reads back as it.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// `x` to the 7 significant digits an f32 attribute carries.
fn round7(x: f64) -> F64 {
    OrderedFloat(format!("{x:.6e}").parse().unwrap_or(x))
}

fn add(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&[])?;
    match (ins.first(), ins.get(1)) {
        (Some(Some(Val::Net { .. })), Some(Some(Val::Net { .. }))) => {
            let (a, sa) = net(at, ins, 0)?;
            let (b, sb) = net(at, ins, 1)?;
            if sa != sb {
                return Err(at.err(format!(
                    "adds [batch, {}] and [batch, {}]; potc adds tensors of one shape",
                    dims(&sa),
                    dims(&sb)
                )));
            }
            let id = im.add(at, "add", Op::Add(Default::default()), &[a, b])?;
            Ok(Val::Net { id, shape: sa })
        }
        (Some(Some(Val::Net { .. })), _) => linear_bias(im, at, ins, 0, 1),
        _ => linear_bias(im, at, ins, 1, 0),
    }
}

/// `MatMul` + `Add`: the constant becomes the bias of the linear layer the
/// MatMul made, which must have no other reader.
fn linear_bias(
    im: &mut Importer,
    at: &NodeAt,
    ins: &[Option<Val>],
    x: usize,
    b: usize,
) -> Result<Val, ImportError> {
    let (id, shape) = net(at, ins, x)?;
    let bias = konst(at, ins, b)?;
    let input = &at.0.input[x];
    let sole_reader = im.uses.get(input) == Some(&1);
    let Op::Linear(l) = &im.g.node(id).op else {
        return Err(at.err(
            "adds a constant to a tensor; potc adds a constant only as the bias of a MatMul",
        ));
    };
    if l.bias || !sole_reader {
        return Err(at.err("the MatMul's bias is already set, or its output has other readers"));
    }
    let n = l.out_features;
    let mut l = l.clone();
    l.bias = true;
    let v = channel_vector(at, bias, n, "the bias")?;
    im.g.node_mut(id).op = Op::Linear(l);
    im.param(id, "b", vec![n], v);
    let from = im.sources.get(&id).cloned().unwrap_or_default();
    im.sources.insert(id, format!("{from} + {}", at.describe()));
    Ok(Val::Net { id, shape })
}

fn pool(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    let max = at.op() == "MaxPool";
    let mut known = vec!["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"];
    known.push(if max { "storage_order" } else { "count_include_pad" });
    at.only_attrs(&known)?;
    let (x, [_, len]) = series(im, at, ins)?;
    let kernel = one(at, "kernel_shape", 0)?;
    if kernel == 0 {
        return Err(at.err("`kernel_shape` is required"));
    }
    if one(at, "dilations", 1)? != 1 {
        return Err(at.err("potc pools without dilation"));
    }
    let stride = one(at, "strides", 1)?;
    let (left, right) = padding(at, len, kernel, stride)?;
    if left != right {
        return Err(at.err(format!("pads {left} left, {right} right: potc pads pools evenly")));
    }
    let reach = (len + 2 * left).checked_sub(kernel);
    if at.int("ceil_mode", 0)? != 0 && reach.is_some_and(|r| r % stride != 0) {
        return Err(at.err("ceil_mode = 1 adds a partial window; potc's pools round down"));
    }
    if !max && left > 0 && at.int("count_include_pad", 0)? == 0 {
        return Err(at.err(
            "potc's avg_pool1d counts zero padding (PyTorch's default, count_include_pad = 1)",
        ));
    }
    let p = Pool1d { kernel, stride: (stride != kernel).then_some(stride), padding: left };
    let op = if max { Op::MaxPool1d(p) } else { Op::AvgPool1d(p) };
    let id = im.add(at, if max { "maxpool" } else { "avgpool" }, op, &[x])?;
    Ok(net_of(im, id))
}

/// `ReduceMean` over time: potc's `global_avg_pool`. The exporters may
/// view a series `[C, L]` with unit axes added (`[C, 1, L]` for PyTorch's
/// `AdaptiveAvgPool1d`); what counts is that the axes averaged hold exactly
/// the time steps.
fn reduce_mean(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["axes", "keepdims", "noop_with_empty_axes"])?;
    let axes = match (at.ints("axes")?, opt_konst(at, ins, 1)?) {
        (Some(a), _) => a,
        (None, Some(c)) => c.known_ints().map_err(|e| at.err(format!("the axes {e}")))?,
        (None, None) => vec![],
    };
    let (x, shape) = net(at, ins, 0)?;
    let held = im.g.node(x).ty.shape.clone();
    let over =
        |e: String| at.err(format!("mean over axes {axes:?} of [batch, {}]: {e}", dims(&shape)));
    let mut time = vec![];
    for &a in &axes {
        match axis(a, shape.len() + 1).map_err(over)? {
            0 => return Err(over("potc does not average over the batch".into())),
            i => time.push(i - 1),
        }
    }
    let [c, l] = held[..] else {
        return Err(over("potc averages a series [channels, length] over time".into()));
    };
    let averaged: usize = time.iter().map(|&i| shape[i]).product();
    let kept: usize = (0..shape.len()).filter(|i| !time.contains(i)).map(|i| shape[i]).product();
    let last_kept = (0..shape.len()).filter(|i| !time.contains(i) && shape[*i] != 1).max();
    let first_time = time.iter().copied().filter(|&i| shape[i] != 1).min();
    let in_order = matches!((last_kept, first_time), (Some(k), Some(t)) if k < t)
        || last_kept.is_none()
        || first_time.is_none();
    if time.is_empty() || averaged != l || kept != c || !in_order {
        return Err(over("potc averages over time only".into()));
    }
    let id = im.add(at, "mean", Op::GlobalAvgPool(Default::default()), &[x])?;
    let keep = at.int("keepdims", 1)? != 0;
    let out = (0..shape.len())
        .filter(|i| keep || !time.contains(i))
        .map(|i| if time.contains(&i) { 1 } else { shape[i] })
        .collect();
    Ok(Val::Net { id, shape: out })
}

/// An axis of `0..=rank` (Flatten's range), negative counting from the end.
fn axis_incl_end(a: i64, rank: usize) -> Option<usize> {
    let i = if a < 0 { a + rank as i64 } else { a };
    (0..=rank as i64).contains(&i).then_some(i as usize)
}

/// Input `x` seen with the ONNX shape `to` (same elements, same order): an
/// alias where potc's shape already matches up to unit axes, a `flatten`
/// where `to` is a vector.
fn reshaped(im: &mut Importer, at: &NodeAt, x: NodeId, to: Vec<usize>) -> Result<Val, ImportError> {
    let held = im.g.node(x).ty.shape.clone();
    if to.iter().product::<usize>() != held.iter().product::<usize>() {
        return Err(at.err(format!(
            "reshapes [batch, {}] to [batch, {}]: the element counts differ",
            dims(&held),
            dims(&to)
        )));
    }
    let unit_free = |d: &[usize]| d.iter().copied().filter(|&v| v != 1).collect::<Vec<_>>();
    if to.len() == 1 && held.len() > 1 {
        let id = im.add(at, "flatten", Op::Flatten, &[x])?;
        return Ok(Val::Net { id, shape: to });
    }
    if unit_free(&to) == unit_free(&held) && !to.is_empty() {
        return Ok(Val::Net { id: x, shape: to });
    }
    Err(at.err(format!(
        "reshapes [batch, {}] to [batch, {}]; potc reshapes only to flatten or to add or drop unit axes",
        dims(&held),
        dims(&to)
    )))
}

/// The per-sample shape a `Reshape` of a network tensor of per-sample shape
/// `shape` to `target` gives; the target's first axis must be the batch.
pub fn net_reshape(
    shape: &[usize],
    batch: Batch,
    target: &[Option<i64>],
    allowzero: bool,
) -> Result<Vec<usize>, String> {
    let Some((&first, rest)) = target.split_first() else {
        return Err("reshapes to a scalar".into());
    };
    let is_batch = match (first, batch) {
        (None, _) => true,
        (Some(0), _) => !allowzero,
        (Some(-1), _) => !rest.contains(&Some(-1)),
        (Some(n), Batch::Fixed(b)) => n == b,
        _ => false,
    };
    if !is_batch {
        return Err(format!("the target's first axis {first:?} is not the batch axis"));
    }
    // The rest reshapes one sample; a 0 copies the input's axis at its own
    // position (the sample's axis one before it).
    let mut per_sample = Vec::with_capacity(rest.len());
    for (i, d) in rest.iter().enumerate() {
        match *d {
            None => return Err("moves the batch size past axis 0".into()),
            Some(0) if !allowzero => {
                let copied = shape.get(i).ok_or("copies an axis the input lacks")?;
                per_sample.push(*copied as i64);
            }
            Some(v) => per_sample.push(v),
        }
    }
    reshape(shape, &per_sample, allowzero)
}

/// ONNX `Reshape` of `dims` to `target` (0 copies, -1 infers).
pub fn reshape(dims: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let n: usize = dims.iter().product();
    let mut out = vec![];
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or("copies an axis the input lacks")?),
            t if t >= 0 => out.push(t as usize),
            _ => return Err(format!("the target shape {target:?} is not valid")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(format!("{n} elements do not fill the shape {target:?}"));
        }
        out[i] = n / known;
    } else if known != n {
        return Err(format!("{n} elements do not fill the shape {target:?}"));
    }
    Ok(out)
}

/// `Squeeze` / `Unsqueeze` of a network tensor: the per-sample shape.
fn net_squeeze(
    op: &str,
    shape: &[usize],
    batch: Batch,
    axes: Option<Vec<i64>>,
) -> Result<Vec<usize>, String> {
    let mut full = vec![0usize];
    full.extend_from_slice(shape);
    let out = if op == "Unsqueeze" {
        let axes = axes.ok_or("Unsqueeze needs axes")?;
        let out = unsqueeze(&full, &axes)?;
        if out[0] != 0 {
            return Err("inserts an axis before the batch axis".into());
        }
        out
    } else {
        match axes {
            None if batch == Batch::Fixed(1) => {
                return Err(
                    "squeezes every unit axis, the batch axis of size 1 too; name the axes".into()
                )
            }
            None => std::iter::once(0).chain(shape.iter().copied().filter(|&d| d != 1)).collect(),
            Some(a) => {
                if a.iter().any(|&x| axis(x, full.len()).ok() == Some(0)) {
                    return Err("squeezes the batch axis".into());
                }
                squeeze(&full, Some(&a))?
            }
        }
    };
    Ok(out[1..].to_vec())
}

/// `dims` with unit axes inserted at `axes` (of the result).
pub fn unsqueeze(dims: &[usize], axes: &[i64]) -> Result<Vec<usize>, String> {
    let rank = dims.len() + axes.len();
    let mut at: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err("repeats an axis".into());
    }
    let mut rest = dims.iter();
    Ok((0..rank).map(|i| if at.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect())
}

/// `dims` without the unit axes `axes` (every unit axis when `None`).
pub fn squeeze(dims: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>, String> {
    let Some(axes) = axes else {
        return Ok(dims.iter().copied().filter(|&d| d != 1).collect());
    };
    let at: Vec<usize> = axes.iter().map(|&a| axis(a, dims.len())).collect::<Result<_, _>>()?;
    if let Some(&i) = at.iter().find(|&&i| dims[i] != 1) {
        return Err(format!("squeezes axis {i}, which has size {}", dims[i]));
    }
    Ok(dims.iter().enumerate().filter(|(i, _)| !at.contains(i)).map(|(_, &d)| d).collect())
}

fn gemm(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["alpha", "beta", "transA", "transB"])?;
    if at.int("transA", 0)? != 0 {
        return Err(at.err("transA = 1 transposes the batch; potc takes [batch, features]"));
    }
    let (x, f) = vector(at, ins)?;
    let b = konst(at, ins, 1)?;
    let w = weights_2d(at, b, f, at.int("transB", 0)? != 0)?;
    let alpha = at.float("alpha", 1.0)?;
    let w: Vec<f32> = w.into_iter().map(|v| v * alpha).collect();
    let out = w.len() / f.max(1);
    let bias = match opt_konst(at, ins, 2)? {
        Some(c) => {
            let beta = at.float("beta", 1.0)?;
            Some(channel_vector(at, c, out, "the bias")?.into_iter().map(|v| v * beta).collect())
        }
        None => None,
    };
    linear(im, at, x, f, w, bias)
}

fn matmul(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&[])?;
    let (x, f) = vector(at, ins)?;
    let w = weights_2d(at, konst(at, ins, 1)?, f, false)?;
    linear(im, at, x, f, w, None)
}

/// A linear layer's weights `[out, F]` from a constant `[F, out]` (or
/// `[out, F]` with `transposed`).
fn weights_2d(at: &NodeAt, b: &Const, f: usize, transposed: bool) -> Result<Vec<f32>, ImportError> {
    let v = floats(at, b, "the weights")?;
    match (b.dims.as_slice(), transposed) {
        (&[o, k], true) if k == f => Ok(v.iter().take(o * k).copied().collect()),
        (&[k, o], false) if k == f => Ok((0..o * k).map(|i| v[(i % k) * o + i / k]).collect()),
        _ => Err(at.err(format!("weights of shape {:?} do not fit {f} input features", b.dims))),
    }
}

fn linear(
    im: &mut Importer,
    at: &NodeAt,
    x: NodeId,
    f: usize,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
) -> Result<Val, ImportError> {
    let out = w.len() / f.max(1);
    let op = Op::Linear(Linear {
        out_features: out,
        bias: bias.is_some(),
        quant: LayerQuant::default(),
        input_divisor: None,
    });
    let id = im.add(at, "linear", op, &[x])?;
    im.param(id, "w", vec![out, f], w);
    if let Some(b) = bias {
        im.param(id, "b", vec![out], b);
    }
    Ok(Val::Net { id, shape: vec![out] })
}

fn dropout(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["seed"])?;
    let (x, shape) = net(at, ins, 0)?;
    let p = match opt_konst(at, ins, 1)? {
        Some(c) => *floats(at, c, "the ratio")?.first().unwrap_or(&0.5),
        None => 0.5,
    };
    if let Some(t) = opt_konst(at, ins, 2)? {
        if t.known_ints().map_err(|e| at.err(format!("training_mode {e}")))?.iter().any(|&v| v != 0)
        {
            return Err(at.err("potc imports the inference form (training_mode false)"));
        }
    }
    if !(0.0..1.0).contains(&p) {
        return Err(at.err(format!("a dropout ratio of {p}")));
    }
    let op = Op::Dropout(Dropout { p: decimal(p).into() });
    let id = im.add(at, "dropout", op, &[x])?;
    Ok(Val::Net { id, shape })
}

/// `Pad` with zeros along time only, before a `Conv`.
fn pad(im: &mut Importer, at: &NodeAt, ins: &[Option<Val>]) -> Result<Val, ImportError> {
    at.only_attrs(&["mode"])?;
    if at.string("mode", "constant")? != "constant" {
        return Err(at.err("potc pads with zeros (mode = constant) only"));
    }
    let (x, [c, l]) = series(im, at, ins)?;
    let pads = konst(at, ins, 1)?.known_ints().map_err(|e| at.err(format!("the pads {e}")))?;
    if let Some(v) = opt_konst(at, ins, 2)? {
        if floats(at, v, "the padding value")?.iter().any(|&z| z != 0.0) {
            return Err(at.err("potc pads with zeros only"));
        }
    }
    // Per axis (all three, or those `axes` names): begin values, then end values.
    let axes = match opt_konst(at, ins, 3)? {
        Some(a) => a.known_ints().map_err(|e| at.err(format!("the axes {e}")))?,
        None => vec![0, 1, 2],
    };
    let axes: Vec<usize> =
        axes.iter().map(|&a| axis(a, 3)).collect::<Result<_, _>>().map_err(|e| at.err(e))?;
    if pads.len() != 2 * axes.len() {
        return Err(at.err(format!("{} pads for {} axes", pads.len(), axes.len())));
    }
    let (mut left, mut right) = (0, 0);
    for (i, &a) in axes.iter().enumerate() {
        let (b, e) = (pads[i], pads[i + axes.len()]);
        match a {
            2 if b >= 0 && e >= 0 => (left, right) = (b as usize, e as usize),
            _ if b == 0 && e == 0 => {}
            _ => return Err(at.err(format!("pads {pads:?}: potc pads the time axis with zeros"))),
        }
    }
    Ok(Val::Padded { id: x, shape: vec![c, l], left, right })
}
