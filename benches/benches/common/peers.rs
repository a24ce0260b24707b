//! The GEMM contenders: our kernels (per ISA, pre-packed or not) and the `faer`, `gemm` and
//! `matrixmultiply` crates, all computing `C = A * W^T` with A `[M, K]` row-major and the
//! weight W `[N, K]` row-major, as a Linear layer does.

use clip_kernels::{sgemm, sgemm_prepacked, Epilogue, Isa, MatMut, MatRef, PackedB};
use std::num::NonZeroUsize;

/// One contender, ready to run on prepared operands.
pub enum Contender {
    Ours { isa: Isa, packed: Option<PackedB> },
    Faer,
    Gemm,
    MatrixMultiply,
}

impl Contender {
    pub fn name(&self) -> String {
        match self {
            Contender::Ours { isa, packed } => {
                format!(
                    "ours-{isa}{}",
                    if packed.is_some() { "-prepacked" } else { "" }
                )
            }
            Contender::Faer => "faer".into(),
            Contender::Gemm => "gemm".into(),
            Contender::MatrixMultiply => "matrixmultiply".into(),
        }
    }

    /// C <- A * W^T on `threads` threads (inside the caller's pool for ours and faer/gemm).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        a: &[f32],
        w: &[f32],
        c: &mut [f32],
        m: usize,
        k: usize,
        n: usize,
        threads: usize,
    ) {
        let nz = NonZeroUsize::new(threads.max(1)).unwrap();
        match self {
            Contender::Ours { isa, packed } => {
                let av = MatRef::row_major(a, m, k);
                let cm = MatMut::row_major(c, m, n);
                match packed {
                    Some(p) => sgemm_prepacked(1.0, av, p, 0.0, cm, Epilogue::none()),
                    None => sgemm(
                        *isa,
                        1.0,
                        av,
                        MatRef::row_major(w, n, k).t(),
                        0.0,
                        cm,
                        Epilogue::none(),
                    ),
                }
            }
            Contender::Faer => {
                let lhs = faer::MatRef::from_row_major_slice(a, m, k);
                let rhs = faer::MatRef::from_column_major_slice(w, k, n);
                let dst = faer::MatMut::from_row_major_slice_mut(c, m, n);
                let par = if threads > 1 {
                    faer::Par::Rayon(nz)
                } else {
                    faer::Par::Seq
                };
                faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, par);
            }
            Contender::Gemm => {
                let par = if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                };
                // SAFETY: the pointers cover m*k, n*k and m*n floats with the strides given
                // (A row-major, W^T column-major, C row-major), and C does not alias A or W.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        par,
                    );
                }
            }
            Contender::MatrixMultiply => {
                // SAFETY: as above; matrixmultiply reads A (m x k), B (k x n) and writes C.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        w.as_ptr(),
                        1,
                        k as isize,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }
        }
    }
}

/// Every contender for one shape: each available ISA with and without pre-packing, then the peers.
pub fn contenders(w: &[f32], k: usize, n: usize, pool: &rayon::ThreadPool) -> Vec<Contender> {
    let mut out = Vec::new();
    for isa in Isa::available() {
        if isa == Isa::Scalar {
            continue;
        }
        out.push(Contender::Ours { isa, packed: None });
        let packed = pool.install(|| PackedB::new(isa, MatRef::row_major(w, n, k).t()));
        out.push(Contender::Ours {
            isa,
            packed: Some(packed),
        });
    }
    out.extend([Contender::Faer, Contender::Gemm, Contender::MatrixMultiply]);
    out
}
