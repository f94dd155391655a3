//! Shape and type inference: the typing rule of every op (see the variant docs
//! in `op.rs`). All arithmetic is checked; a result beyond the limits of
//! `types::check_shape` is an error, never a wrap.

use super::op::{Conv1d, Op, Pool1d};
use super::types::{check_shape, Elem, ShapeError, Type};

/// Why an op cannot apply to its operands' types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("an input's type is declared, not inferred")]
    Declared,
    #[error("{op} takes integers, got {got}")]
    WantsIntegers { op: &'static str, got: Type },
    #[error("{op} takes f32 values, got {got}")]
    WantsFloats { op: &'static str, got: Type },
    #[error("{op} takes [channels, length], got {got}")]
    WantsSequence { op: &'static str, got: Type },
    #[error("{op} takes [features], got {got}{}", if *.op == "linear" { "; insert global_avg_pool or flatten first" } else { "" })]
    WantsFeatures { op: &'static str, got: Type },
    #[error("{op} needs operands of one type, got {a} and {b}")]
    OperandsDiffer { op: &'static str, a: Type, b: Type },
    #[error("{op} with groups = {groups} needs input channels divisible by it, got {channels}")]
    Groups { op: &'static str, groups: usize, channels: usize },
    #[error("{op}: the window spans {span} steps but the padded input has only {padded}")]
    WindowTooLong { op: &'static str, span: u64, padded: u64 },
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// The result type of `op` applied to operands of types `ins` (arity already checked).
pub fn infer(op: &Op, ins: &[&Type]) -> Result<Type, TypeError> {
    match op {
        Op::Input => Err(TypeError::Declared),
        Op::Conv1d(c) => {
            let dims = conv(op, c, ins[0])?;
            float(op, ins[0])?;
            shaped(Elem::F32, &dims)
        }
        Op::IntConv1d(c) => {
            integer(op, ins[0])?;
            shaped(c.quant.acc_elem(), &conv(op, c, ins[0])?)
        }
        Op::IntLinear(l) => {
            integer(op, ins[0])?;
            features(op, ins[0])?;
            shaped(l.quant.acc_elem(), &[l.out_features as u64])
        }
        Op::Requant(q) => {
            integer(op, ins[0])?;
            Ok(Type::new(Elem::Int { signed: q.signed, bits: q.bits as u8 }, ins[0].shape.clone()))
        }
        Op::Shl => {
            integer(op, ins[0])?;
            Ok(Type::new(I32, ins[0].shape.clone()))
        }
        Op::BatchNorm(_) | Op::Dropout(_) | Op::FakeQuant(_) => {
            float(op, ins[0])?;
            Ok(ins[0].clone())
        }
        Op::Relu => Ok(ins[0].clone()),
        Op::Flatten => match ins[0].sequence() {
            Some((c, l)) => shaped(ins[0].elem, &[c as u64 * l as u64]),
            None => Ok(ins[0].clone()),
        },
        Op::Add(_) => {
            if ins[0] != ins[1] {
                let (a, b) = (ins[0].clone(), ins[1].clone());
                return Err(TypeError::OperandsDiffer { op: op.name(), a, b });
            }
            Ok(ins[0].clone())
        }
        Op::MaxPool1d(p) => pool(op, p, ins[0]),
        Op::AvgPool1d(p) => {
            float(op, ins[0])?;
            pool(op, p, ins[0])
        }
        Op::GlobalSumPool if ins[0].elem != Elem::F32 => {
            let (c, _) = sequence(op, ins[0])?;
            shaped(I32, &[c as u64])
        }
        Op::GlobalAvgPool(_) | Op::GlobalSumPool => {
            let (c, _) = sequence(op, ins[0])?;
            float(op, ins[0])?;
            shaped(Elem::F32, &[c as u64])
        }
        Op::Linear(l) => {
            float(op, ins[0])?;
            features(op, ins[0])?;
            shaped(Elem::F32, &[l.out_features as u64])
        }
    }
}

const I32: Elem = Elem::Int { signed: true, bits: 32 };

fn integer(op: &Op, t: &Type) -> Result<(), TypeError> {
    if t.elem == Elem::F32 {
        return Err(TypeError::WantsIntegers { op: op.name(), got: t.clone() });
    }
    Ok(())
}

fn shaped(elem: Elem, dims: &[u64]) -> Result<Type, TypeError> {
    Ok(Type::new(elem, check_shape(dims)?))
}

fn sequence(op: &Op, t: &Type) -> Result<(usize, usize), TypeError> {
    t.sequence().ok_or_else(|| TypeError::WantsSequence { op: op.name(), got: t.clone() })
}

fn features(op: &Op, t: &Type) -> Result<(), TypeError> {
    if t.shape.len() != 1 {
        return Err(TypeError::WantsFeatures { op: op.name(), got: t.clone() });
    }
    Ok(())
}

fn float(op: &Op, t: &Type) -> Result<(), TypeError> {
    if t.elem != Elem::F32 {
        return Err(TypeError::WantsFloats { op: op.name(), got: t.clone() });
    }
    Ok(())
}

/// `[out_channels, L']` of a convolution (float or integer) on `t`.
fn conv(op: &Op, c: &Conv1d, t: &Type) -> Result<[u64; 2], TypeError> {
    let (ch, len) = sequence(op, t)?;
    if ch % c.groups != 0 {
        return Err(TypeError::Groups { op: op.name(), groups: c.groups, channels: ch });
    }
    let (left, right) = c.padding.amounts(c.kernel, c.dilation);
    let out = window_len(len, left + right, c.kernel, c.dilation, c.stride, op)?;
    Ok([c.out_channels as u64, out])
}

fn pool(op: &Op, p: &Pool1d, t: &Type) -> Result<Type, TypeError> {
    let (c, len) = sequence(op, t)?;
    let out = window_len(len, 2 * p.padding, p.kernel, 1, p.stride(), op)?;
    shaped(t.elem, &[c as u64, out])
}

/// Output length of a sliding window: `(len + pad - span) / stride + 1` with
/// `span = dilation * (kernel - 1) + 1`.
fn window_len(
    len: usize,
    pad: usize,
    kernel: usize,
    dilation: usize,
    stride: usize,
    op: &Op,
) -> Result<u64, TypeError> {
    let padded = len as u64 + pad as u64;
    let span = (dilation as u64) * (kernel as u64 - 1) + 1;
    if span > padded {
        return Err(TypeError::WindowTooLong { op: op.name(), span, padded });
    }
    Ok((padded - span) / stride as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::{Conv1d, Padding};

    fn conv(k: usize, s: usize, pad: Padding, d: usize, g: usize) -> Op {
        Op::Conv1d(Conv1d {
            out_channels: 4,
            kernel: k,
            stride: s,
            padding: pad,
            dilation: d,
            groups: g,
            bias: true,
            quant: Default::default(),
        })
    }

    #[test]
    fn conv_lengths_follow_pytorch() {
        let x = Type::f32(vec![2, 150]);
        let len = |op: Op| infer(&op, &[&x]).map(|t| t.shape[1]);
        assert_eq!(len(conv(8, 1, Padding::Same, 1, 1)), Ok(150));
        assert_eq!(len(conv(8, 1, Padding::Explicit { left: 0, right: 0 }, 1, 1)), Ok(143));
        assert_eq!(len(conv(3, 2, Padding::Explicit { left: 1, right: 1 }, 1, 1)), Ok(75));
        assert_eq!(len(conv(3, 1, Padding::Explicit { left: 0, right: 0 }, 4, 2)), Ok(142));
        let long = TypeError::WindowTooLong { op: "conv1d", span: 199, padded: 150 };
        assert_eq!(len(conv(3, 1, Padding::Explicit { left: 0, right: 0 }, 99, 1)), Err(long));
        let groups = TypeError::Groups { op: "conv1d", groups: 4, channels: 6 };
        assert_eq!(
            infer(&conv(3, 1, Padding::Same, 1, 4), &[&Type::f32(vec![6, 10])]),
            Err(groups)
        );
    }

    #[test]
    fn same_padding_puts_the_extra_zero_right() {
        assert_eq!(Padding::Same.amounts(8, 1), (3, 4));
        assert_eq!(Padding::Same.amounts(5, 1), (2, 2));
        assert_eq!(Padding::Same.amounts(4, 3), (4, 5));
    }
}
