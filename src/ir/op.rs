//! The closed set of operations. Every variant documents its typing rule; the
//! rule itself is in `infer.rs`, and its attributes are listed exactly once, in
//! [`Op::visit_attrs`], which the parser and the printer both use (a test keeps
//! docs/ir.md naming every op and attribute).

use ordered_float::OrderedFloat;

use super::attrs::{bad, positive, Limits, Names};
pub use super::attrs::{AttrError, AttrVisitor};
pub use super::params::{Init, ParamSpec};
use crate::quant::WeightFormat;

/// A float attribute that can be compared and hashed (bit-exact).
pub type F64 = OrderedFloat<f64>;

/// The largest value an integer attribute may take; keeps shape arithmetic far
/// from overflow.
pub const MAX_ATTR: u64 = (1 << 31) - 1;

/// Zero padding of a convolution, in time steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// As PyTorch's `padding="same"` (stride 1 only): total `dilation*(kernel-1)`
    /// zeros, `total/2` on the left and the rest on the right, so an even
    /// kernel puts the extra zero on the right (k=8 pads 3 left, 4 right).
    Same,
    Explicit {
        left: usize,
        right: usize,
    },
}

impl Padding {
    /// `(left, right)` zeros for a kernel span of `dilation * (kernel - 1) + 1`.
    pub fn amounts(self, kernel: usize, dilation: usize) -> (usize, usize) {
        match self {
            Padding::Same => {
                let total = dilation * (kernel - 1);
                (total / 2, total - total / 2)
            }
            Padding::Explicit { left, right } => (left, right),
        }
    }
}

/// `conv1d(%x) {out_channels, kernel, stride = 1, padding = 0, dilation = 1, groups = 1, bias = true}`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conv1d {
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
    pub dilation: usize,
    pub groups: usize,
    pub bias: bool,
    pub quant: LayerQuant,
}

/// Per-layer quantization of a MAC layer (conv1d, linear). Absent bit widths
/// take the `--quant` defaults when `insert-fake-quant` runs; `w_bits` set on
/// the op makes its weights fake-quantized with a power-of-two exponent
/// (parameter `w_log2t`, one per output channel with `w_per_channel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LayerQuant {
    pub w_bits: Option<usize>,
    pub w_per_channel: bool,
    /// `int` (integers times `2^e`), `pot` (0 or `±2^k` times `2^e`: a
    /// multiplier becomes a shifter) or `apot` (0, `±2^k` or
    /// `±(2^k + 2^(k-1))`: two shifts and an add); see
    /// [`WeightFormat`](crate::quant::WeightFormat). Absent takes `--quant`'s.
    pub w_format: Option<&'static str>,
    /// Bits of the activation that ends this layer (after batch norm / ReLU).
    pub a_bits: Option<usize>,
    /// Width of the signed accumulator in the integer program (the type of
    /// `int_conv1d`/`int_linear`); absent means 32 (`potc lower --acc-bits`).
    pub acc_bits: Option<usize>,
    /// How an integer layer's weights are applied, as `potc lower --target`
    /// chose: `shift_add` (each weight a signed sum of shifts: no
    /// multiplier); absent means multiply (or shift and add, with the
    /// shift formats `pot` and `apot`).
    /// Not on float layers.
    pub datapath: Option<&'static str>,
}

/// The datapaths `datapath` names.
pub const DATAPATHS: &[&str] = &["multiply", "shift_add"];

impl LayerQuant {
    fn visit(&mut self, v: &mut dyn AttrVisitor) {
        v.opt_uint("w_bits", &mut self.w_bits);
        v.boolean("w_per_channel", &mut self.w_per_channel, false);
        v.ident("w_format", &mut self.w_format, WeightFormat::NAMES);
        v.opt_uint("a_bits", &mut self.a_bits);
        v.opt_uint("acc_bits", &mut self.acc_bits);
        v.ident("datapath", &mut self.datapath, DATAPATHS);
    }

