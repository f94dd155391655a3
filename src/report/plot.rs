//! Pictures of a quantized network (SVG via plotters): per MAC layer, the
//! float weights over the quantization grid, and the training curves.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::source::Source;
use super::Row;
use crate::quant::WeightFormat;

/// Bins per integer step in the float histogram: shows how weights sit
/// between levels, not only which level they round to.
const BINS_PER_LEVEL: f64 = 4.0;
/// At most this many bins (power-of-two grids span thousands of steps).
const MAX_BINS: f64 = 400.0;
/// The histogram spans at most this many times the grid's extent.
const MAX_REACH: f64 = 64.0;

/// One layer's weights: the floats in units of the integer step (`w / 2^e`,
/// the number the quantizer rounds), and the integers they became.
pub struct LayerWeights<'a> {
    pub name: &'a str,
    pub format: &'a str,
    pub bits: u32,
    pub grid: Vec<f64>,
    pub ints: &'a [i32],
}

impl LayerWeights<'_> {
    /// The integer levels the format can represent.
    fn levels(&self) -> Vec<i64> {
        // Checked programs hold at most these widths; the bound keeps the
        // level list (and the SVG) small whatever a caller passes.
        let format = WeightFormat::from_name(self.format).unwrap_or_default();
        let bits = self.bits.clamp(2, format.max_bits() as u32);
        let mags: Vec<i64> =
            (1..=WeightFormat::levels(bits)).filter_map(|i| format.magnitude(i)).collect();
        let mut v: Vec<i64> = mags.iter().map(|m| -m).chain([0]).chain(mags.clone()).collect();
        v.sort_unstable();
        v
    }
}

/// Draws `DIR/<layer>.weights.svg` for every layer, returning the paths.
pub fn weight_histograms(layers: &[LayerWeights], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = vec![];
    for l in layers {
        let path = dir.join(format!("{}.weights.svg", l.name));
        histogram(l, &path).map_err(|e| format!("{}: cannot draw: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn histogram(l: &LayerWeights, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let levels = l.levels();
    let (lo, hi) = (levels[0] as f64, levels[levels.len() - 1] as f64);
    // Room on both sides to show what was clipped, up to MAX_REACH times
    // the grid: weights beyond (even infinitely far) fall in the end bins.
    let extent = hi.max(-lo);
    let reach =
        l.grid.iter().fold(extent, |m, v| m.max(v.abs())).min(MAX_REACH * extent).ceil() + 1.0;
    let step = (1.0 / BINS_PER_LEVEL).max(2.0 * reach / MAX_BINS);
    let bins = (2.0 * reach / step).ceil() as usize;
    // `as usize` saturates: below the range to bin 0, above it to the last.
    let bin_of = |v: f64| (((v + reach) / step) as usize).min(bins - 1);
    let mut counts = vec![0u32; bins];
    l.grid.iter().filter(|v| !v.is_nan()).for_each(|&v| counts[bin_of(v)] += 1);
    let mut used = vec![0u32; levels.len()];
    for &w in l.ints {
        if let Ok(i) = levels.binary_search(&i64::from(w)) {
            used[i] += 1;
        }
    }
    // Beyond these a weight saturates at the end level (uniform grids round
    // to the nearest level first; a shift-format grid has nothing above).
    let edge = if l.format == "int" { hi + 0.5 } else { hi };
    let clipped = l.grid.iter().filter(|&&v| v.abs() > edge).count();
    let unused = used.iter().filter(|&&c| c == 0).count();

    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(560);
    let top = f64::from(*counts.iter().max().unwrap_or(&1)) * 1.1;
    let caption = format!(
        "%{}: float weights / 2^e ({}{}; {} of {} clipped)",
        l.name,
        l.format,
        l.bits,
        clipped,
        l.grid.len()
    );
    let mut c = ChartBuilder::on(&left)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-reach..reach, 0.0..top.max(1.0))?;
    c.configure_mesh()
        .x_desc("integer steps")
        .y_desc("weights")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    c.draw_series(counts.iter().enumerate().map(|(i, &n)| {
        let x0 = -reach + i as f64 * step;
        Rectangle::new([(x0, 0.0), (x0 + step, f64::from(n))], BLUE.mix(0.6).filled())
    }))?;
    // The representable levels, and the clipping edges in red.
    c.draw_series(
        levels
            .iter()
            .map(|&v| PathElement::new(vec![(v as f64, 0.0), (v as f64, top)], BLACK.mix(0.15))),
    )?;
    for edge in [-edge, edge] {
        c.draw_series([PathElement::new(vec![(edge, 0.0), (edge, top)], RED.stroke_width(2))])?;
    }

    let caption = format!("levels used ({unused} of {} unused)", levels.len());
    let n = levels.len() as f64;
    let ytop = f64::from(*used.iter().max().unwrap_or(&1)) * 1.1;
    let mut u = ChartBuilder::on(&right)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, 0.0..ytop.max(1.0))?;
    u.configure_mesh()
        .x_desc("level")
        .x_labels(levels.len().min(16))
        .x_label_formatter(&|x| {
            let i = (*x as usize).min(levels.len() - 1);
            levels[i].to_string()
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    u.draw_series(used.iter().enumerate().map(|(i, &k)| {
        let style = if k == 0 { RED.stroke_width(1) } else { GREEN.mix(0.7).filled() };
        let h = if k == 0 { ytop * 0.01 } else { f64::from(k) };
        Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, h)], style)
    }))?;
    root.present()?;
    Ok(())
}

/// The layers of `rows` that have float weights in `source`.
/// An error for a layer whose weight exponents the program does not define.
pub fn layers<'a>(
    rows: &'a [Row],
    source: &Source,
    ints: &'a crate::pass::IntStore,
) -> Result<Vec<LayerWeights<'a>>, String> {
    let mut out = vec![];
    for r in rows {
        let Some(w) = r.weights.as_ref() else { continue };
        let Some((_, float)) = source.weights.get(&format!("{}.w", r.name)) else { continue };
        let Some((_, int)) = ints.get(&format!("{}.w", r.name)) else { continue };
        let e = &w.exponents;
        let rows_n = r.output_shape.first().copied().unwrap_or(1);
        if e.is_empty() || float.len() % e.len() != 0 || (e.len() != 1 && e.len() != rows_n) {
            return Err(format!(
                "cannot plot `%{0}`: its weights' scale is unknown; it needs tensor `{0}.exp` \
                 (one exponent, or one per channel) and a single exponent of its input",
                r.name
            ));
        }
        let per = float.len() / e.len();
        let grid = float
            .iter()
            .enumerate()
            .map(|(i, &v)| f64::from(v) * (-f64::from(e[i / per])).exp2())
            .collect();
        out.push(LayerWeights { name: &r.name, format: w.format, bits: w.bits, grid, ints: int });
    }
    Ok(out)
}
