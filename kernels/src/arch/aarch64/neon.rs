//! The NEON micro-kernel, `sgemm_ukernel_neon_6x16`.
//!
//! ```text
//!            B: b0..b3 = q(k, 0..4) .. q(k, 12..16)
//!   A: a[0]  acc[0][0] acc[0][1] acc[0][2] acc[0][3]
//!      ..    ..
//!      a[5]  acc[5][0] acc[5][1] acc[5][2] acc[5][3]
//! ```
//! 24 accumulators + 4 B vectors + the A values = 30 of 32 q registers; per k, 24 FMAs
//! against 4 vector loads and 6 broadcasts (which LLVM folds into by-element FMAs).
//!
//! Block sizes: KC = 256 keeps a 256 x 16 B micro-panel (16 KiB) in a 64 KiB L1; MC = 240
//! keeps the A block (240 KiB) in L2. NEON is part of the aarch64 baseline, so no run-time
//! detection is needed.
//!
//! Not here: NEON row kernels and a NEON bf16 kernel (the portable ones run instead: see
//! `crate::table`). The type and its sizes are built on every target; the kernel on aarch64.

use crate::gemm::MicroKernel;
use crate::Isa;

/// The NEON 6x16 micro-kernel.
pub(crate) struct Neon;

const MR: usize = 6;
const NR: usize = 16;

impl MicroKernel for Neon {
    type A = f32;
    type B = f32;
    type Wide = Self;
    const ISA: Isa = Isa::Neon;
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
        #[cfg(target_arch = "aarch64")]
        // SAFETY: forwarded contract (NEON is always present on aarch64).
        unsafe {
            sgemm_ukernel_neon_6x16(kc, a, b, c, rs_c, alpha, beta, bias)
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            let _ = (kc, a, b, c, rs_c, alpha, beta, bias);
            unreachable!("the NEON kernel runs on aarch64 only (Isa::Neon is unavailable here)")
        }
    }
}

/// # Safety
/// See [`MicroKernel::ukernel`].
#[cfg(target_arch = "aarch64")]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_ukernel_neon_6x16(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    use core::arch::aarch64::*;
    // SAFETY: every pointer access stays within the caller-guaranteed panels and tile.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
        for _ in 0..kc {
            let bv = [
                vld1q_f32(b),
                vld1q_f32(b.add(4)),
                vld1q_f32(b.add(8)),
                vld1q_f32(b.add(12)),
            ];
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let ar = vdupq_n_f32(*a.add(r));
                for (q, bq) in bv.iter().enumerate() {
                    acc_r[q] = vfmaq_f32(acc_r[q], ar, *bq);
                }
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        let va = vdupq_n_f32(alpha);
        let vb = vdupq_n_f32(beta);
        for (r, acc_r) in acc.iter().enumerate() {
            let cr = c.add(r * rs_c);
            for (q, &acc_q) in acc_r.iter().enumerate() {
                let mut v = vmulq_f32(va, acc_q);
                if beta != 0.0 {
                    v = vfmaq_f32(v, vb, vld1q_f32(cr.add(4 * q)));
                }
                if !bias.is_null() {
                    v = vaddq_f32(v, vld1q_f32(bias.add(4 * q)));
                }
                vst1q_f32(cr.add(4 * q), v);
            }
        }
    }
}
