//! conv1d forward and backward as im2col + GEMM, per group. Activations are
//! channel-major over the batch: `x[c][n][l]`, so one GEMM covers the whole
//! batch: `y_g[Co/g, N*L'] = W_g[Co/g, Cg*K] x cols_g[Cg*K, N*L']`.

use crate::interp::gemm::{matmul, Mat};
use crate::ir::op::Conv1d;
use rayon::prelude::*;

/// The sizes of one conv1d application to a batch.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeom {
    pub cin: usize,
    pub cout: usize,
    pub n: usize,
    pub lin: usize,
    pub lout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_left: usize,
    pub groups: usize,
}

impl ConvGeom {
    pub fn new(c: &Conv1d, cin: usize, n: usize, lin: usize, lout: usize) -> Self {
        let (pad_left, _) = c.padding.amounts(c.kernel, c.dilation);
        ConvGeom {
            cin,
            cout: c.out_channels,
            n,
            lin,
            lout,
            kernel: c.kernel,
            stride: c.stride,
            dilation: c.dilation,
            pad_left,
            groups: c.groups,
        }
    }
    fn cg(&self) -> usize {
        self.cin / self.groups
    }
    fn cog(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of one group's column matrix.
    fn rows(&self) -> usize {
        self.cg() * self.kernel
    }
    fn cols(&self) -> usize {
        self.n * self.lout
    }
    /// The outputs `lo` whose tap `k` reads inside the input (not padding):
    /// `lo_begin..lo_end`, reading from `lo * stride + k * dilation - pad_left`.
    #[inline]
    fn valid(&self, k: usize) -> (usize, usize, isize) {
        let off = (k * self.dilation) as isize - self.pad_left as isize;
        let s = self.stride as isize;
        // smallest lo with lo*s + off >= 0, and first lo with lo*s + off >= lin
        let begin = if off >= 0 { 0 } else { ((-off + s - 1) / s) as usize };
        let end = ((self.lin as isize - off + s - 1) / s).clamp(0, self.lout as isize) as usize;
        (begin.min(end), end, off)
    }
}

/// Builds the column matrix of every group: `cols[(ci*K + k), (n*L' + lo)]`
/// for input channel `ci` (groups stacked), zero where the tap is in padding.
pub fn im2col(g: &ConvGeom, x: &[f32]) -> Vec<f32> {
    let cols = g.cols();
    let mut out = vec![0.0f32; g.cin * g.kernel * cols];
    out.par_chunks_mut(cols).enumerate().for_each(|(row, dst)| {
        let (ci, k) = (row / g.kernel, row % g.kernel);
        let (begin, end, off) = g.valid(k);
        if begin == end {
            return; // this tap reads only padding
        }
        for n in 0..g.n {
            let src = &x[(ci * g.n + n) * g.lin..][..g.lin];
            let dst = &mut dst[n * g.lout..][..g.lout][begin..end];
            let first = (begin as isize * g.stride as isize + off) as usize;
            if g.stride == 1 {
                dst.copy_from_slice(&src[first..first + dst.len()]);
            } else {
                for (d, &v) in dst.iter_mut().zip(src[first..].iter().step_by(g.stride)) {
                    *d = v;
                }
            }
        }
    });
    out
}

/// `y[co][n][lo] = b[co] + sum W[co, ci, k] x[ci][n][pos]`, returning `(y, cols)`;
/// the columns are kept for the backward pass.
pub fn forward(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    threads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let cols = im2col(g, x);
    let (rows, ncol, cog) = (g.rows(), g.cols(), g.cog());
    let mut y = vec![0.0f32; g.cout * ncol];
    if let Some(b) = b {
        y.par_chunks_mut(ncol).zip(b).for_each(|(row, &bias)| row.fill(bias));
    }
    for grp in 0..g.groups {
        let wg = Mat::rows(&w[grp * cog * rows..][..cog * rows], cog, rows);
        let cg = Mat::rows(&cols[grp * rows * ncol..][..rows * ncol], rows, ncol);
        matmul(&mut y[grp * cog * ncol..][..cog * ncol], wg, cg, b.is_some(), threads);
    }
    (y, cols)
}

/// Gradients: `(dx, dw, db)`; `dx` only when `want_dx` (not for the data).
pub fn backward(
    g: &ConvGeom,
    cols: &[f32],
    w: &[f32],
    dy: &[f32],
    has_bias: bool,
    want_dx: bool,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>) {
    let (rows, ncol, cog) = (g.rows(), g.cols(), g.cog());
    let mut dw = vec![0.0f32; g.cout * rows];
    for grp in 0..g.groups {
        let dyg = Mat::rows(&dy[grp * cog * ncol..][..cog * ncol], cog, ncol);
        let cg = Mat::rows(&cols[grp * rows * ncol..][..rows * ncol], rows, ncol);
        matmul(&mut dw[grp * cog * rows..][..cog * rows], dyg, cg.t(), false, threads);
    }
    let db = has_bias.then(|| dy.par_chunks(ncol).map(sum).collect());
    let dx = want_dx.then(|| {
        let mut dcols = vec![0.0f32; g.cin * g.kernel * ncol];
        for grp in 0..g.groups {
            let wg = Mat::rows(&w[grp * cog * rows..][..cog * rows], cog, rows);
            let dyg = Mat::rows(&dy[grp * cog * ncol..][..cog * ncol], cog, ncol);
            matmul(&mut dcols[grp * rows * ncol..][..rows * ncol], wg.t(), dyg, false, threads);
        }
        col2im(g, &dcols)
    });
    (dx, dw, db)
}

/// Scatters column gradients back onto the input positions they came from.
fn col2im(g: &ConvGeom, dcols: &[f32]) -> Vec<f32> {
    let ncol = g.cols();
    let mut dx = vec![0.0f32; g.cin * g.n * g.lin];
    dx.par_chunks_mut(g.n * g.lin).enumerate().for_each(|(ci, dxc)| {
        for k in 0..g.kernel {
            let (begin, end, off) = g.valid(k);
            if begin == end {
                continue;
            }
            let src = &dcols[(ci * g.kernel + k) * ncol..][..ncol];
            for n in 0..g.n {
                let first = (begin as isize * g.stride as isize + off) as usize;
                let d = &mut dxc[n * g.lin..][..g.lin][first..];
                let s = &src[n * g.lout..][begin..end];
                for (d, &v) in d.iter_mut().step_by(g.stride).zip(s) {
                    *d += v;
                }
            }
        }
    });
    dx
}

/// A sum in f64, sequential: the same bits for any thread count.
pub fn sum(v: &[f32]) -> f32 {
    v.iter().map(|&x| x as f64).sum::<f64>() as f32
}
