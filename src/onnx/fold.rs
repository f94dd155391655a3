//! Constant folding of what exporters compute from constants and shapes:
//! `x.view(x.size(0), -1)` becomes `Shape`, `Gather`, `Unsqueeze`, `Concat`
//! and `Reshape`, all known at import time except the batch size, which
//! stays symbolic (`None`) and may only reach a reshape's batch axis.

use super::proto::{attr_type, data_type};
use super::tensor::{decode, Const, Data};
use super::{Batch, ImportError, NodeAt, Val};

/// The ops folded when all their inputs are constants (`Shape` also of a
/// network tensor, whose shape is known).
pub const FOLDED: &[&str] = &[
    "Constant",
    "Shape",
    "Gather",
    "Concat",
    "Cast",
    "Slice",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Transpose",
    "Identity",
    "Add",
    "Sub",
    "Mul",
    "Div",
];

/// The outputs of the foldable node `at` on inputs `ins`.
pub fn fold(
    at: &NodeAt,
    ins: &[Option<Val>],
    batch: Batch,
    opset: i64,
) -> Result<Vec<Const>, ImportError> {
    let c = |i: usize| -> Result<&Const, ImportError> {
        match ins.get(i) {
            Some(Some(Val::Const(c))) => Ok(c),
            _ => Err(at.err(format!("input {i} is missing or not a constant"))),
        }
    };
    let out = match at.op() {
        "Constant" => constant(at)?,
        "Shape" => shape(at, ins, batch)?,
        "Identity" => {
            at.only_attrs(&[])?;
            c(0)?.clone()
        }
        "Gather" => {
            at.only_attrs(&["axis"])?;
            gather(c(0)?, c(1)?, at.int("axis", 0)?).map_err(|e| at.err(e))?
        }
        "Concat" => {
            at.only_attrs(&["axis"])?;
            let parts: Result<Vec<&Const>, _> = (0..ins.len()).map(c).collect();
            concat(&parts?, at.int("axis", 0)?).map_err(|e| at.err(e))?
        }
        "Cast" => {
            at.only_attrs(&["to", "saturate", "round_mode"])?;
            cast(c(0)?, at.int("to", 0)?).map_err(|e| at.err(e))?
        }
        "Slice" => slice(c(0)?, &slice_args(at, ins, &c)?).map_err(|e| at.err(e))?,
        "Unsqueeze" | "Squeeze" => {
            let axes = axes_of(at, ins, opset, &c)?;
            let x = c(0)?;
            let dims = if at.op() == "Unsqueeze" {
                super::layers::unsqueeze(&x.dims, &axes.unwrap_or_default())
            } else {
                super::layers::squeeze(&x.dims, axes.as_deref())
            }
            .map_err(|e| at.err(e))?;
            Const { dims, data: x.data.clone() }
        }
        "Reshape" => {
            at.only_attrs(&["allowzero"])?;
            let x = c(0)?;
            let target = c(1)?.known_ints().map_err(|e| at.err(format!("the shape {e}")))?;
            let dims = super::layers::reshape(&x.dims, &target, at.int("allowzero", 0)? != 0)
                .map_err(|e| at.err(e))?;
            Const { dims, data: x.data.clone() }
        }
        "Transpose" => {
            at.only_attrs(&["perm"])?;
            transpose(c(0)?, at.ints("perm")?).map_err(|e| at.err(e))?
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            at.only_attrs(&[])?;
            arith(at.op(), c(0)?, c(1)?).map_err(|e| at.err(e))?
        }
        other => return Err(at.err(format!("{other} is not folded"))),
    };
    Ok(vec![out])
}

fn constant(at: &NodeAt) -> Result<Const, ImportError> {
    let [a] = at.0.attribute.as_slice() else {
        return Err(at.err("a Constant needs exactly one attribute"));
    };
    let scalar = |data| Const { dims: vec![], data };
    Ok(match a.name.as_str() {
        "value" => {
            let t = at.attr("value", attr_type::TENSOR)?.and_then(|a| a.t.as_ref());
            let t = t.ok_or_else(|| at.err("attribute `value` holds no tensor"))?;
            decode(t).map_err(|e| at.err(format!("its value {e}")))?
        }
        "value_float" => scalar(Data::F32(vec![at.float("value_float", 0.0)?])),
        "value_int" => scalar(Data::Int(vec![Some(at.int("value_int", 0)?)])),
        "value_floats" => {
            let v = at.attr("value_floats", attr_type::FLOATS)?.map(|a| a.floats.clone());
            let v = v.unwrap_or_default();
            Const { dims: vec![v.len()], data: Data::F32(v) }
        }
        "value_ints" => {
            let v = at.ints("value_ints")?.unwrap_or_default();
            Const::ints(vec![v.len()], v.into_iter().map(Some).collect())
        }
        other => return Err(at.err(format!("a Constant with `{other}` is not supported"))),
    })
}