    fn check(&self) -> Result<(), AttrError> {
        quantizer_bits("w_bits", self.w_bits)?;
        quantizer_bits("a_bits", self.a_bits)?;
        if self.acc_bits.is_some_and(|b| !(2..=32).contains(&b)) {
            return bad("acc_bits", "`acc_bits` must lie in 2..=32");
        }
        let (format, max) = (self.format(), self.format().max_bits());
        if self.w_bits.is_some_and(|b| b > max) {
            return bad("w_format", format!("`{format}` weights take 2..={max} bits"));
        }
        Ok(())
    }

    /// The weight format; absent is `int`.
    pub fn format(&self) -> WeightFormat {
        self.w_format.and_then(WeightFormat::from_name).unwrap_or_default()
    }

    /// The width of an integer layer's weights: `w_bits`, else the widest
    /// of its format.
    pub fn weight_bits(&self) -> usize {
        self.w_bits.unwrap_or(self.format().max_bits())
    }

    /// The largest weight magnitude of an integer layer, of its format at
    /// `weight_bits()`; `None` past `2^30` (widths the verifier refuses).
    pub fn weight_limit(&self) -> Option<i64> {
        let bits = u32::try_from(self.weight_bits()).ok().filter(|b| (2..=31).contains(b))?;
        self.format().top(bits)
    }

    /// The accumulator type of the integer layer.
    pub fn acc_elem(&self) -> super::types::Elem {
        super::types::Elem::Int { signed: true, bits: self.acc_bits.unwrap_or(32) as u8 }
    }
}

/// `datapath` belongs to integer layers, where `potc lower --target` sets it.
fn float_datapath(q: &LayerQuant) -> Result<(), AttrError> {
    if q.datapath.is_some() {
        return bad("datapath", "`datapath` is chosen by `potc lower --target`, on integer layers");
    }
    Ok(())
}

/// The output quantizer's width of an op that is a layer end without weights
/// (`add`, `global_avg_pool`): absent takes `--quant`'s `a_bits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ActBits {
    pub a_bits: Option<usize>,
}

impl ActBits {
    fn visit(&mut self, v: &mut dyn AttrVisitor) {
        v.opt_uint("a_bits", &mut self.a_bits);
    }

    fn check(&self) -> Result<(), AttrError> {
        quantizer_bits("a_bits", self.a_bits)
    }
}

/// Every quantizer width an attribute can set lies in 2..=16 (spec section 1).
fn quantizer_bits(attr: &'static str, bits: Option<usize>) -> Result<(), AttrError> {
    if bits.is_some_and(|b| !(2..=16).contains(&b)) {
        return bad(attr, format!("`{attr}` must lie in 2..=16"));
    }
    Ok(())
}

/// `fake_quant(%x) {bits, signed = true, narrow = false}`: `q(x) * 2^e`
/// (spec section 1), the exponent from the op's parameter `log2t`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FakeQuant {
    pub bits: usize,
    pub signed: bool,
    pub narrow: bool,
}

/// `batch_norm(%x) {eps = 1e-5, momentum = 0.1}` with PyTorch's conventions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchNorm {
    pub eps: F64,
    pub momentum: F64,
}

/// `max_pool1d` / `avg_pool1d` `{kernel, stride = kernel, padding = 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pool1d {
    pub kernel: usize,
    /// `None` means "equal to the kernel", as in PyTorch.
    pub stride: Option<usize>,
    pub padding: usize,
}

impl Pool1d {
    pub fn stride(&self) -> usize {
        self.stride.unwrap_or(self.kernel)
    }
}

/// `linear(%x) {out_features, bias = true}`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Linear {
    pub out_features: usize,
    pub bias: bool,
    pub quant: LayerQuant,
    /// Set by `insert-fake-quant` after global pooling: the layer computes
    /// `(W / input_divisor) x + b`, the `1/L` of an average folded into the
    /// weights before they are quantized (spec section 4).
    pub input_divisor: Option<usize>,
}

