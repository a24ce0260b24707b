//! The AVX2+FMA micro-kernels: `sgemm_ukernel_avx2_6x16` (f32) and its bf16 conversion twin.
//!
//! ```text
//!            B: b0 = ymm(k, 0..8)    b1 = ymm(k, 8..16)
//!   A: a[0]  acc[0][0]               acc[0][1]
//!      ..    ..                      ..
//!      a[5]  acc[5][0]               acc[5][1]
//! ```
//! 12 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm registers; per k, 12 FMAs
//! against 2 vector loads and 6 broadcasts.
//!
//! Block sizes: KC = 256 keeps a 256 x 16 B micro-panel (16 KiB) in a 32 KiB L1; MC = 240 keeps
//! the 240 x 256 A block (240 KiB) in L2; NC = 3072 bounds the per-call packed B.

use crate::gemm::MicroKernel;
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX2+FMA 6x16 micro-kernel.
pub(crate) struct Avx2;

const MR: usize = 6;
const NR: usize = 16;

impl MicroKernel for Avx2 {
    type A = f32;
    type B = f32;
    type Wide = Self;
    const ISA: Isa = Isa::Avx2;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 240;
    const NC: usize = 3072;

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
        // SAFETY: forwarded contract; the trait requires a CPU with AVX2 and FMA.
        unsafe { sgemm_ukernel_avx2_6x16(kc, a, b, c, rs_c, alpha, beta, bias) }
    }
}

/// # Safety
/// See [`MicroKernel::ukernel`]; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_ukernel_avx2_6x16(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels and tile.
    unsafe {
        let mut acc0 = [_mm256_setzero_ps(); MR];
        let mut acc1 = [_mm256_setzero_ps(); MR];
        for _ in 0..kc {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for r in 0..MR {
                let ar = _mm256_broadcast_ss(&*a.add(r));
                acc0[r] = _mm256_fmadd_ps(ar, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(ar, b1, acc1[r]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        store_tile(&acc0, &acc1, c, rs_c, alpha, beta, bias);
    }
}

/// `C <- alpha*acc (+ beta*C by one FMA) (+ bias)` for a 6 x 16 tile.
///
/// # Safety
/// As [`MicroKernel::ukernel`] for an `MR x NR` tile; the CPU supports AVX2 and FMA.
#[inline(always)]
unsafe fn store_tile(
    acc0: &[__m256; MR],
    acc1: &[__m256; MR],
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    // SAFETY: every access stays within the caller-guaranteed tile and bias.
    unsafe {
        let va = _mm256_set1_ps(alpha);
        let vb = _mm256_set1_ps(beta);
        for r in 0..MR {
            let cr = c.add(r * rs_c);
            let mut v0 = _mm256_mul_ps(va, acc0[r]);
            let mut v1 = _mm256_mul_ps(va, acc1[r]);
            if beta != 0.0 {
                v0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v0);
                v1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr.add(8)), v1);
            }
            if !bias.is_null() {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias.add(8)));
            }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr.add(8), v1);
        }
    }
}

/// The AVX2+FMA bf16 conversion micro-kernel, `bf16gemm_ukernel_avx2_6x16`: A f32 (`kc x 6`,
/// `kc` even), B bf16 pairs (`kc/2 x 16`). Per pair: two ymm loads of 8 pairs, widened to the
/// even-k vectors (`vpslld 16`) and the odd-k vectors (`vpand 0xFFFF0000`), each used by 12
/// FMAs in k order, so the result is bitwise [`Avx2`]'s on the bf16-rounded B.
pub(crate) struct Avx2Bf16;

impl MicroKernel for Avx2Bf16 {
    type A = f32;
    type B = u32;
    type Wide = Avx2;
    const WIDEN: bool = true;

    unsafe fn widen_b(src: &[u32], dst: &mut [f32], kc: usize) {
        // SAFETY: the trait requires a CPU with AVX2.
        unsafe { widen_panel_avx2(src, dst, kc / 2) }
    }
    const ISA: Isa = Isa::Avx2;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 240;
    const NC: usize = 3072;

    unsafe fn ukernel(
        kc: usize,
        a: *const f32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: forwarded contract; the trait requires a CPU with AVX2 and FMA.
        unsafe { bf16gemm_ukernel_avx2_6x16(kc, a, b, c, rs_c, alpha, beta, bias) }
    }
}

/// Widens `pairs` rows of 16 bf16 pairs into `2*pairs` rows of 16 f32 (the f32 kernel's
/// packed B micro-panel): row `2p` from the low halves, row `2p+1` from the high halves.
///
/// Panics unless `src` holds `pairs*16` pairs and `dst` `pairs*32` floats.
#[target_feature(enable = "avx2")]
fn widen_panel_avx2(src: &[u32], dst: &mut [f32], pairs: usize) {
    assert!(src.len() >= pairs * NR && dst.len() >= pairs * 2 * NR);
    let (mut src, mut dst) = (src.as_ptr(), dst.as_mut_ptr());
    let hi = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
    // SAFETY: each step reads 16 pairs and writes 32 floats, inside the lengths asserted above.
    unsafe {
        for _ in 0..pairs {
            let x0 = _mm256_loadu_si256(src.cast());
            let x1 = _mm256_loadu_si256(src.add(8).cast());
            _mm256_storeu_ps(dst, _mm256_castsi256_ps(_mm256_slli_epi32::<16>(x0)));
            _mm256_storeu_ps(dst.add(8), _mm256_castsi256_ps(_mm256_slli_epi32::<16>(x1)));
            _mm256_storeu_ps(dst.add(16), _mm256_castsi256_ps(_mm256_and_si256(x0, hi)));
            _mm256_storeu_ps(dst.add(24), _mm256_castsi256_ps(_mm256_and_si256(x1, hi)));
            src = src.add(NR);
            dst = dst.add(2 * NR);
        }
    }
}

/// # Safety
/// See [`MicroKernel::ukernel`] for [`Avx2Bf16`]; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn bf16gemm_ukernel_avx2_6x16(
    kc: usize,
    mut a: *const f32,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels and tile.
    unsafe {
        let hi = _mm256_set1_epi32(0xFFFF_0000u32 as i32);
        let mut acc0 = [_mm256_setzero_ps(); MR];
        let mut acc1 = [_mm256_setzero_ps(); MR];
        for _ in 0..kc / 2 {
            let x0 = _mm256_loadu_si256(b.cast());
            let x1 = _mm256_loadu_si256(b.add(8).cast());
            let e0 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(x0));
            let e1 = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(x1));
            for r in 0..MR {
                let ar = _mm256_broadcast_ss(&*a.add(r));
                acc0[r] = _mm256_fmadd_ps(ar, e0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(ar, e1, acc1[r]);
            }
            let o0 = _mm256_castsi256_ps(_mm256_and_si256(x0, hi));
            let o1 = _mm256_castsi256_ps(_mm256_and_si256(x1, hi));
            for r in 0..MR {
                let ar = _mm256_broadcast_ss(&*a.add(MR + r));
                acc0[r] = _mm256_fmadd_ps(ar, o0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(ar, o1, acc1[r]);
            }
            a = a.add(2 * MR);
            b = b.add(NR);
        }
        store_tile(&acc0, &acc1, c, rs_c, alpha, beta, bias);
    }
}
