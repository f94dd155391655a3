//! The op functions of the model file: the C body of each integer op, as
//! the integer interpreter (`crate::backend::interp`) defines it. Each
//! function reads its operands (`x`, or `a` and `b`) and writes `y`.

use std::fmt::Write;

use super::ctype::{i32_lit, i64_lit, CType};
use super::model::Emitter;
use crate::backend::interp::taps;
use crate::ir::op::{Conv1d, Linear, Op, Pool1d};
use crate::ir::{NodeId, Type};
use crate::quant::{QuantSpec, WeightFormat};

impl Emitter<'_> {
    /// Emits the function of op `id`.
    pub(super) fn op(
        &mut self,
        fname: &str,
        line: &str,
        id: NodeId,
        cname: &str,
    ) -> Result<(), String> {
        let g = self.graph();
        let node = g.node(id);
        let operands = g.operands(id);
        let arg_ty: Vec<Type> = operands.iter().map(|&o| g.node(o).ty.clone()).collect();
        let out = node.ty.clone();
        let out_c = CType::of(out.elem)?;
        let arg_c: Vec<CType> =
            arg_ty.iter().map(|t| CType::of(t.elem)).collect::<Result<_, _>>()?;
        let (c, l) = (arg_ty[0].shape[0], arg_ty[0].shape.get(1).copied().unwrap_or(1));
        let n = out.elements();
        let (olo, ohi) = out.elem.range().ok_or("an integer program holds no f32 values")?;
        let mut params = vec![];
        for (i, t) in arg_c.iter().enumerate() {
            let x =
                if arg_c.len() == 1 { "x".to_string() } else { ["a", "b"][i.min(1)].to_string() };
            params.push(format!("const {} *restrict {x}", t.name()));
        }
        // The output buffer never holds an operand (see `take_buffer`).
        params.push(format!("{} *restrict y", out_c.name()));
        let node_name = node.name.clone();
        let op = node.op.clone();
        let body = match &op {
            Op::IntConv1d(conv) => {
                self.conv(&node_name, cname, line, conv, (c, l), out.shape[1], arg_c[0], out_c)?
            }
            Op::IntLinear(lin) => self.linear(&node_name, cname, line, lin, c, arg_c[0], out_c)?,
            Op::Requant(q) => {
                let table = self.shift_table(cname, line, self.tensor(&node_name, "shift")?);
                let spec = QuantSpec { bits: q.bits as u32, signed: q.signed, narrow: q.narrow };
                let (lo, hi) = (i64_lit(spec.qmin().max(olo)), i64_lit(spec.qmax().min(ohi)));
                self.helpers.shift_round = true;
                self.helpers.clamp = true;
                let expr = format!("potc_clamp(potc_shift_round(x[i], k), {lo}, {hi})");
                per_channel(c, l, &table, &expr, out_c)
            }
            Op::Shl => {
                let shift = self.tensor(&node_name, "shift")?;
                if let Some(k) = shift.iter().find(|&&k| k < 0) {
                    return Err(format!("`%{node_name}`: shl by {k}; shifts are 0..=62"));
                }
                let table = self.shift_table(cname, line, shift);
                self.helpers.shl_sat = true;
                self.helpers.clamp = true;
                let (lo, hi) = (i64_lit(olo), i64_lit(ohi));
                let expr = format!("potc_clamp(potc_shl_sat(x[i], k), {lo}, {hi})");
                per_channel(c, l, &table, &expr, out_c)
            }
            Op::Relu if arg_c[0].range().0 >= 0 => elementwise(n, "x[i]", out_c),
            Op::Relu => elementwise(n, "x[i] > 0 ? x[i] : 0", out_c),
            Op::Flatten => elementwise(n, "x[i]", out_c),
            Op::Add(_) => {
                self.helpers.clamp = true;
                let (lo, hi) = (i64_lit(olo), i64_lit(ohi));
                elementwise(n, &format!("potc_clamp((int64_t)a[i] + b[i], {lo}, {hi})"), out_c)
            }
            Op::GlobalSumPool => {
                self.helpers.clamp = true;
                format!(
                    "    for (int32_t c = 0; c < {c}; c++) {{
        const {xt} *xr = x + c * {l};
        int64_t s = 0;
        for (int32_t t = 0; t < {l}; t++) {{
            s += xr[t];
        }}
        y[c] = ({yt})potc_clamp(s, {lo}, {hi});
    }}
",
                    xt = arg_c[0].name(),
                    yt = out_c.name(),
                    lo = i64_lit(olo),
                    hi = i64_lit(ohi)
                )
            }
            Op::MaxPool1d(pool) => max_pool(pool, (c, l), out.shape[1], arg_c[0], out_c)?,
            op => {
                return Err(format!(
                    "`%{node_name}`: `{}` is not an integer op \
                     (the C export takes programs written by `potc lower`)",
                    op.name()
                ))
            }
        };
        let _ = writeln!(
            self.funcs,
            "/* {line} */\nstatic void {fname}({})\n{{\n{body}}}\n",
            params.join(", ")
        );
        Ok(())
    }

    /// `int_conv1d`: each output row accumulates `w * x` over the taps that
    /// read the input (the others read zero padding), tap ranges from tables.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        node: &str,
        cname: &str,
        line: &str,
        op: &Conv1d,
        (c, l): (usize, usize),
        lo: usize,
        x_c: CType,
        y_c: CType,
    ) -> Result<String, String> {
        let (k, stride, dil, groups) = (op.kernel, op.stride, op.dilation, op.groups);
        let (cg, og) = (c / groups, op.out_channels / groups);
        let w = self.tensor(node, "w")?;
        let b = if op.bias { Some(self.tensor(node, "b")?) } else { None };
        let format = op.quant.format();
        let w = weight_codes(format, w);
        let w_c = self.values_table(&format!("w_{cname}"), &format!("{line}: w"), &w, cg * k);
        if let Some(b) = b {
            let v: Vec<i64> = b.iter().map(|&x| i64::from(x)).collect();
            self.table(CType::I32, &format!("b_{cname}"), &format!("{line}: b"), &v, 16);
        }
        let acc_c = acc_ctype(x_c);
        let (left, _) = op.padding.amounts(k, dil);
        let (mut t0, mut t1, mut off) = (vec![], vec![], vec![]);
        for j in 0..k {
            let o = (j * dil) as isize - left as isize;
            let (a, z) = taps(o, stride, l, lo);
            t0.push(a.to_string());
            t1.push(z.to_string());
            off.push(i32_lit(o as i64));
        }
        // Accumulate in the output row when it has the accumulator's type,
        // else in a scratch row stored after.
        let (scratch, acc_decl, store) = if acc_c == y_c {
            let decl = format!("            {} *acc = y + co * {lo};\n", acc_c.name());
            (String::new(), decl, String::new())
        } else {
            let scratch = format!("    static {} acc[{lo}];\n", acc_c.name());
            let store = format!(
                "            for (int32_t t = 0; t < {lo}; t++) {{
                y[co * {lo} + t] = ({})acc[t];
            }}\n",
                y_c.name()
            );
            (scratch, String::new(), store)
        };
        let init = match &b {
            Some(_) => format!("b_{cname}[co]"),
            None => "0".into(),
        };
        let (block, single) = if stride == 1 {
            ("t + u".to_string(), "t".to_string())
        } else {
            (format!("(t + u) * {stride}"), format!("t * {stride}"))
        };
        Ok(format!(
            "    /* Kernel tap j reads x[{single} + off[j]] for the output steps t0[j] <= t < t1[j];
       the other steps read zero padding. The accumulator cannot overflow: `potc lower`
       proved the worst case fits the accumulator type, and the export checked it again. */
    static const int32_t t0[{k}] = {{{t0}}};
    static const int32_t t1[{k}] = {{{t1}}};
    static const int32_t off[{k}] = {{{off}}};
{scratch}    for (int32_t g = 0; g < {groups}; g++) {{
        for (int32_t o = 0; o < {og}; o++) {{
            const int32_t co = g * {og} + o;
            const {wt} *w = w_{cname} + co * {row};
{acc_decl}            for (int32_t t = 0; t < {lo}; t++) {{
                acc[t] = {init};
            }}
            for (int32_t ci = 0; ci < {cg}; ci++) {{
                const {xt} *xr = x + (g * {cg} + ci) * {l};
                for (int32_t j = 0; j < {k}; j++) {{
                    const {at} wv = w[ci * {k} + j];
                    const int32_t n = t1[j] - t0[j];
                    if (wv == 0 || n <= 0) {{
                        continue;
                    }}
{weight}                    {at} *restrict as = acc + t0[j];
                    const {xt} *restrict xs = xr + (t0[j] * {stride} + off[j]);
                    int32_t t = 0;
                    /* Blocks of 16 steps (a constant trip count, which compilers vectorize at -O2). */
                    for (; t + 16 <= n; t += 16) {{
                        for (int32_t u = 0; u < 16; u++) {{
                            as[t + u] += {term_block};
                        }}
                    }}
                    for (; t < n; t++) {{
                        as[t] += {term_single};
                    }}
                }}
            }}
{store}        }}
    }}
",
            t0 = t0.join(", "),
            t1 = t1.join(", "),
            off = off.join(", "),
            weight = decode(format, "wv", acc_c, 20),
            term_block = term(format, acc_c, &format!("xs[{block}]")),
            term_single = term(format, acc_c, &format!("xs[{single}]")),
            wt = w_c.name(),
            row = cg * k,
            xt = x_c.name(),
            at = acc_c.name(),
        ))
    }

    /// `int_linear`: one dot product per output.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        node: &str,
        cname: &str,
        line: &str,
        op: &Linear,
        f: usize,
        x_c: CType,
        y_c: CType,
    ) -> Result<String, String> {
        let w = self.tensor(node, "w")?;
        let format = op.quant.format();
        let w = weight_codes(format, w);
        let w_c = self.values_table(&format!("w_{cname}"), &format!("{line}: w"), &w, f);
        let init = if op.bias {
            let b: Vec<i64> = self.tensor(node, "b")?.iter().map(|&x| i64::from(x)).collect();
            self.table(CType::I32, &format!("b_{cname}"), &format!("{line}: b"), &b, 16);
            format!("b_{cname}[r]")
        } else {
            "0".into()
        };
        let acc_c = acc_ctype(x_c);
        Ok(format!(
            "    /* The accumulator cannot overflow: `potc lower` proved the worst case fits. */
    for (int32_t r = 0; r < {rows}; r++) {{
        const {wt} *w = w_{cname} + r * {f};
        {at} acc = {init};
        for (int32_t i = 0; i < {f}; i++) {{
{body}        }}
        y[r] = ({yt})acc;
    }}
",
            body = if format.shifts() {
                format!(
                    "            const {at} wv = w[i];\n            if (wv == 0) {{\n                continue;\n            }}\n{}            acc += {};\n",
                    decode(format, "wv", acc_c, 12),
                    term(format, acc_c, "x[i]"),
                    at = acc_c.name()
                )
            } else {
                format!("            acc += ({})w[i] * x[i];\n", acc_c.name())
            },
            rows = op.out_features,
            wt = w_c.name(),
            at = acc_c.name(),
            yt = y_c.name(),
        ))
    }
}