/// `dropout(%x) {p = 0.5}`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dropout {
    pub p: F64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// A model input, declared in the signature. Type: as declared.
    Input,
    /// 1-D convolution. `f32[C, L] -> f32[out_channels, L']` with
    /// `L' = (L + pad_l + pad_r - dilation*(kernel-1) - 1) / stride + 1`;
    /// `C` and `out_channels` divisible by `groups`.
    /// Params: `w: [out_channels, C/groups, kernel]`, `b: [out_channels]` if `bias`.
    Conv1d(Conv1d),
    /// Batch normalisation over channels. `f32[C, L] -> f32[C, L]` (or `[C]`).
    /// Params: `gamma`, `beta`, `mean`, `var`, each `[C]`.
    BatchNorm(BatchNorm),
    /// `max(x, 0)`, elementwise. Any element type; type unchanged.
    Relu,
    /// Elementwise sum of two values of the same type (residual connections).
    /// `a_bits` sets the width of its output quantizer (`insert-fake-quant`).
    Add(ActBits),
    /// Max over windows, padding with -inf. `[C, L] -> [C, L']` with
    /// `L' = (L + 2*padding - kernel) / stride + 1`. Any element type.
    MaxPool1d(Pool1d),
    /// Mean over windows, zero padding counted. `f32[C, L] -> f32[C, L']` as max pooling.
    AvgPool1d(Pool1d),
    /// Mean over time. `f32[C, L] -> f32[C]`. `a_bits` sets the width of the
    /// quantizer after the `global_sum_pool` it becomes (`insert-fake-quant`).
    GlobalAvgPool(ActBits),
    /// `[C, L] -> [C*L]`, channel-major; `[F] -> [F]`. Any element type.
    Flatten,
    /// Fully connected. `f32[F] -> f32[out_features]`.
    /// Params: `w: [out_features, F]`, `b: [out_features]` if `bias`.
    Linear(Linear),
    /// Zeroes elements with probability `p` in training; identity at inference.
    Dropout(Dropout),
    /// Fake quantization, elementwise: `f32 -> f32` of the same shape.
    /// Params: `log2t: [1]`, the learned threshold giving the exponent.
    FakeQuant(FakeQuant),
    /// Sum over time, `f32[C, L] -> f32[C]`: global average pooling on the
    /// integer path, its `1/L` folded into the next linear layer. On integers
    /// `iN[C, L] -> i32[C]`, exact (the sum saturates at the i32 range, which
    /// lowering proves is never reached).
    GlobalSumPool,
    /// Integer convolution (spec section 4), attributes as `conv1d`'s.
    /// `iN/uN[C, L] -> i32[out_channels, L']`: `acc = sum(x * w) + b`, exact
    /// (lowering proves `|acc|` fits the accumulator; beyond it the result
    /// saturates, never wraps). Params: `w: [out_channels, C/groups, kernel]`
    /// (integers of `w_bits`, narrow signed; `±2^k` with `w_format = pot`),
    /// `b: [out_channels]` (i32) if `bias`.
    IntConv1d(Conv1d),
    /// Integer fully connected layer: `iN/uN[F] -> i32[out_features]`, as
    /// `int_conv1d`. Params: `w: [out_features, F]`, `b: [out_features]`.
    IntLinear(Linear),
    /// Requantization `{bits, signed = true, narrow = false}`: per channel `c`
    /// with `k = shift[c]`, `shift_round(x, k) = (x + 2^(k-1)) >> k`
    /// (arithmetic shift, i.e. round half up) for `k > 0` and `x << -k` for
    /// `k <= 0`, then clamped to the range of `bits`/`signed` (saturating).
    /// `iN[C, L] -> iB/uB[C, L]` (or `[C]`). Params: `shift: [C]` or `[1]`.
    Requant(FakeQuant),
    /// `shl(%x)`: per channel `c`, `x << shift[c]` (`shift >= 0`), widened to
    /// i32 and saturating there: aligns values to a common exponent before a
    /// residual add and at the output. `iN[C, L] -> i32[C, L]` (or `[C]`).
    /// Params: `shift: [C]` or `[1]`.
    Shl,
}

