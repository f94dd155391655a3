//! The report as a text table.

use super::{Report, Row};

/// The table `potc report` prints, with totals.
pub fn render(r: &Report) -> String {
    let t = &r.totals;
    let mut out = format!(
        "model `{}`: {} ops, {} MACs per sample; parameters {} bits of weights + {} bits of \
         biases ({}); largest activation {} bits\n\n",
        r.model,
        r.layers.len(),
        thousands(t.macs),
        thousands(t.weight_memory_bits),
        thousands(t.bias_memory_bits),
        bytes(t.weight_memory_bits + t.bias_memory_bits),
        thousands(t.max_activation_bits),
    );
    let head = [
        "value",
        "op",
        "shape",
        "type",
        "scale",
        "weights",
        "shift",
        "acc need/has",
        "param bits",
        "MACs",
    ];
    let rows: Vec<[String; 10]> = r.layers.iter().map(cells).collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            // Numbers read best right-aligned.
            if i >= 8 {
                s += &format!("{c:>w$}  ");
            } else {
                s += &format!("{c:<w$}  ");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out += &line(&head.map(String::from));
    for row in &rows {
        out += &line(row);
    }
    out += "\nscale: value = integer * 2^e (a range when per channel); weights: format, bits and \
            scale of the integer weights;\nshift: requant's right shift (round half up) or shl's \
            left shift; acc: bits the worst case needs / the accumulator's.\n";
    if let Some(t) = &r.totals.datapath {
        out += &datapaths(r, t);
    }
    out
}

/// `--target asic`: each MAC layer's spatial datapath, then the totals.
fn datapaths(r: &Report, t: &super::Datapath) -> String {
    let line = |name: &str, d: &super::Datapath| {
        format!(
            "  {name:<20} {:>9} multipliers ({}x{} bits), {:>9} adders ({} bits), {:>9} shifters, {} register bits\n",
            thousands(d.multipliers),
            d.multiplier_bits[0],
            d.multiplier_bits[1],
            thousands(d.adders),
            d.adder_bits,
            thousands(d.shifters),
            thousands(d.register_bits)
        )
    };
    let mut out =
        "\ndatapath (asic: one operator per weight, one output step per cycle; a weight 0 \
                   costs nothing, ±2^k is a shift):\n"
            .to_string();
    for row in &r.layers {
        if let Some(d) = &row.datapath {
            out += &line(&format!("%{}", row.name), d);
        }
    }
    out + &line("total", t)
}

fn cells(r: &Row) -> [String; 10] {
    let shape = format!("{:?}", r.output_shape);
    let scale = r.exponents.as_deref().map_or(String::new(), pow2_range);
    let weights = r
        .weights
        .as_ref()
        .map_or(String::new(), |w| format!("{}{} {}", w.format, w.bits, pow2_range(&w.exponents)));
    let shift = r.shifts.as_deref().map_or(String::new(), range);
    let acc = match (r.acc_bits_needed, r.acc_bits) {
        (Some(n), Some(h)) => format!("{n}/{h}"),
        _ => String::new(),
    };
    let params = r.weight_memory_bits + r.bias_memory_bits;
    let num = |v: u64| if v == 0 { String::new() } else { thousands(v) };
    [
        format!("%{}", r.name),
        r.op.to_string(),
        shape,
        r.output_type.clone(),
        scale,
        weights,
        shift,
        acc,
        num(params),
        num(r.macs),
    ]
}

/// `2^e`, or `2^lo..2^hi` over channels.
fn pow2_range(e: &[i32]) -> String {
    let (lo, hi) = (e.iter().min(), e.iter().max());
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo == hi => format!("2^{lo}"),
        (Some(lo), Some(hi)) => format!("2^{lo}..2^{hi}"),
        _ => String::new(),
    }
}

fn range(v: &[i32]) -> String {
    match (v.iter().min(), v.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
        _ => String::new(),
    }
}

/// `39475456` as `39,475,456`.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn bytes(bits: u64) -> String {
    let b = bits.div_ceil(8);
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / f64::from(1 << 10))
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(39475456), "39,475,456");
    }
}