/// `Shape` of a network tensor: the batch axis, then its known shape.
fn shape(at: &NodeAt, ins: &[Option<Val>], batch: Batch) -> Result<Const, ImportError> {
    at.only_attrs(&["start", "end"])?;
    let dims: Vec<Option<i64>> =
        match ins.first() {
            Some(Some(Val::Const(c))) => c.dims.iter().map(|&d| Some(d as i64)).collect(),
            Some(Some(Val::Net { shape, .. })) => {
                let b = match batch {
                    Batch::Fixed(n) => Some(n),
                    Batch::Symbolic => None,
                };
                std::iter::once(b).chain(shape.iter().map(|&d| Some(d as i64))).collect()
            }
            _ => return Err(at.err(
                "input 0 is missing, or zero-padded by a Pad node (potc pads only inside a Conv)",
            )),
        };
    let r = dims.len() as i64;
    let start = clamp_index(at.int("start", 0)?, r);
    let end = clamp_index(at.int("end", r)?, r);
    let v: Vec<Option<i64>> = dims[start..end.max(start)].to_vec();
    Ok(Const::ints(vec![v.len()], v))
}

/// A Python-style index into `0..=len`: negative counts from the end, then clamped.
fn clamp_index(i: i64, len: i64) -> usize {
    let i = if i < 0 { i.saturating_add(len) } else { i };
    i.clamp(0, len) as usize
}

/// `axis` of a tensor of rank `rank`, negative counting from the end.
pub fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let i = if a < 0 { a + r } else { a };
    if (0..r).contains(&i) {
        Ok(i as usize)
    } else {
        Err(format!("axis {a} is out of range for rank {rank}"))
    }
}

fn gather(data: &Const, idx: &Const, ax: i64) -> Result<Const, String> {
    if data.dims.len() != 1 || axis(ax, 1)? != 0 {
        return Err("potc folds Gather of one-dimensional constants only".into());
    }
    let n = data.dims[0] as i64;
    let mut picks = vec![];
    for i in idx.known_ints()? {
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(format!("index {i} is out of range for {n} elements"));
        }
        picks.push(j as usize);
    }
    let data = match &data.data {
        Data::F32(v) => Data::F32(picks.iter().map(|&j| v[j]).collect()),
        Data::Int(v) => Data::Int(picks.iter().map(|&j| v[j]).collect()),
    };
    Ok(Const { dims: idx.dims.clone(), data })
}

fn concat(parts: &[&Const], ax: i64) -> Result<Const, String> {
    if parts.is_empty() || parts.iter().any(|p| p.dims.len() != 1) || axis(ax, 1)? != 0 {
        return Err("potc folds Concat of one-dimensional constants only".into());
    }
    let mut ints = vec![];
    let mut floats = vec![];
    for p in parts {
        match &p.data {
            Data::Int(v) => ints.extend_from_slice(v),
            Data::F32(v) => floats.extend_from_slice(v),
        }
    }
    match (ints.is_empty(), floats.is_empty()) {
        (_, true) => Ok(Const::ints(vec![ints.len()], ints)),
        (true, false) => Ok(Const { dims: vec![floats.len()], data: Data::F32(floats) }),
        (false, false) => Err("concatenates integers with floats".into()),
    }
}

fn cast(x: &Const, to: i64) -> Result<Const, String> {
    let to = i32::try_from(to).unwrap_or(-1);
    let data = match (&x.data, to) {
        (Data::F32(v), data_type::FLOAT | data_type::DOUBLE) => Data::F32(v.clone()),
        (Data::Int(v), data_type::FLOAT | data_type::DOUBLE) => {
            let known: Result<Vec<f32>, String> = v
                .iter()
                .map(|i| i.map(|i| i as f32).ok_or("depends on the batch size".into()))
                .collect();
            Data::F32(known?)
        }
        (Data::Int(v), data_type::INT64 | data_type::INT32) => Data::Int(v.clone()),
        (Data::F32(v), data_type::INT64 | data_type::INT32) => {
            Data::Int(v.iter().map(|&f| Some(f.trunc() as i64)).collect())
        }
        _ => {
            return Err(format!(
                "potc folds casts to float and int32/int64, not {}",
                super::tensor::type_name(to)
            ))
        }
    };
    Ok(Const { dims: x.dims.clone(), data })
}

/// `Slice`'s starts, ends, axes and steps (inputs since opset 10).
struct SliceArgs {
    starts: Vec<i64>,
    ends: Vec<i64>,
    steps: Option<Vec<i64>>,
    axes: Option<Vec<i64>>,
}

fn slice_args<'a>(
    at: &NodeAt,
    ins: &'a [Option<Val>],
    c: &dyn Fn(usize) -> Result<&'a Const, ImportError>,
) -> Result<SliceArgs, ImportError> {
    at.only_attrs(&[])?;
    let ints = |i: usize| -> Result<Option<Vec<i64>>, ImportError> {
        if !matches!(ins.get(i), Some(Some(_))) {
            return Ok(None);
        }
        c(i)?.known_ints().map(Some).map_err(|e| at.err(format!("input {i} {e}")))
    };
    let need =
        |v: Option<Vec<i64>>, what: &str| v.ok_or_else(|| at.err(format!("{what} is missing")));
    Ok(SliceArgs {
        starts: need(ints(1)?, "starts")?,
        ends: need(ints(2)?, "ends")?,
        axes: ints(3)?,
        steps: ints(4)?,
    })
}