const NO_PAD: Padding = Padding::Explicit { left: 0, right: 0 };

impl Op {
    /// The names of the ops that text may use, in documentation order.
    pub const TEXT_NAMES: &'static [&'static str] = &[
        "conv1d",
        "batch_norm",
        "relu",
        "add",
        "max_pool1d",
        "avg_pool1d",
        "global_avg_pool",
        "flatten",
        "linear",
        "dropout",
        "fake_quant",
        "global_sum_pool",
        "int_conv1d",
        "int_linear",
        "requant",
        "shl",
    ];

    /// The op named `name` with every attribute at its default (required ones
    /// zero, to be filled by a reader).
    pub fn with_defaults(name: &str) -> Option<Op> {
        let pool = Pool1d { kernel: 0, stride: None, padding: 0 };
        Some(match name {
            "conv1d" => Op::Conv1d(Conv1d {
                out_channels: 0,
                kernel: 0,
                stride: 1,
                padding: NO_PAD,
                dilation: 1,
                groups: 1,
                bias: true,
                quant: LayerQuant::default(),
            }),
            "batch_norm" => {
                Op::BatchNorm(BatchNorm { eps: OrderedFloat(1e-5), momentum: OrderedFloat(0.1) })
            }
            "relu" => Op::Relu,
            "add" => Op::Add(ActBits::default()),
            "max_pool1d" => Op::MaxPool1d(pool),
            "avg_pool1d" => Op::AvgPool1d(pool),
            "global_avg_pool" => Op::GlobalAvgPool(ActBits::default()),
            "flatten" => Op::Flatten,
            "linear" => Op::Linear(Linear {
                out_features: 0,
                bias: true,
                quant: LayerQuant::default(),
                input_divisor: None,
            }),
            "fake_quant" => Op::FakeQuant(FakeQuant { bits: 0, signed: true, narrow: false }),
            "global_sum_pool" => Op::GlobalSumPool,
            "int_conv1d" => match Op::with_defaults("conv1d")? {
                Op::Conv1d(c) => Op::IntConv1d(c),
                _ => return None,
            },
            "int_linear" => match Op::with_defaults("linear")? {
                Op::Linear(l) => Op::IntLinear(l),
                _ => return None,
            },
            "requant" => Op::Requant(FakeQuant { bits: 0, signed: true, narrow: false }),
            "shl" => Op::Shl,
            "dropout" => Op::Dropout(Dropout { p: OrderedFloat(0.5) }),
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv1d(_) => "conv1d",
            Op::BatchNorm(_) => "batch_norm",
            Op::Relu => "relu",
            Op::Add(_) => "add",
            Op::MaxPool1d(_) => "max_pool1d",
            Op::AvgPool1d(_) => "avg_pool1d",
            Op::GlobalAvgPool(_) => "global_avg_pool",
            Op::Flatten => "flatten",
            Op::Linear(_) => "linear",
            Op::Dropout(_) => "dropout",
            Op::FakeQuant(_) => "fake_quant",
            Op::GlobalSumPool => "global_sum_pool",
            Op::IntConv1d(_) => "int_conv1d",
            Op::IntLinear(_) => "int_linear",
            Op::Requant(_) => "requant",
            Op::Shl => "shl",
        }
    }

    /// The weight quantization of an integer MAC layer (`int_conv1d`,
    /// `int_linear`); `None` for every other op.
    pub fn int_mac_quant(&self) -> Option<&LayerQuant> {
        match self {
            Op::IntConv1d(c) => Some(&c.quant),
            Op::IntLinear(l) => Some(&l.quant),
            _ => None,
        }
    }

    /// Whether the op is defined on integers (an integer program may hold
    /// only these): its row of the [`meaning`](Op::meaning) table.
    pub fn is_integer(&self) -> bool {
        self.meaning().integer
    }

    /// How many operands the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input => 0,
            Op::Add(_) => 2,
            _ => 1,
        }
    }

    /// Visits every attribute with its default, in the canonical order.
    pub fn visit_attrs(&mut self, v: &mut dyn AttrVisitor) {
        match self {
            Op::Conv1d(c) | Op::IntConv1d(c) => {
                v.uint("out_channels", &mut c.out_channels, None);
                v.uint("kernel", &mut c.kernel, None);
                v.uint("stride", &mut c.stride, Some(1));
                v.padding("padding", &mut c.padding, NO_PAD);
                v.uint("dilation", &mut c.dilation, Some(1));
                v.uint("groups", &mut c.groups, Some(1));
                v.boolean("bias", &mut c.bias, true);
                c.quant.visit(v);
            }
            Op::BatchNorm(b) => {
                v.float("eps", &mut b.eps, 1e-5);
                v.float("momentum", &mut b.momentum, 0.1);
            }
            Op::MaxPool1d(p) | Op::AvgPool1d(p) => {
                v.uint("kernel", &mut p.kernel, None);
                v.opt_uint("stride", &mut p.stride);
                v.uint("padding", &mut p.padding, Some(0));
            }
            Op::Linear(l) | Op::IntLinear(l) => {
                v.uint("out_features", &mut l.out_features, None);
                v.boolean("bias", &mut l.bias, true);
                l.quant.visit(v);
                v.opt_uint("input_divisor", &mut l.input_divisor);
            }
            Op::Dropout(d) => v.float("p", &mut d.p, 0.5),
            Op::Add(q) | Op::GlobalAvgPool(q) => q.visit(v),
            Op::FakeQuant(q) | Op::Requant(q) => {
                v.uint("bits", &mut q.bits, None);
                v.boolean("signed", &mut q.signed, true);
                v.boolean("narrow", &mut q.narrow, false);
            }
            Op::Input | Op::Relu | Op::GlobalSumPool | Op::Shl | Op::Flatten => {}
        }
    }

    /// The names of the op's attributes, in canonical order.
    pub fn attr_names(&self) -> Vec<&'static str> {
        let mut names = Names(vec![]);
        self.clone().visit_attrs(&mut names);
        names.0
    }

    /// Range checks on the attributes alone (shapes are checked by `infer`).
    /// Integer attributes stay within [`MAX_ATTR`] so that every valid graph
    /// prints to text that parses back.
    pub fn check_attrs(&self) -> Result<(), AttrError> {
        let mut limits = Limits(Ok(()));
        self.clone().visit_attrs(&mut limits);
        limits.0?;
        match self {
            Op::Conv1d(c) | Op::IntConv1d(c) => {
                positive("out_channels", c.out_channels)?;
                positive("kernel", c.kernel)?;
                positive("stride", c.stride)?;
                positive("dilation", c.dilation)?;
                positive("groups", c.groups)?;
                if c.out_channels % c.groups != 0 {
                    return bad(
                        "groups",
                        format!(
                            "out_channels = {} is not divisible by groups = {}",
                            c.out_channels, c.groups
                        ),
                    );
                }
                if c.padding == Padding::Same && c.stride != 1 {
                    return bad("padding", "`padding = same` needs stride 1 (as in PyTorch)");
                }
                if matches!(self, Op::Conv1d(_)) {
                    float_datapath(&c.quant)?;
                }
                c.quant.check()
            }
            Op::BatchNorm(b) => {
                if !(b.eps.0 > 0.0 && b.eps.0.is_finite()) {
                    return bad("eps", "`eps` must be a positive number");
                }
                if !(0.0..=1.0).contains(&b.momentum.0) {
                    return bad("momentum", "`momentum` must lie in [0, 1]");
                }
                Ok(())
            }
            Op::MaxPool1d(p) | Op::AvgPool1d(p) => {
                positive("kernel", p.kernel)?;
                if let Some(s) = p.stride {
                    positive("stride", s)?;
                }
                if p.padding > p.kernel / 2 {
                    return bad(
                        "padding",
                        format!(
                            "`padding` = {} exceeds half the kernel ({})",
                            p.padding,
                            p.kernel / 2
                        ),
                    );
                }
                Ok(())
            }
            Op::Linear(l) | Op::IntLinear(l) => {
                positive("out_features", l.out_features)?;
                if let Some(d) = l.input_divisor {
                    positive("input_divisor", d)?;
                }
                if matches!(self, Op::Linear(_)) {
                    float_datapath(&l.quant)?;
                }
                l.quant.check()
            }
            Op::Dropout(d) => {
                if !(0.0..1.0).contains(&d.p.0) {
                    return bad("p", "dropout `p` must lie in [0, 1)");
                }
                Ok(())
            }
            Op::FakeQuant(q) | Op::Requant(q) => {
                if !(2..=16).contains(&q.bits) {
                    return bad("bits", "`bits` must lie in 2..=16");
                }
                if q.narrow && !q.signed {
                    return bad("narrow", "`narrow` applies to signed quantizers only");
                }
                Ok(())
            }
            Op::Add(q) | Op::GlobalAvgPool(q) => q.check(),
            Op::Input | Op::Relu | Op::GlobalSumPool | Op::Shl | Op::Flatten => Ok(()),
        }
    }

    /// The parameter tensors the op owns, given its (already checked) operand types.
    pub fn params(&self, operands: &[&crate::ir::Type]) -> Vec<ParamSpec> {
        let p = |slot, shape, trainable, init| ParamSpec { slot, shape, trainable, init };
        let channels = operands.first().map_or(0, |t| t.shape[0]);
        let weight_and_bias =
            |out: usize, fan_in: usize, w_shape: Vec<usize>, bias: bool, q: &LayerQuant| {
                let init = Init::Uniform { fan_in };
                let mut v = vec![p("w", w_shape, true, init)];
                if bias {
                    v.push(p("b", vec![out], true, init));
                }
                if q.w_bits.is_some() {
                    let n = if q.w_per_channel { out } else { 1 };
                    v.push(p("w_log2t", vec![n], true, Init::Calibrate));
                }
                v
            };
        match self {
            Op::Conv1d(c) => {
                let cg = channels / c.groups;
                weight_and_bias(
                    c.out_channels,
                    cg * c.kernel,
                    vec![c.out_channels, cg, c.kernel],
                    c.bias,
                    &c.quant,
                )
            }
            Op::Linear(l) => {
                let shape = vec![l.out_features, channels];
                weight_and_bias(l.out_features, channels, shape, l.bias, &l.quant)
            }
            Op::BatchNorm(_) => vec![
                p("gamma", vec![channels], true, Init::Ones),
                p("beta", vec![channels], true, Init::Zeros),
                p("mean", vec![channels], false, Init::Zeros),
                p("var", vec![channels], false, Init::Ones),
            ],
            Op::FakeQuant(_) => vec![p("log2t", vec![1], true, Init::Calibrate)],
            // Integer programs are not trained: their tensors are fixed.
            Op::IntConv1d(c) => {
                let mut v = vec![p(
                    "w",
                    vec![c.out_channels, channels / c.groups, c.kernel],
                    false,
                    Init::Zeros,
                )];
                if c.bias {
                    v.push(p("b", vec![c.out_channels], false, Init::Zeros));
                }
                v
            }
            Op::IntLinear(l) => {
                let mut v = vec![p("w", vec![l.out_features, channels], false, Init::Zeros)];
                if l.bias {
                    v.push(p("b", vec![l.out_features], false, Init::Zeros));
                }
                v
            }
            Op::Requant(_) | Op::Shl => vec![p("shift", vec![channels], false, Init::Zeros)],
            _ => vec![],
        }
    }
}
