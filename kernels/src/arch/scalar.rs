//! The scalar reference micro-kernel, `sgemm_ukernel_scalar_4x8`: plain Rust, the oracle the
//! SIMD kernels are tested against. Multiply and add are separate roundings (no FMA).

use crate::gemm::MicroKernel;
use crate::Isa;

/// The scalar 4x8 micro-kernel.
pub(crate) struct Scalar;

const MR: usize = 4;
const NR: usize = 8;

impl MicroKernel for Scalar {
    const ISA: Isa = Isa::Scalar;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 64;
    const NC: usize = 1024;

    unsafe fn ukernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: the caller guarantees kc*MR floats at `a` and kc*NR at `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, kc * MR),
                std::slice::from_raw_parts(b, kc * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for r in 0..MR {
                for j in 0..NR {
                    acc[r][j] += ak[r] * bk[j];
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (j, &v) in acc_r.iter().enumerate() {
                // SAFETY: the caller guarantees an MR x NR tile at `c` with row stride rs_c,
                // and NR floats at a non-null `bias`.
                unsafe {
                    let cp = c.add(r * rs_c + j);
                    let mut v = alpha * v;
                    if beta != 0.0 {
                        v += beta * *cp;
                    }
                    if !bias.is_null() {
                        v += *bias.add(j);
                    }
                    *cp = v;
                }
            }
        }
    }
}
