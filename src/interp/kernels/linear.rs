//! Fully connected layer on features laid out `x[f][n]`:
//! `y[O, N] = W[O, F] x X[F, N] + b`.

use super::conv1d::sum;
use crate::interp::gemm::{matmul, Mat};
use rayon::prelude::*;

pub fn forward(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    f: usize,
    o: usize,
    n: usize,
    threads: usize,
) -> Vec<f32> {
    let mut y = vec![0.0f32; o * n];
    if let Some(b) = b {
        y.par_chunks_mut(n).zip(b).for_each(|(row, &bias)| row.fill(bias));
    }
    matmul(&mut y, Mat::rows(w, o, f), Mat::rows(x, f, n), b.is_some(), threads);
    y
}

/// `(dx, dw, db)`; `dx` only when `want_dx`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    (f, o, n): (usize, usize, usize),
    has_bias: bool,
    want_dx: bool,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>) {
    let mut dw = vec![0.0f32; o * f];
    matmul(&mut dw, Mat::rows(dy, o, n), Mat::rows(x, f, n).t(), false, threads);
    let db = has_bias.then(|| dy.chunks(n).map(sum).collect());
    let dx = want_dx.then(|| {
        let mut dx = vec![0.0f32; f * n];
        matmul(&mut dx, Mat::rows(w, o, f).t(), Mat::rows(dy, o, n), false, threads);
        dx
    });
    (dx, dw, db)
}