/// The weights as the C tables hold them: integers, or the codes of the
/// shift formats.
fn weight_codes(format: WeightFormat, w: &[i32]) -> Vec<i32> {
    match format.shifts() {
        true => w.iter().map(|&v| format.code(v)).collect(),
        false => w.to_vec(),
    }
}

/// Declarations of a shift-format code `code` (nonzero) decoded into its
/// shifts and the mask `neg` (all ones for a negative weight), indented by
/// `indent` spaces; nothing for integer weights.
fn decode(format: WeightFormat, code: &str, acc: CType, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let (at, ut) = (acc.name(), unsigned(acc));
    let abs = format!("({code} > 0 ? {code} : -{code})");
    let shifts = match format {
        WeightFormat::Int => return String::new(),
        WeightFormat::Pot => format!(
            "{pad}/* A power-of-two weight: code ±(k + 1) is ±2^k, a shift, not a multiplier. */\n\
             {pad}const int32_t sh = {abs} - 1;\n"
        ),
        WeightFormat::Apot => format!(
            "{pad}/* An additive power-of-two weight: code ±c is ±(2^k + 2^(k-1)) for odd c > 1,\n\
             {pad}   else ±2^k, with k = c >> 1: two shifts and an add, not a multiplier. */\n\
             {pad}const int32_t a = {abs};\n\
             {pad}const int32_t sh = a >> 1;\n\
             {pad}const int32_t sh2 = sh > 0 ? sh - 1 : 0;\n\
             {pad}const {ut} two = (a & 1) && a > 1 ? ~({ut})0 : 0;\n"
        ),
    };
    format!("{shifts}{pad}const {at} neg = {code} > 0 ? 0 : -1;\n")
}

