//! The portable micro-kernel, `sgemm_ukernel_portable_4x16`, over `wide::f32x8`: SIMD on any
//! target `wide` supports, chosen when neither AVX2 nor AVX-512 is available.
//!
//! Registers: 4 rows x 2 vectors of 8 = 8 accumulators; per k, two B vectors and four
//! broadcasts of A.

use crate::gemm::MicroKernel;
use crate::Isa;
use wide::f32x8;

/// The portable 4x16 micro-kernel.
pub(crate) struct Portable;

const MR: usize = 4;
const NR: usize = 16;

#[inline(always)]
fn load(s: &[f32]) -> f32x8 {
    let mut v = [0.0f32; 8];
    v.copy_from_slice(&s[..8]);
    f32x8::from(v)
}

impl MicroKernel for Portable {
    const ISA: Isa = Isa::Portable;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 2048;

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
        let mut acc = [[f32x8::ZERO; 2]; MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            let b0 = load(&bk[0..8]);
            let b1 = load(&bk[8..16]);
            for r in 0..MR {
                let ar = f32x8::splat(ak[r]);
                acc[r][0] = ar.mul_add(b0, acc[r][0]);
                acc[r][1] = ar.mul_add(b1, acc[r][1]);
            }
        }
        let va = f32x8::splat(alpha);
        let vb = f32x8::splat(beta);
        for (r, acc_r) in acc.iter().enumerate() {
            for (h, &acc_v) in acc_r.iter().enumerate() {
                // SAFETY: the caller guarantees an MR x NR tile at `c` with row stride rs_c
                // (readable when beta != 0), and NR floats at a non-null `bias`.
                unsafe {
                    let cp = std::slice::from_raw_parts_mut(c.add(r * rs_c + 8 * h), 8);
                    let mut v = va * acc_v;
                    if beta != 0.0 {
                        v = vb.mul_add(load(cp), v);
                    }
                    if !bias.is_null() {
                        v += load(std::slice::from_raw_parts(bias.add(8 * h), 8));
                    }
                    cp.copy_from_slice(&v.to_array());
                }
            }
        }
    }
}
