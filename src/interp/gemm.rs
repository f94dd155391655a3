//! The one wrapper around the `gemm` crate's raw-pointer API: matrices are
//! slices with explicit strides, and every index the product can touch is
//! checked against the slice before the unsafe call.

/// The element types the GEMM runs on.
pub trait Scalar: Copy + 'static {
    const ZERO: Self;
    const ONE: Self;
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// f64 serves the exact fake-quant evaluation (spec section 6).
impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a, T = f32> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < len
    }
}

/// `dst = a * b` (or `dst += a * b` with `accumulate`), `dst` row-major
/// `a.rows x b.cols`, using `threads` threads of the current rayon pool.
pub fn matmul<T: Scalar>(
    dst: &mut [T],
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    assert!(dst.len() >= m * n, "destination too small");
    assert!(a.fits(a.data.len()) && b.fits(b.data.len()), "strides exceed the data");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(T::ZERO);
        }
        return;
    }
    let parallelism =
        if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: every element the product reads is within `a.data` / `b.data`
    // (checked by `fits`), and it writes `dst[i * n + j]` for i < m, j < n,
    // within `dst` (checked above). The slices do not alias: `dst` is a
    // unique borrow.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_transposes_match_a_naive_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut want = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        let mut got = vec![1.0f32; m * n];
        matmul(&mut got, Mat::rows(&a, m, k), Mat::rows(&b, k, n), false, 1);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5);
        }
        // (b^T a^T)^T == a b, via views.
        let mut t = vec![0.0f32; n * m];
        matmul(&mut t, Mat::rows(&b, k, n).t(), Mat::rows(&a, m, k).t(), false, 2);
        for i in 0..m {
            for j in 0..n {
                assert!((t[j * m + i] - want[i * n + j]).abs() < 1e-5);
            }
        }
        matmul(&mut got, Mat::rows(&a, m, k), Mat::rows(&b, k, n), true, 1);
        assert!((got[0] - 2.0 * want[0]).abs() < 1e-5);
    }
}