/// One term `w * x` of a MAC layer in C: a product, or with shift-format
/// weights `x << sh` (plus `x << sh2` where `two` says so), negated by the
/// mask `neg` (`(v ^ neg) - neg`). Shifts and the add are done on the
/// unsigned type (a left shift of a negative signed value is undefined in
/// C99) and converted back, which C99 leaves to the implementation and every
/// two's-complement compiler does modulo 2^N; the true value fits, as `potc
/// lower` proved for the accumulator.
fn term(format: WeightFormat, acc: CType, x: &str) -> String {
    let (at, ut) = (acc.name(), unsigned(acc));
    let shifted = |sh: &str| format!("({ut})({at}){x} << {sh}");
    let sum = match format {
        WeightFormat::Int => return format!("wv * {x}"),
        WeightFormat::Pot => shifted("sh"),
        WeightFormat::Apot => format!("({}) + (({}) & two)", shifted("sh"), shifted("sh2")),
    };
    format!("(({at})({sum}) ^ neg) - neg")
}

/// The unsigned C type of the accumulator's width.
fn unsigned(acc: CType) -> &'static str {
    if acc == CType::I64 {
        "uint64_t"
    } else {
        "uint32_t"
    }
}

/// The accumulator's C type: `int32_t` (the accumulator types are at most
/// 32 bits and `potc lower` proved the sums fit), `int64_t` when the
/// operand is `u32` (so the products are not computed unsigned).
fn acc_ctype(x_c: CType) -> CType {
    if x_c == CType::U32 {
        CType::I64
    } else {
        CType::I32
    }
}

