//! Strided f32 matrices and the naive f64 GEMM reference `act(alpha*A*B + beta*C + bias)`
//! shared by the GEMM tests (`gemm.rs`, `gemm_bf16.rs`; `gemm_int8.rs` uses the matrices).

use clip_kernels::{Activation, MatMut, MatRef};

/// An owned strided matrix: `(i, j)` at `i*rs + j*cs`, padding filled with `pad`.
pub struct Mat {
    pub data: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

#[derive(Clone, Copy, Debug)]
pub enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major with 3 spare elements per row.
    Padded,
}
pub const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::ColMajor, Layout::Padded];

impl Mat {
    pub fn new(
        rows: usize,
        cols: usize,
        layout: Layout,
        pad: f32,
        mut fill: impl FnMut() -> f32,
    ) -> Mat {
        let (rs, cs, len) = match layout {
            Layout::RowMajor => (cols, 1, rows * cols),
            Layout::ColMajor => (1, rows, rows * cols),
            Layout::Padded => (cols + 3, 1, rows * (cols + 3)),
        };
        let mut data = vec![pad; len];
        for i in 0..rows {
            for j in 0..cols {
                data[i * rs + j * cs] = fill();
            }
        }
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
    pub fn view(&self) -> MatRef<'_> {
        MatRef::strided(&self.data, self.rows, self.cols, self.rs, self.cs)
    }
    pub fn view_mut(&mut self) -> MatMut<'_> {
        MatMut::strided(&mut self.data, self.rows, self.cols, self.rs, self.cs)
    }
}

pub fn act_f64(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::QuickGelu => super::quick_gelu_f64(x),
        Activation::Gelu => super::gelu_f64(x),
    }
}

/// The f64 reference `act(alpha*A*B + beta*C + bias)` over the given (already rounded) A and
/// B, and the bound scale `|alpha| sum |a||b| + |beta c|`.
pub fn reference(
    alpha: f32,
    a: &Mat,
    b: &Mat,
    beta: f32,
    c: &Mat,
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let mut out = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    // A by rows and B by columns, contiguous, summed in 8 lanes: f64 sums of f32 products
    // (exact for the integer inputs of the exact tests, within 1e-15 relative otherwise),
    // without a strided walk down B for every element.
    let ar: Vec<f64> = (0..m * k)
        .map(|x| a.get(x / k.max(1), x % k.max(1)) as f64)
        .collect();
    let bc: Vec<f64> = (0..n * k)
        .map(|x| b.get(x % k.max(1), x / k.max(1)) as f64)
        .collect();
    for i in 0..m {
        for j in 0..n {
            let (mut sv, mut av) = ([0.0f64; 8], [0.0f64; 8]);
            let (ra, cb) = (&ar[i * k..(i + 1) * k], &bc[j * k..(j + 1) * k]);
            let (xs, ys) = (ra.chunks_exact(8), cb.chunks_exact(8));
            for (x, y) in xs.remainder().iter().zip(ys.remainder()) {
                sv[0] += x * y;
                av[0] += (x * y).abs();
            }
            for (x, y) in xs.zip(ys) {
                for l in 0..8 {
                    let t = x[l] * y[l];
                    sv[l] += t;
                    av[l] += t.abs();
                }
            }
            let (s, sa): (f64, f64) = (sv.iter().sum(), av.iter().sum());
            let mut v = alpha as f64 * s;
            let mut g = alpha.abs() as f64 * sa;
            if beta != 0.0 {
                v += beta as f64 * c.get(i, j) as f64;
                g += (beta as f64 * c.get(i, j) as f64).abs();
            }
            if let Some(bias) = bias {
                v += bias[j] as f64;
            }
            out[i * n + j] = act_f64(act, v);
            mag[i * n + j] = g;
        }
    }
    (out, mag)
}