fn slice(x: &Const, a: &SliceArgs) -> Result<Const, String> {
    if x.dims.len() != 1 {
        return Err("potc folds Slice of one-dimensional constants only".into());
    }
    if a.axes.as_ref().is_some_and(|ax| ax.iter().any(|&v| v != 0 && v != -1))
        || a.starts.len() != 1
        || a.ends.len() != 1
    {
        return Err("potc folds Slice along the one axis only".into());
    }
    let step = a.steps.as_ref().and_then(|s| s.first().copied()).unwrap_or(1);
    if step == 0 {
        return Err("a step of 0".into());
    }
    let n = x.dims[0] as i64;
    let norm =
        |i: i64, lo: i64, hi: i64| (if i < 0 { i.saturating_add(n) } else { i }).clamp(lo, hi);
    let picks: Vec<usize> = if step > 0 {
        let (s, e) = (norm(a.starts[0], 0, n), norm(a.ends[0], 0, n));
        (s..e).step_by(step as usize).map(|i| i as usize).collect()
    } else {
        let (s, e) = (norm(a.starts[0], -1, n - 1), norm(a.ends[0], -1, n - 1));
        let mut v = vec![];
        let mut i = s;
        while i > e {
            v.push(i as usize);
            i += step;
        }
        v
    };
    let data = match &x.data {
        Data::F32(v) => Data::F32(picks.iter().map(|&j| v[j]).collect()),
        Data::Int(v) => Data::Int(picks.iter().map(|&j| v[j]).collect()),
    };
    Ok(Const { dims: vec![picks.len()], data })
}

/// Squeeze and Unsqueeze axes: an input since opset 13, an attribute before.
fn axes_of<'a>(
    at: &NodeAt,
    ins: &'a [Option<Val>],
    opset: i64,
    c: &dyn Fn(usize) -> Result<&'a Const, ImportError>,
) -> Result<Option<Vec<i64>>, ImportError> {
    if opset < 13 {
        at.only_attrs(&["axes"])?;
        return at.ints("axes");
    }
    at.only_attrs(&[])?;
    match ins.get(1) {
        Some(Some(_)) => c(1)?.known_ints().map(Some).map_err(|e| at.err(format!("the axes {e}"))),
        _ => Ok(None),
    }
}

fn transpose(x: &Const, perm: Option<Vec<i64>>) -> Result<Const, String> {
    let [r, c] = x.dims[..] else {
        return Err("potc folds Transpose of two-dimensional constants only".into());
    };
    if perm.is_some_and(|p| p != [1, 0]) {
        return Err("a two-dimensional transpose has perm [1, 0]".into());
    }
    let at = |i: usize| (i % r) * c + i / r;
    let data = match &x.data {
        Data::F32(v) => Data::F32((0..r * c).map(|i| v[at(i)]).collect()),
        Data::Int(v) => Data::Int((0..r * c).map(|i| v[at(i)]).collect()),
    };
    Ok(Const { dims: vec![c, r], data })
}

/// Elementwise arithmetic of constants of one shape, or one of them a single value.
fn arith(op: &str, a: &Const, b: &Const) -> Result<Const, String> {
    let n = a.len().max(b.len());
    let dims = if a.len() >= b.len() { a.dims.clone() } else { b.dims.clone() };
    if !(a.len() == b.len() && a.dims == b.dims || a.len() == 1 || b.len() == 1) {
        return Err(format!(
            "potc folds {op} of equal shapes or with a single value, not {:?} and {:?}",
            a.dims, b.dims
        ));
    }
    let pick = |len: usize, i: usize| if len == 1 { 0 } else { i };
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => Data::F32(
            (0..n)
                .map(|i| {
                    let (p, q) = (x[pick(x.len(), i)], y[pick(y.len(), i)]);
                    match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    }
                })
                .collect(),
        ),
        (Data::Int(x), Data::Int(y)) => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let (p, q) = (x[pick(x.len(), i)], y[pick(y.len(), i)]);
                let r = match (p, q) {
                    (Some(p), Some(q)) => Some(
                        match op {
                            "Add" => p.checked_add(q),
                            "Sub" => p.checked_sub(q),
                            "Mul" => p.checked_mul(q),
                            _ => p.checked_div(q),
                        }
                        .ok_or_else(|| format!("{op} of {p} and {q} overflows or divides by 0"))?,
                    ),
                    _ => None,
                };
                v.push(r);
            }
            Data::Int(v)
        }
        _ => return Err(format!("{op} of an integer and a float tensor")),
    };
    Ok(Const { dims, data })
}