/// `y[i] = expr` for every element.
fn elementwise(n: u64, expr: &str, y_c: CType) -> String {
    format!(
        "    for (int32_t i = 0; i < {n}; i++) {{\n        y[i] = ({})({expr});\n    }}\n",
        y_c.name()
    )
}

/// `y[i] = expr` with `k` the channel's entry of `table`.
fn per_channel(c: usize, l: usize, table: &str, expr: &str, y_c: CType) -> String {
    format!(
        "    for (int32_t c = 0; c < {c}; c++) {{
        const int k = {table}[c];
        for (int32_t i = c * {l}; i < (c + 1) * {l}; i++) {{
            y[i] = ({yt})({expr});
        }}
    }}
",
        yt = y_c.name()
    )
}

/// `max_pool1d`: the maximum over each window's steps inside the input
/// (padding never wins); every window holds one.
fn max_pool(
    p: &Pool1d,
    (c, l): (usize, usize),
    lo: usize,
    x_c: CType,
    y_c: CType,
) -> Result<String, String> {
    let (k, stride, pad) = (p.kernel, p.stride(), p.padding);
    // Each window [o*stride - pad, o*stride - pad + k) must overlap the input.
    let last = (lo.max(1) - 1) * stride;
    if pad >= k || last >= l + pad {
        return Err(format!(
            "max_pool1d with kernel {k}, stride {stride}, padding {pad} has an empty window"
        ));
    }
    Ok(format!(
        "    for (int32_t c = 0; c < {c}; c++) {{
        const {xt} *xr = x + c * {l};
        for (int32_t o = 0; o < {lo}; o++) {{
            int32_t j0 = o * {stride} - {pad};
            int32_t j1 = j0 + {k};
            {xt} m;
            if (j0 < 0) {{
                j0 = 0;
            }}
            if (j1 > {l}) {{
                j1 = {l};
            }}
            m = xr[j0];
            for (int32_t j = j0 + 1; j < j1; j++) {{
                if (xr[j] > m) {{
                    m = xr[j];
                }}
            }}
            y[c * {lo} + o] = ({yt})m;
        }}
    }}
",
        xt = x_c.name(),
        yt = y_c.name()
    ))
}
