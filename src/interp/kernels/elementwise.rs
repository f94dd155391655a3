//! ReLU, residual add, dropout and flatten: memory-bound element maps.

use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

pub fn relu_forward(x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    y.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
    y
}

/// `dx = dy` where the output was positive, else 0.
pub fn relu_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = dy.to_vec();
    dx.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(d, y)| {
        for (d, &y) in d.iter_mut().zip(y) {
            if y <= 0.0 {
                *d = 0.0;
            }
        }
    });
    dx
}

pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = a.to_vec();
    y.par_chunks_mut(CHUNK).zip(b.par_chunks(CHUNK)).for_each(|(y, b)| {
        y.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
    });
    y
}

/// Inverted dropout: kept elements are scaled by `1/(1-p)`; `keep[i]` is
/// drawn by the caller from its seeded generator.
pub fn dropout_forward(x: &[f32], keep: &[bool], p: f32) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p);
    x.iter().zip(keep).map(|(&v, &k)| if k { v * scale } else { 0.0 }).collect()
}

pub fn dropout_backward(dy: &[f32], keep: &[bool], p: f32) -> Vec<f32> {
    dropout_forward(dy, keep, p)
}

/// `[C, N, L] -> [C*L, N]`: feature `c*L + l` of sample `n`.
pub fn flatten_forward<T: Copy + Default>(x: &[T], c: usize, n: usize, l: usize) -> Vec<T> {
    permute(x, c, n, l, false)
}

/// The inverse of [`flatten_forward`], for gradients.
pub fn flatten_backward<T: Copy + Default>(dy: &[T], c: usize, n: usize, l: usize) -> Vec<T> {
    permute(dy, c, n, l, true)
}

/// Moves element `(c, n, l)` of `[C, N, L]` to `(c*L + l, n)` of `[C*L, N]`,
/// or back with `inverse`.
fn permute<T: Copy + Default>(src: &[T], c: usize, n: usize, l: usize, inverse: bool) -> Vec<T> {
    let mut dst = vec![T::default(); src.len()];
    for ci in 0..c {
        for ni in 0..n {
            for li in 0..l {
                let (seq, flat) = ((ci * n + ni) * l + li, (ci * l + li) * n + ni);
                if inverse {
                    dst[seq] = src[flat];
                } else {
                    dst[flat] = src[seq];
                }
            }
        }
    }
    dst
}
