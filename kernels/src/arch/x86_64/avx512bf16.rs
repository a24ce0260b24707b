//! The AVX512-BF16 dot micro-kernel, `bf16gemm_ukernel_avx512bf16_10x32`: A and B as bf16
//! pairs, products accumulated in f32 by `vdpbf16ps`.
//!
//! ```text
//!   per pair p:  b0 = 16 pairs (cols 0..16)   b1 = 16 pairs (cols 16..32)   2 zmm loads
//!   A: (a[0][2p], a[0][2p+1]) -> vpbroadcastd -> acc[0][0] += dot(a, b0)   acc[0][1] += dot(a, b1)
//!      ..                                        ..
//!      (a[9][2p], a[9][2p+1])                    acc[9][0]                  acc[9][1]
//! ```
//! 20 accumulators + 2 B vectors + 1 broadcast = 23 zmm; per pair 20 `vdpbf16ps` (each 32
//! multiply-adds) against 2 B loads and 10 A broadcasts. Each `vdpbf16ps` lane adds
//! `a[2p+1]*b[2p+1]`, then `a[2p]*b[2p]`, to the accumulator, each rounded to nearest even, with
//! bf16 subnormals read as zero and subnormal results flushed (Intel's specification; modelled
//! bit for bit by [`crate::arch::scalar::ScalarBf16Dot`]).
//!
//! Block sizes are the AVX-512 conversion kernel's (the packed B layout is shared): KC = 1024
//! (a 64 KiB B micro-panel), NR = 32.
//!
//! Where `vdpbf16ps zmm` has a lower FLOP rate than `vfmadd231ps zmm` (on the Xeon this was
//! written on it competes for the same two ports: `docs/performance.md`), this kernel is
//! slower than the conversion kernel wherever the GEMM is compute-bound; it is kept for CPUs
//! where the instruction is fast (AMD Zen 4/5) and as an option.
//!
//! Not here: the conversion kernel and the shared epilogue (`avx512.rs`).

use super::avx512::{store_tile, stream_ahead, PanelPrefetch};
use crate::gemm::{Activation, MicroKernel, Prefetch};
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX512-BF16 10x32 dot micro-kernel.
pub(crate) struct Avx512Bf16Dot;

const MR: usize = 10;
const NR: usize = 32;

impl MicroKernel for Avx512Bf16Dot {
    type A = u32;
    type B = u32;
    type Wide = Self;
    const ISA: Isa = Isa::Avx512;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 240;
    const NC: usize = 3072;

    fn is_available() -> bool {
        crate::gemm::has_avx512bf16()
    }

    unsafe fn ukernel(
        kc: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: forwarded contract; the CPU has AVX512-BF16 (`is_available`, checked
        // by `PackedB` before it names this kernel).
        unsafe {
            bf16gemm_ukernel_avx512bf16_10x32(
                kc,
                a,
                b,
                c,
                rs_c,
                alpha,
                beta,
                bias,
                Activation::None,
                Prefetch::NONE,
            )
        }
    }

    unsafe fn ukernel_pf(
        kc: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
        act: Activation,
        pf: Prefetch,
    ) {
        // SAFETY: as in `ukernel`; prefetches never fault.
        unsafe { bf16gemm_ukernel_avx512bf16_10x32(kc, a, b, c, rs_c, alpha, beta, bias, act, pf) }
    }
}

/// # Safety
/// See [`MicroKernel::ukernel`] for [`Avx512Bf16Dot`]; the CPU supports AVX-512F and
/// AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn bf16gemm_ukernel_avx512bf16_10x32(
    kc: usize,
    mut a: *const u32,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels (kc/2 x MR and
    // kc/2 x NR pairs) and tile; `__m512i` and `__m512bh` are both 64 bytes of plain bits.
    unsafe {
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let stream = pf.stream_b;
        let mut pf = PanelPrefetch::new(pf.next, pf.next_bytes, kc / 2);
        for _ in 0..kc / 2 {
            pf.next();
            // (A branch per pair, not a second copy of the loop: this kernel is not the
            // default here; see docs/kernels.md.)
            if stream {
                stream_ahead(b);
            }
            let b0: __m512bh = core::mem::transmute(_mm512_loadu_si512(b.cast()));
            let b1: __m512bh = core::mem::transmute(_mm512_loadu_si512(b.add(16).cast()));
            for r in 0..MR {
                let ar: __m512bh = core::mem::transmute(_mm512_set1_epi32(*a.add(r) as i32));
                acc0[r] = _mm512_dpbf16_ps(acc0[r], ar, b0);
                acc1[r] = _mm512_dpbf16_ps(acc1[r], ar, b1);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        store_tile::<MR>(&acc0, &acc1, c, rs_c, alpha, beta, bias, act);
    }
}
