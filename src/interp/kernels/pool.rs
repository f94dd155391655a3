//! Pooling on `x[c][n][l]` rows: max and average over windows (PyTorch's
//! semantics: max pads with -inf, average counts zero padding), and the mean
//! over time. Rows are independent, so they run in parallel.

use crate::ir::op::Pool1d;
use rayon::prelude::*;

/// Window geometry of one pooling op.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub lin: usize,
    pub lout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Window {
    pub fn new(p: &Pool1d, lin: usize, lout: usize) -> Self {
        Window { lin, lout, kernel: p.kernel, stride: p.stride(), pad: p.padding }
    }
    /// The in-range input positions of output `o`.
    fn taps(&self, o: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.kernel).filter_map(move |k| {
            (o * self.stride + k).checked_sub(self.pad).filter(|&p| p < self.lin)
        })
    }
}

/// Max pooling; also returns the position each output took (first max wins).
pub fn max_forward(w: &Window, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let rows = x.len() / w.lin;
    let mut y = vec![0.0f32; rows * w.lout];
    let mut arg = vec![0u32; rows * w.lout];
    y.par_chunks_mut(w.lout).zip(arg.par_chunks_mut(w.lout)).enumerate().for_each(
        |(r, (yr, ar))| {
            let xr = &x[r * w.lin..][..w.lin];
            for o in 0..w.lout {
                // Padding is -inf: only in-range taps compete; the first maximum wins.
                let at = w.taps(o).reduce(|b, p| if xr[p] > xr[b] { p } else { b });
                let at = at.expect("padding <= kernel/2 leaves a tap in every window");
                (yr[o], ar[o]) = (xr[at], at as u32);
            }
        },
    );
    (y, arg)
}

pub fn max_backward(w: &Window, arg: &[u32], dy: &[f32]) -> Vec<f32> {
    let rows = dy.len() / w.lout;
    let mut dx = vec![0.0f32; rows * w.lin];
    dx.par_chunks_mut(w.lin).enumerate().for_each(|(r, dr)| {
        for o in 0..w.lout {
            dr[arg[r * w.lout + o] as usize] += dy[r * w.lout + o];
        }
    });
    dx
}

pub fn avg_forward(w: &Window, x: &[f32]) -> Vec<f32> {
    let rows = x.len() / w.lin;
    let mut y = vec![0.0f32; rows * w.lout];
    let inv = 1.0 / w.kernel as f32;
    y.par_chunks_mut(w.lout).enumerate().for_each(|(r, yr)| {
        let xr = &x[r * w.lin..][..w.lin];
        for (o, out) in yr.iter_mut().enumerate() {
            *out = w.taps(o).map(|p| xr[p]).sum::<f32>() * inv;
        }
    });
    y
}

pub fn avg_backward(w: &Window, dy: &[f32]) -> Vec<f32> {
    let rows = dy.len() / w.lout;
    let mut dx = vec![0.0f32; rows * w.lin];
    let inv = 1.0 / w.kernel as f32;
    dx.par_chunks_mut(w.lin).enumerate().for_each(|(r, dr)| {
        for o in 0..w.lout {
            let g = dy[r * w.lout + o] * inv;
            for p in w.taps(o) {
                dr[p] += g;
            }
        }
    });
    dx
}

/// Mean over each row of length `l`: `[C, N, L] -> [C, N]`.
pub fn global_avg_forward(x: &[f32], l: usize) -> Vec<f32> {
    x.par_chunks(l).map(|r| (r.iter().map(|&v| v as f64).sum::<f64>() / l as f64) as f32).collect()
}

/// Sum over each row of length `l`, in f64: exact for sums of quantized
/// values (the integer path's global pooling).
pub fn global_sum_forward(x: &[f32], l: usize) -> Vec<f32> {
    x.par_chunks(l).map(|r| r.iter().map(|&v| v as f64).sum::<f64>() as f32).collect()
}

pub fn global_avg_backward(dy: &[f32], l: usize) -> Vec<f32> {
    let inv = 1.0 / l as f32;
    dy.iter().flat_map(|&g| std::iter::repeat_n(g * inv, l)).collect()
}
